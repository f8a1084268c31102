import { setTimeout as delay } from 'node:timers/promises';
import type { Clock } from '../core/types.js';

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => delay(ms),
};
