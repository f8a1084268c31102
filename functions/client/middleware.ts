import type { MiddlewareObj, MiddyHandlerObject } from '@middy/core';
import type { Context } from 'aws-lambda';
import { isTokenRejected } from './crm-answers.js';
import type { TokenClient } from './types.js';

/** The handler context with the token at `K` (`crmToken` by default). */
export type VendorTokenContext<K extends string = 'crmToken'> = { [P in K]: string };

export interface VendorTokenOptions<K extends string = 'crmToken'> {
  readonly client: TokenClient;
  /** Passed to `getToken`; omitted, the vendor's default applies. */
  readonly minValiditySeconds?: number;
  /** @default 'crmToken' */
  readonly contextKey?: K;
}

export interface VendorTokenMiddlewareOptions<K extends string = 'crmToken'>
  extends VendorTokenOptions<K> {
  /**
   * When the handler's response or error shows CRM.COM rejected the token, invalidate it before
   * the invocation ends, so the next invocation gets a new one. The handler is not re-run: use
   * `withVendorToken` for that.
   * @default true
   */
  readonly invalidateOnRejected?: boolean;
}

/**
 * Middy middleware: puts a valid token on `context[contextKey]` before the handler runs.
 *
 * ```ts
 * export const handler = middy<Event, Result>()
 *   .use(vendorToken({ client }))
 *   .handler(async (event, context) => callCrm(context.crmToken));
 * ```
 */
export function vendorToken<K extends string = 'crmToken'>(
  options: VendorTokenMiddlewareOptions<K>,
): MiddlewareObj<unknown, unknown, Error, Context & VendorTokenContext<K>> {
  const key: string = options.contextKey ?? 'crmToken';
  const invalidateOnRejected = options.invalidateOnRejected ?? true;
  const request = minValidity(options);

  const healIfRejected = async (answer: unknown, context: object): Promise<void> => {
    if (!invalidateOnRejected || !isTokenRejected(answer)) return;
    const token: unknown = Reflect.get(context, key);
    if (typeof token !== 'string') return;
    // Best effort: the handler's own answer or error is what this invocation reports.
    await options.client.invalidate(token).catch(() => undefined);
  };

  return {
    name: 'vendorToken',
    before: async ({ context }) => {
      const { token } = await options.client.getToken(request);
      Reflect.set(context, key, token);
    },
    after: async ({ response, context }) => healIfRejected(response, context),
    onError: async ({ error, context }) => healIfRejected(error, context),
  };
}

export interface WithVendorTokenOptions<K extends string = 'crmToken'>
  extends VendorTokenOptions<K> {
  /**
   * Re-run the handler once with a new token when its response or error shows CRM.COM rejected
   * the first one; a second rejection is returned or thrown as it is.
   * @default true
   */
  readonly retryOnRejected?: boolean;
}

/**
 * Wraps a handler so it runs with a valid token on `context[contextKey]`, and (by default) once
 * more with a new token when CRM.COM rejected the first. Use it inside `middy(...)` so the other
 * middlewares run once around both attempts, or on its own as a plain Lambda handler.
 */
export function withVendorToken<
  TEvent,
  TResult,
  K extends string = 'crmToken',
  TContext extends Context = Context,
>(
  handler: (
    event: TEvent,
    context: TContext & VendorTokenContext<K>,
    options?: MiddyHandlerObject,
  ) => TResult | Promise<TResult>,
  options: WithVendorTokenOptions<K>,
): (event: TEvent, context: TContext, handlerOptions?: MiddyHandlerObject) => Promise<TResult> {
  const key: string = options.contextKey ?? 'crmToken';
  const request = minValidity(options);
  return async (event, context, handlerOptions) => {
    const run = (token: string) => {
      // Same object, as middy middlewares mutate it: whatever they put there stays visible.
      Reflect.set(context, key, token);
      return handler(event, context as TContext & VendorTokenContext<K>, handlerOptions);
    };
    if (options.retryOnRejected === false) {
      return run((await options.client.getToken(request)).token);
    }
    return options.client.withToken(run, request);
  };
}

function minValidity(options: VendorTokenOptions<string>): { minValiditySeconds?: number } {
  return options.minValiditySeconds === undefined
    ? {}
    : { minValiditySeconds: options.minValiditySeconds };
}
