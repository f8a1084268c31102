import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import {
  createCachedTokenClient,
  type TokenTransport,
  TokenVendorError,
  vendorToken,
  withVendorToken,
} from '../../../functions/client/index.js';
import { ManualClock, okAnswer, rejectedAnswer, vended } from './helpers.js';

/** A transport that vends t1, t2, … and counts calls. */
function countingTransport(options: { failGet?: TokenVendorError } = {}) {
  let next = 1;
  const calls = { getToken: 0, invalidate: [] as string[] };
  const transport: TokenTransport = {
    async getToken() {
      calls.getToken++;
      if (options.failGet) throw options.failGet;
      return vended(`t${next++}`);
    },
    async invalidate(token) {
      calls.invalidate.push(token);
      return vended(`t${next++}`);
    },
  };
  const client = createCachedTokenClient('default', transport, { clock: new ManualClock() });
  return { client, calls };
}

/**
 * A Lambda context. Middy types the whole chain with the middleware's context, so a caller of
 * the wrapped handler (the Lambda runtime, here a test) is typed as if it passed the token too.
 */
const context = () =>
  ({ functionName: 'consumer', awsRequestId: 'req-1' }) as Context &
    Record<'crmToken' | 'token', string>;

describe('vendorToken middleware', () => {
  it('puts a valid token on context.crmToken before the handler runs', async () => {
    // Prepare
    const { client, calls } = countingTransport();
    const handler = middy<unknown, string>()
      .use(vendorToken({ client }))
      .handler(async (_event, ctx) => ctx.crmToken);

    // Act
    const first = await handler({}, context());
    const second = await handler({}, context());

    // Assess
    expect(first).toBe('t1');
    expect(second).toBe('t1');
    expect(calls.getToken).toBe(1);
  });

  it('uses the context key and minimum validity it is given', async () => {
    // Prepare
    const seen: (number | undefined)[] = [];
    const transport: TokenTransport = {
      async getToken(min) {
        seen.push(min);
        return vended('t1');
      },
      async invalidate() {
        return vended('t2');
      },
    };
    const client = createCachedTokenClient('default', transport);
    const handler = middy<unknown, string>()
      .use(vendorToken({ client, contextKey: 'token', minValiditySeconds: 120 }))
      .handler(async (_event, ctx) => ctx.token);

    // Act
    const result = await handler({}, context());

    // Assess
    expect(result).toBe('t1');
    expect(seen).toStrictEqual([120]);
  });

  it('fails the invocation with the typed error when no token can be had', async () => {
    // Prepare
    const { client } = countingTransport({
      failGet: new TokenVendorError('CRM_UNAVAILABLE', 'down', { retryable: true }),
    });
    let ran = false;
    const handler = middy()
      .use(vendorToken({ client }))
      .handler(async () => {
        ran = true;
      });

    // Act
    const error = await handler({}, context()).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(TokenVendorError);
    expect(ran).toBe(false);
  });

  it('invalidates a token the response shows rejected, without re-running the handler', async () => {
    // Prepare
    const { client, calls } = countingTransport();
    let runs = 0;
    const handler = middy<unknown, unknown>()
      .use(vendorToken({ client }))
      .handler(async (_event, ctx) => {
        runs++;
        return ctx.crmToken === 't1' ? rejectedAnswer : okAnswer;
      });

    // Act
    const first = await handler({}, context());
    const second = await handler({}, context());

    // Assess
    expect(first).toBe(rejectedAnswer);
    expect(second).toBe(okAnswer);
    expect(runs).toBe(2);
    expect(calls.invalidate).toStrictEqual(['t1']);
  });

  it('invalidates on a thrown rejection and lets the error through', async () => {
    // Prepare
    const { client, calls } = countingTransport();
    const thrown = Object.assign(new Error('CRM said no'), { crmAnswer: rejectedAnswer });
    const handler = middy()
      .use(vendorToken({ client }))
      .handler(async () => {
        throw thrown;
      });

    // Act
    const error = await handler({}, context()).catch((e: unknown) => e);

    // Assess
    expect(error).toBe(thrown);
    expect(calls.invalidate).toStrictEqual(['t1']);
  });

  it('leaves the token alone when invalidateOnRejected is false', async () => {
    // Prepare
    const { client, calls } = countingTransport();
    const handler = middy()
      .use(vendorToken({ client, invalidateOnRejected: false }))
      .handler(async () => rejectedAnswer);

    // Act
    await handler({}, context());

    // Assess
    expect(calls.invalidate).toStrictEqual([]);
  });
});

describe('withVendorToken', () => {
  it('re-runs the handler once with a new token after a rejection, middlewares once', async () => {
    // Prepare
    const { client, calls } = countingTransport();
    const tokens: string[] = [];
    let afterRuns = 0;
    const handler = middy(
      withVendorToken(
        async (_event: unknown, ctx) => {
          tokens.push(ctx.crmToken);
          return ctx.crmToken === 't1' ? rejectedAnswer : okAnswer;
        },
        { client },
      ),
    ).after(() => {
      afterRuns++;
    });

    // Act
    const result = await handler({}, context());

    // Assess
    expect(result).toBe(okAnswer);
    expect(tokens).toStrictEqual(['t1', 't2']);
    expect(calls.invalidate).toStrictEqual(['t1']);
    expect(afterRuns).toBe(1);
  });

  it('returns a second rejection as it is: two runs, one invalidate', async () => {
    // Prepare
    const { client, calls } = countingTransport();
    let runs = 0;
    const handler = withVendorToken(
      async () => {
        runs++;
        return rejectedAnswer;
      },
      { client, contextKey: 'token' },
    );

    // Act
    const result = await handler({}, context());

    // Assess
    expect(result).toBe(rejectedAnswer);
    expect(runs).toBe(2);
    expect(calls.invalidate).toStrictEqual(['t1']);
  });

  it('throws a second thrown rejection as it is', async () => {
    // Prepare
    const { client } = countingTransport();
    let runs = 0;
    const handler = withVendorToken(
      async () => {
        runs++;
        throw Object.assign(new Error(`rejected ${runs}`), { crmAnswer: rejectedAnswer });
      },
      { client },
    );

    // Act
    const error = await handler({}, context()).catch((e: unknown) => e);

    // Assess
    expect(error).toMatchObject({ message: 'rejected 2' });
  });

  it('does not retry when retryOnRejected is false', async () => {
    // Prepare
    const { client, calls } = countingTransport();
    let runs = 0;
    const handler = withVendorToken(
      async () => {
        runs++;
        return rejectedAnswer;
      },
      { client, retryOnRejected: false },
    );

    // Act
    await handler({}, context());

    // Assess
    expect(runs).toBe(1);
    expect(calls.invalidate).toStrictEqual([]);
  });
});
