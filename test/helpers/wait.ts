/** Timing helpers every test uses: one copy, so a poll interval or a timeout message is fixed once. */

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls `check` until it returns something truthy and returns that; throws naming `what` after
 * `timeoutMs`. Time it yourself (`performance.now()` around the call) when the delay is the measurement.
 */
export async function waitFor<T>(
  what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 5000, everyMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
