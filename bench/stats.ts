/** Latency samples in milliseconds and the figures the report shows. */
export interface LatencySummary {
  readonly samples: number;
  readonly p50: number;
  readonly p99: number;
}

/** Nearest-rank percentile of already sorted values. */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export function summarise(samples: readonly number[]): LatencySummary {
  const sorted = [...samples].sort((a, b) => a - b);
  return { samples: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
}

export function median(values: readonly number[]): number {
  return summarise(values).p50;
}

/** Milliseconds since an arbitrary origin, sub-microsecond resolution. */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Times one call of `fn`, in milliseconds. */
export async function timeOnce(fn: () => Promise<unknown>): Promise<number> {
  const start = nowMs();
  await fn();
  return nowMs() - start;
}

/**
 * Measures several operations interleaved in small blocks (A×n, B×n, C×n, A×n, ...), so that
 * drift in the machine's speed (GC, JIT, a noisy neighbour) affects every side alike.
 */
export async function interleaved(
  operations: Readonly<Record<string, () => Promise<unknown>>>,
  options: { warmup: number; samples: number; block: number },
): Promise<Record<string, number[]>> {
  const names = Object.keys(operations);
  const results: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (const name of names) {
    const op = operations[name] as () => Promise<unknown>;
    for (let i = 0; i < options.warmup; i++) await op();
  }
  for (let done = 0; done < options.samples; done += options.block) {
    for (const name of names) {
      const op = operations[name] as () => Promise<unknown>;
      const into = results[name] as number[];
      for (let i = 0; i < options.block && done + i < options.samples; i++) {
        into.push(await timeOnce(op));
      }
    }
  }
  return results;
}
