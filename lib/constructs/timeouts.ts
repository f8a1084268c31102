import type { Settings } from '../../functions/core/settings.js';

export {
  API_GATEWAY_TIMEOUT_SECONDS,
  RELEASE_TIMEOUT_SECONDS,
  vendTimeoutSeconds,
} from '../../functions/core/settings.js';

/**
 * How long EventBridge keeps trying to deliver one scheduled run: less than the interval, so a
 * late delivery does not pile onto the next run (EventBridge's minimum is 60 s).
 */
export function releaseMaxEventAgeSeconds(settings: Settings): number {
  return Math.max(60, Math.floor(settings.releaseIntervalSeconds / 2));
}
