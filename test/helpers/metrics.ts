import type { Registry } from '../../src/pkg/metrics.js';

/**
 * The value of a counter or gauge, or a histogram's number of observations (its _count), summed over the
 * series whose labels include `labels`; 0 when the metric does not exist yet.
 */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const { values } = await m.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want))
    .filter((v) => {
      const series = (v as { metricName?: string }).metricName;
      return series === undefined || series.endsWith('_count');
    })
    .reduce((n, v) => n + v.value, 0);
}
