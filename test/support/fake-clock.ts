import type { Clock } from '../../functions/core/types.js';

interface Sleeper {
  readonly at: number;
  readonly resolve: () => void;
}

/**
 * A clock that only moves when told. `sleep` resolves once time is advanced past it, so code
 * that polls or backs off runs deterministically. `autoAdvance` moves time to the next sleeper
 * whenever everything is waiting, which lets concurrent flows run to completion.
 */
export class FakeClock implements Clock {
  private current: number;
  private sleepers: Sleeper[] = [];

  constructor(start = Date.parse('2026-01-01T00:00:00Z')) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.sleepers.push({ at: this.current + Math.max(0, ms), resolve });
    });
  }

  /** Moves time forward by `ms`, waking every sleeper due by then, in order. */
  async advance(ms: number): Promise<void> {
    const target = this.current + ms;
    for (;;) {
      await flush();
      const next = this.nextSleeper();
      if (!next || next.at > target) break;
      this.current = Math.max(this.current, next.at);
      this.wake(next);
    }
    this.current = target;
    await flush();
  }

  /** Runs `work` while advancing time to each next sleeper until `work` settles. */
  async run<T>(work: Promise<T>, stepLimit = 100_000): Promise<T> {
    let settled = false;
    const guarded = work.finally(() => {
      settled = true;
    });
    guarded.catch(() => {}); // the caller observes the rejection; don't flag it unhandled

    for (let step = 0; !settled && step < stepLimit; step++) {
      await flush();
      if (settled) break;
      const next = this.nextSleeper();
      if (!next) {
        await new Promise((r) => setImmediate(r));
        continue;
      }
      this.current = Math.max(this.current, next.at);
      this.wake(next);
    }
    return guarded;
  }

  get pendingSleepers(): number {
    return this.sleepers.length;
  }

  private nextSleeper(): Sleeper | undefined {
    let best: Sleeper | undefined;
    for (const s of this.sleepers) if (!best || s.at < best.at) best = s;
    return best;
  }

  private wake(sleeper: Sleeper): void {
    this.sleepers = this.sleepers.filter((s) => s !== sleeper);
    sleeper.resolve();
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise((r) => setImmediate(r));
}
