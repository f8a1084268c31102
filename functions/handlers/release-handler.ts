import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import type { Observability } from '../adapters/powertools-telemetry.js';
import { requestScope } from '../adapters/powertools-telemetry.js';
import { isProfileName } from '../core/credentials.js';
import { StoreError, VendorError } from '../core/errors.js';
import type { ReleaseService, ReleaseSummary } from '../core/release-service.js';
import type { Clock } from '../core/types.js';
import { describeError } from '../core/vend-service.js';
import { flushMetrics } from './observability-middleware.js';
import { errorBody } from './responses.js';

export interface ReleaseHandlerDeps {
  readonly release: ReleaseService;
  readonly clock: Clock;
  readonly observability: Observability;
}

/** Time kept back from the Lambda's remaining time so a run records its outcomes. */
const BUDGET_MARGIN_MS = 2000;

type ReleaseRequest = { action: 'run' } | { action: 'revokeProfile'; profile: string };

function parseReleaseEvent(event: unknown): ReleaseRequest {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    throw new VendorError('INVALID_REQUEST', 'The payload must be a JSON object');
  }
  const fields = event as Record<string, unknown>;
  if (fields.action === undefined) return { action: 'run' }; // {} or an EventBridge event
  if (fields.action === 'revokeProfile') {
    if (!isProfileName(fields.profile)) {
      throw new VendorError(
        'INVALID_REQUEST',
        'profile must be 1–64 characters of A-Z, a-z, 0-9, _ and -',
      );
    }
    return { action: 'revokeProfile', profile: fields.profile };
  }
  throw new VendorError('INVALID_REQUEST', 'action must be absent (one run) or "revokeProfile"');
}

/**
 * The release function: `{}` (the schedule) runs one pass, `{"action":"revokeProfile"}` revokes
 * a profile. Answers `{"released","failed","skipped"}`. A run that cannot reach the store throws,
 * so the schedule's retry policy and dead-letter queue see it.
 */
export function createReleaseHandler(deps: ReleaseHandlerDeps) {
  const { release, clock, observability } = deps;

  const entry = async (event: unknown, context: Context): Promise<ReleaseSummary | object> => {
    let request: ReleaseRequest;
    try {
      request = parseReleaseEvent(event);
    } catch (error) {
      return errorBody(error as VendorError);
    }
    const remaining = context?.getRemainingTimeInMillis?.();
    // No time left is a budget of zero, not an unbounded run.
    const deadline =
      typeof remaining === 'number' && Number.isFinite(remaining)
        ? clock.now() + Math.max(0, remaining - BUDGET_MARGIN_MS)
        : undefined;
    const options = deadline === undefined ? {} : { deadline };
    try {
      const report =
        request.action === 'run'
          ? await release.runOnce(options)
          : await release.revokeProfile(request.profile, options);
      return { released: report.released, failed: report.failed, skipped: report.skipped };
    } catch (error) {
      observability.telemetry.count('ReleaseRunErrors');
      // Our own errors carry safe messages; anything else may quote a request, so only its name.
      const described =
        error instanceof StoreError || error instanceof VendorError
          ? describeError(error)
          : error instanceof Error
            ? error.name
            : 'unknown';
      observability.telemetry.log('error', 'release run failed', { error: described });
      throw new Error(`release run failed (${error instanceof Error ? error.name : 'unknown'})`);
    }
  };

  const scoped = (event: unknown, context: Context) =>
    requestScope.run(context?.awsRequestId ? { requestId: context.awsRequestId } : {}, () =>
      entry(event, context),
    );

  return middy(scoped).use(flushMetrics(observability.metrics));
}
