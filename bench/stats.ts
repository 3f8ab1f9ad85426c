/** Small statistics for benchmark figures: percentiles (nearest rank) and medians. */

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function latencyFigures(prefix: string, valuesMs: number[]): Record<string, number> {
  return {
    [`${prefix}_p50_ms`]: round(percentile(valuesMs, 50)),
    [`${prefix}_p95_ms`]: round(percentile(valuesMs, 95)),
    [`${prefix}_p99_ms`]: round(percentile(valuesMs, 99)),
  };
}

export function mean(values: number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

export function median(values: number[]): number {
  return percentile(values, 50);
}

/** Jain's fairness index (Σx)² / (n·Σx²): 1 when every x is equal, 1/n when one takes all. */
export function jainIndex(values: number[]): number {
  const sum = values.reduce((a, b) => a + b, 0);
  const squares = values.reduce((a, b) => a + b * b, 0);
  return squares === 0 ? Number.NaN : (sum * sum) / (values.length * squares);
}
