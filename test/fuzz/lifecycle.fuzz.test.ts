import fc from 'fast-check';
import { describe, it, vi } from 'vitest';
import { lifecycleHolds, scenarioArbOf } from '../support/lifecycle-model.js';

// Long runs of the lifecycle property of test/unit/core/lifecycle.property.test.ts, for
// `npm run test:fuzz`. LIFECYCLE_FUZZ_RUNS scales them; LIFECYCLE_SEED replays a failure.

vi.mock('../../functions/core/fingerprint.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../functions/core/fingerprint.js')>();
  let next = 0;
  return { ...original, newId: () => `id-${(next++).toString(36).padStart(6, '0')}` };
});

const RUNS = Number(process.env.LIFECYCLE_FUZZ_RUNS ?? 10_000);
const seed = process.env.LIFECYCLE_SEED ? { seed: Number(process.env.LIFECYCLE_SEED) } : {};

describe('token lifecycle, long runs (CONTRACT §3, invariants 1–9)', () => {
  it('holds every invariant for many sequences of up to 60 commands', async () => {
    await fc.assert(fc.asyncProperty(scenarioArbOf(60), lifecycleHolds), {
      numRuns: RUNS,
      ...seed,
    });
  }, 600_000);

  it('holds every invariant for long sequences of up to 250 commands', async () => {
    await fc.assert(fc.asyncProperty(scenarioArbOf(250), lifecycleHolds), {
      numRuns: Math.max(1, Math.floor(RUNS / 10)),
      ...seed,
    });
  }, 600_000);
});
