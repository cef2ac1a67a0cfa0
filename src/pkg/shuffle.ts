/** Fisher-Yates in place (loadbalance's record order, chaos's authors). */
export function shuffleInPlace<T>(a: T[]): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
}

/** A shuffled copy (forward's random upstream order). */
export function shuffled<T>(list: readonly T[]): T[] {
  const out = [...list];
  shuffleInPlace(out);
  return out;
}
