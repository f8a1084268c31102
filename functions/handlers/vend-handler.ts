import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import type { Observability } from '../adapters/powertools-telemetry.js';
import { requestScope } from '../adapters/powertools-telemetry.js';
import { toVendorError, VendorError } from '../core/errors.js';
import type { Settings } from '../core/settings.js';
import type { Clock } from '../core/types.js';
import type { VendService } from '../core/vend-service.js';
import { describeError } from '../core/vend-service.js';
import { flushMetrics } from './observability-middleware.js';
import {
  aliasProfile,
  isRestEvent,
  parseInvokePayload,
  parseRestEvent,
  type RestEvent,
  type VendRequest,
} from './requests.js';
import { errorBody, type RestResult, restError, restOk, tokenBody } from './responses.js';

export interface VendHandlerDeps {
  readonly service: VendService;
  readonly settings: Settings;
  readonly clock: Clock;
  readonly observability: Observability;
}

/** Time kept back from the Lambda's remaining time to answer before it is cut off. */
const ANSWER_MARGIN_MS = 1500;

/**
 * The vend function: one entry for API Gateway REST proxy events (CONTRACT §4) and direct
 * invocations (§5). It never throws: every failure becomes the contract's error shape.
 */
export function createVendHandler(deps: VendHandlerDeps) {
  const { service, settings, clock, observability } = deps;
  const { telemetry } = observability;

  async function serve(request: VendRequest, context: Context | undefined): Promise<unknown> {
    if (request.action === 'health') return { status: 'ok' };
    const restricted = aliasProfile(context?.invokedFunctionArn);
    // Checked before existence, so that an alias cannot probe which profiles exist.
    if (restricted !== undefined && restricted !== request.profile) {
      throw new VendorError('FORBIDDEN_PROFILE', 'This function alias serves another profile');
    }
    const remaining = context?.getRemainingTimeInMillis?.();
    const deadline =
      typeof remaining === 'number' && remaining > 0
        ? clock.now() + Math.max(0, remaining - ANSWER_MARGIN_MS)
        : undefined;
    const options = deadline === undefined ? {} : { deadline };
    const result =
      request.action === 'getToken'
        ? await service.getToken(request.profile, {
            ...options,
            ...(request.minValiditySeconds === undefined
              ? {}
              : { minValiditySeconds: request.minValiditySeconds }),
          })
        : await service.invalidate(request.profile, request.token, options);
    telemetry.log('debug', 'token vended', {
      action: request.action,
      profile: request.profile,
      source: result.source,
    });
    return tokenBody(result, clock.now());
  }

  function failed(error: unknown): VendorError {
    const vendorError = toVendorError(error);
    if (vendorError.status >= 500) {
      telemetry.count('VendErrors');
      telemetry.log(vendorError.code === 'INTERNAL' ? 'error' : 'warn', 'vend failed', {
        code: vendorError.code,
        error: describeError(vendorError.cause ?? vendorError),
      });
    }
    return vendorError;
  }

  async function handleRest(event: RestEvent, context: Context | undefined): Promise<RestResult> {
    try {
      return restOk(await serve(parseRestEvent(event, settings), context));
    } catch (error) {
      return restError(failed(error));
    }
  }

  async function handleInvoke(payload: unknown, context: Context | undefined): Promise<unknown> {
    try {
      return await serve(parseInvokePayload(payload, settings), context);
    } catch (error) {
      return errorBody(failed(error));
    }
  }

  const entry = (event: unknown, context: Context): Promise<unknown> => {
    const scope: Record<string, string> = {};
    if (context?.awsRequestId) scope.requestId = context.awsRequestId;
    const correlationId = correlationOf(event);
    if (correlationId) scope.correlationId = correlationId;
    return requestScope.run(scope, () =>
      isRestEvent(event) ? handleRest(event, context) : handleInvoke(event, context),
    );
  };

  return middy(entry).use(flushMetrics(observability.metrics));
}

/** A correlation id from API Gateway's request id or an `x-correlation-id` header. */
function correlationOf(event: unknown): string | undefined {
  if (!isRestEvent(event)) return undefined;
  const e = event as RestEvent & {
    headers?: Record<string, string | undefined> | null;
    requestContext?: { requestId?: unknown };
  };
  const header = e.headers?.['x-correlation-id'] ?? e.headers?.['X-Correlation-Id'];
  if (typeof header === 'string' && /^[\w.:-]{1,128}$/.test(header)) return header;
  const requestId = e.requestContext?.requestId;
  return typeof requestId === 'string' ? requestId.slice(0, 128) : undefined;
}
