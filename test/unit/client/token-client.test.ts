import { InvokeCommand, LambdaClient, TooManyRequestsException } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { allCustomMatcher } from 'aws-sdk-client-mock-vitest';
import { beforeEach, describe, expect, it } from 'vitest';
import { createTokenClient, TokenVendorError } from '../../../functions/client/index.js';
import {
  deferred,
  invokeResult,
  ManualClock,
  okAnswer,
  rejectedAnswer,
  sentPayload,
  vended,
  vendorError,
} from './helpers.js';
import 'aws-sdk-client-mock-vitest/extend';

expect.extend(allCustomMatcher);

const lambdaClient = new LambdaClient({ region: 'us-east-1' });
const lambda = mockClient(lambdaClient);

function makeClient(options: { refreshAheadSeconds?: number; qualifier?: string | false } = {}) {
  const clock = new ManualClock();
  const client = createTokenClient({
    functionName: 'vend',
    profile: 'default',
    lambdaClient,
    clock,
    ...options,
  });
  return { client, clock };
}

/** Payloads of every Invoke call so far, in order. */
function payloads(): unknown[] {
  return lambda.commandCalls(InvokeCommand).map((call) => sentPayload(call.args[0].input.Payload));
}

async function failure(promise: Promise<unknown>): Promise<TokenVendorError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof TokenVendorError)) throw new Error(`expected a TokenVendorError`);
  return error;
}

beforeEach(() => {
  lambda.reset();
});

describe('payloads and addressing (CONTRACT §5, §7)', () => {
  it('sends getToken and invalidate payloads exactly as §5, through the profile alias', async () => {
    // Prepare
    lambda
      .on(InvokeCommand)
      .resolvesOnce(invokeResult(vended('t1')))
      .resolves(invokeResult(vended('t2')));
    const { client } = makeClient();

    // Act
    await client.getToken();
    await client.getToken({ minValiditySeconds: 9999 });
    await client.invalidate('t2');

    // Assess
    expect(payloads()).toStrictEqual([
      { action: 'getToken', profile: 'default' },
      { action: 'getToken', profile: 'default', minValiditySeconds: 9999 },
      { action: 'invalidate', profile: 'default', token: 't2' },
    ]);
    expect(lambda).toHaveReceivedCommandWith(InvokeCommand, {
      FunctionName: 'vend',
      Qualifier: 'profile-default',
      InvocationType: 'RequestResponse',
    });
  });

  it('invokes the unqualified function when qualifier is false, or the one given', async () => {
    // Prepare
    lambda.on(InvokeCommand).resolves(invokeResult(vended('t1')));

    // Act
    await makeClient({ qualifier: false }).client.getToken();
    await makeClient({ qualifier: 'live' }).client.getToken();

    // Assess
    const qualifiers = lambda.commandCalls(InvokeCommand).map((c) => c.args[0].input.Qualifier);
    expect(qualifiers).toStrictEqual([undefined, 'live']);
  });

  it('adds no alias to a function name that already carries a qualifier', async () => {
    // Prepare
    lambda.on(InvokeCommand).resolves(invokeResult(vended('t1')));
    const arn = 'arn:aws:lambda:eu-west-1:123456789012:function:vend:profile-default';
    const client = createTokenClient({ functionName: arn, profile: 'default', lambdaClient });

    // Act
    await client.getToken();

    // Assess
    expect(lambda).toHaveReceivedCommandWith(InvokeCommand, {
      FunctionName: arn,
      Qualifier: undefined,
    });
  });

  it('refuses a bad profile name at creation', () => {
    // Act & Assess
    expect(() => createTokenClient({ functionName: 'vend', profile: 'a/b', lambdaClient })).toThrow(
      TokenVendorError,
    );
  });
});

describe('cache', () => {
  it('serves N calls from one Invoke, counting down on its own clock', async () => {
    // Prepare
    lambda.on(InvokeCommand).resolves(invokeResult(vended('t1', 3000)));
    const { client, clock } = makeClient();

    // Act
    const first = await client.getToken();
    const tokens: string[] = [];
    for (let i = 0; i < 20; i++) {
      clock.advanceSeconds(10);
      tokens.push((await client.getToken()).token);
    }
    const last = await client.getToken();

    // Assess
    expect(lambda).toHaveReceivedCommandTimes(InvokeCommand, 1);
    expect(new Set(tokens)).toStrictEqual(new Set(['t1']));
    expect(first.expiresInSeconds).toBe(3000);
    expect(last.expiresInSeconds).toBe(2800);
  });

  it('never reads expiresAt: a token "expired" on a skewed clock is still served', async () => {
    // Prepare
    const skewed = { ...vended('t1', 3000), expiresAt: '1999-01-01T00:00:00.000Z' };
    lambda.on(InvokeCommand).resolves(invokeResult(skewed));
    const { client } = makeClient();

    // Act
    await client.getToken();
    const second = await client.getToken();

    // Assess
    expect(second.token).toBe('t1');
    expect(lambda).toHaveReceivedCommandTimes(InvokeCommand, 1);
  });

  it('fetches when the cached token has less than the requested validity', async () => {
    // Prepare
    lambda
      .on(InvokeCommand)
      .resolvesOnce(invokeResult(vended('t1', 400)))
      .resolves(invokeResult(vended('t2', 3000)));
    const { client, clock } = makeClient();
    await client.getToken();
    clock.advanceSeconds(200);

    // Act
    const loose = await client.getToken({ minValiditySeconds: 100 });
    const strict = await client.getToken({ minValiditySeconds: 300 });

    // Assess
    expect(loose.token).toBe('t1');
    expect(strict.token).toBe('t2');
    expect(payloads()[1]).toStrictEqual({
      action: 'getToken',
      profile: 'default',
      minValiditySeconds: 300,
    });
  });

  it('refreshes ahead when fewer than refreshAheadSeconds are left', async () => {
    // Prepare
    lambda
      .on(InvokeCommand)
      .resolvesOnce(invokeResult(vended('t1', 600)))
      .resolves(invokeResult(vended('t2', 600)));
    const { client, clock } = makeClient({ refreshAheadSeconds: 60 });
    await client.getToken();

    // Act
    clock.advanceSeconds(539);
    const before = await client.getToken();
    clock.advanceSeconds(2);
    const after = await client.getToken();

    // Assess
    expect(before.token).toBe('t1');
    expect(after.token).toBe('t2');
    expect(lambda).toHaveReceivedCommandTimes(InvokeCommand, 2);
  });

  it('serves a token vended inside the refresh window for a quarter of its life', async () => {
    // Prepare: the vendor hands out a token with less left than the refresh-ahead threshold.
    lambda.on(InvokeCommand).resolves(invokeResult(vended('short', 40)));
    const { client, clock } = makeClient({ refreshAheadSeconds: 60 });
    await client.getToken();

    // Act
    clock.advanceSeconds(9);
    await client.getToken();
    const callsWithinQuarter = lambda.commandCalls(InvokeCommand).length;
    clock.advanceSeconds(2);
    await client.getToken();

    // Assess
    expect(callsWithinQuarter).toBe(1);
    expect(lambda).toHaveReceivedCommandTimes(InvokeCommand, 2);
  });

  it('returns the cached token when a refresh-ahead fetch fails (stale if error)', async () => {
    // Prepare
    lambda
      .on(InvokeCommand)
      .resolvesOnce(invokeResult(vended('t1', 600)))
      .resolvesOnce(
        invokeResult(vendorError('CRM_UNAVAILABLE', { retryable: true, retryAfterSeconds: 5 })),
      )
      .resolves(invokeResult(vended('t2', 600)));
    const { client, clock } = makeClient({ refreshAheadSeconds: 60 });
    await client.getToken();
    clock.advanceSeconds(550);

    // Act
    const stale = await client.getToken();
    clock.advanceSeconds(4);
    const stillStale = await client.getToken();
    const callsDuringBackoff = lambda.commandCalls(InvokeCommand).length;
    clock.advanceSeconds(2);
    const fresh = await client.getToken();

    // Assess
    expect(stale.token).toBe('t1');
    expect(stale.expiresInSeconds).toBe(50);
    expect(stillStale.token).toBe('t1');
    expect(callsDuringBackoff).toBe(2);
    expect(fresh.token).toBe('t2');
  });

  it('throws the refresh error when the cached token cannot serve the request', async () => {
    // Prepare
    lambda
      .on(InvokeCommand)
      .resolvesOnce(invokeResult(vended('t1', 600)))
      .resolves(
        invokeResult(vendorError('CRM_UNAVAILABLE', { retryable: true, retryAfterSeconds: 2 })),
      );
    const { client, clock } = makeClient();
    await client.getToken();

    // Act
    clock.advanceSeconds(550);
    const tooShort = await failure(client.getToken({ minValiditySeconds: 100 }));
    clock.advanceSeconds(60);
    const expired = await failure(client.getToken());

    // Assess
    expect(tooShort.code).toBe('CRM_UNAVAILABLE');
    expect(expired.code).toBe('CRM_UNAVAILABLE');
    expect(expired.retryAfterSeconds).toBe(2);
  });

  it('shares one Invoke between 50 concurrent calls (single flight)', async () => {
    // Prepare
    const gate = deferred();
    lambda.on(InvokeCommand).callsFake(async () => {
      await gate.promise;
      return invokeResult(vended('t1'));
    });
    const { client } = makeClient();

    // Act
    const calls = Array.from({ length: 50 }, () => client.getToken());
    gate.resolve();
    const results = await Promise.all(calls);

    // Assess
    expect(lambda).toHaveReceivedCommandTimes(InvokeCommand, 1);
    expect(results.every((r) => r.token === 't1')).toBe(true);
  });

  it('shares one failure between concurrent calls, and tries again afterwards', async () => {
    // Prepare
    const gate = deferred();
    lambda
      .on(InvokeCommand)
      .callsFakeOnce(async () => {
        await gate.promise;
        return invokeResult(
          vendorError('CRM_UNAVAILABLE', { retryable: true, retryAfterSeconds: 1 }),
        );
      })
      .resolves(invokeResult(vended('t1')));
    const { client } = makeClient();

    // Act
    const calls = Array.from({ length: 10 }, () => client.getToken().catch((e: unknown) => e));
    gate.resolve();
    const results = await Promise.all(calls);
    const next = await client.getToken();

    // Assess
    expect(
      results.every((r) => r instanceof TokenVendorError && r.code === 'CRM_UNAVAILABLE'),
    ).toBe(true);
    expect(next.token).toBe('t1');
    expect(lambda).toHaveReceivedCommandTimes(InvokeCommand, 2);
  });

  it('joins a flight asking for more validity, not one asking for less', async () => {
    // Prepare
    const gate = deferred();
    lambda.on(InvokeCommand).callsFake(async () => {
      await gate.promise;
      return invokeResult(vended('t1'));
    });
    const { client } = makeClient();

    // Act
    const calls = [
      client.getToken({ minValiditySeconds: 300 }),
      client.getToken({ minValiditySeconds: 100 }),
      client.getToken(),
      client.getToken({ minValiditySeconds: 500 }),
    ];
    gate.resolve();
    await Promise.all(calls);

    // Assess
    expect(lambda).toHaveReceivedCommandTimes(InvokeCommand, 2);
  });

  it('rejects a bad minValiditySeconds without invoking', async () => {
    // Prepare
    const { client } = makeClient();

    // Act
    const error = await failure(client.getToken({ minValiditySeconds: 1.5 }));

    // Assess
    expect(error.code).toBe('INVALID_REQUEST');
    expect(lambda).toHaveReceivedCommandTimes(InvokeCommand, 0);
  });

  it('clear() forgets the cached token', async () => {
    // Prepare
    lambda.on(InvokeCommand).resolves(invokeResult(vended('t1')));
    const { client } = makeClient();
    await client.getToken();

    // Act
    client.clear();
    await client.getToken();

    // Assess
    expect(lambda).toHaveReceivedCommandTimes(InvokeCommand, 2);
  });
});

describe('typed errors', () => {
  it.each([
    ['UNKNOWN_PROFILE', 404, false, undefined],
    ['FORBIDDEN_PROFILE', 403, false, undefined],
    ['CRM_AUTH_FAILED', 502, false, 42],
    ['CRM_UNAVAILABLE', 503, true, 3],
    ['MISCONFIGURED', 500, false, undefined],
    ['INVALID_REQUEST', 400, false, undefined],
  ] as const)(
    'maps a returned %s answer to a TokenVendorError (%i)',
    async (code, status, retryable, after) => {
      // Prepare
      lambda
        .on(InvokeCommand)
        .resolves(
          invokeResult(
            vendorError(code, { retryable, ...(after ? { retryAfterSeconds: after } : {}) }),
          ),
        );
      const { client } = makeClient();

      // Act
      const error = await failure(client.getToken());

      // Assess
      expect(error).toMatchObject({ code, status, retryable, retryAfterSeconds: after });
      expect(error.is(code)).toBe(true);
      expect(error.message).toBe(`${code} happened`);
    },
  );

  it('maps an unknown error code to INTERNAL, keeping the code in the message', async () => {
    // Prepare
    lambda.on(InvokeCommand).resolves(invokeResult(vendorError('BRAND_NEW')));
    const { client } = makeClient();

    // Act
    const error = await failure(client.getToken());

    // Assess
    expect(error.code).toBe('INTERNAL');
    expect(error.message).toContain('BRAND_NEW');
  });

  it('maps a FunctionError (Unhandled) answer to a retryable INTERNAL error', async () => {
    // Prepare
    const crash = { errorType: 'Error', errorMessage: 'boom secret-token', trace: ['at x'] };
    lambda.on(InvokeCommand).resolves(invokeResult(crash, { FunctionError: 'Unhandled' }));
    const { client } = makeClient();

    // Act
    const error = await failure(client.getToken());

    // Assess
    expect(error).toMatchObject({ code: 'INTERNAL', status: 500, retryable: true });
    expect(error.message).toContain('Unhandled');
    expect(error.message).not.toContain('secret-token');
  });

  it.each([
    ['ResourceNotFoundException', 404, 'NOT_FOUND'],
    ['AccessDeniedException', 403, 'FORBIDDEN'],
    ['InvalidRequestContentException', 400, 'INVALID_REQUEST'],
    ['ServiceException', 500, 'INTERNAL'],
  ] as const)('maps the SDK error %s to %s', async (name, httpStatusCode, code) => {
    // Prepare
    const sdkError = Object.assign(new Error('nope'), { name, $metadata: { httpStatusCode } });
    lambda.on(InvokeCommand).rejects(sdkError);
    const { client } = makeClient();

    // Act
    const error = await failure(client.getToken());

    // Assess
    expect(error.code).toBe(code);
    expect(error.cause).toBe(sdkError);
    expect(error.message).toContain('vend:profile-default');
  });

  it('maps TooManyRequestsException to THROTTLED with its retryAfterSeconds', async () => {
    // Prepare
    lambda.on(InvokeCommand).rejects(
      new TooManyRequestsException({
        message: 'Rate exceeded',
        retryAfterSeconds: '7',
        $metadata: { httpStatusCode: 429 },
      }),
    );
    const { client } = makeClient();

    // Act
    const error = await failure(client.getToken());

    // Assess
    expect(error).toMatchObject({
      code: 'THROTTLED',
      status: 429,
      retryable: true,
      retryAfterSeconds: 7,
    });
  });

  it('maps a network failure to a retryable INTERNAL error', async () => {
    // Prepare
    lambda
      .on(InvokeCommand)
      .rejects(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    const { client } = makeClient();

    // Act
    const error = await failure(client.getToken());

    // Assess
    expect(error).toMatchObject({ code: 'INTERNAL', retryable: true });
  });

  it.each([
    ['not JSON', 'I am not JSON'],
    ['a token without expiry', { token: 'secret-token', profile: 'default' }],
    ['a negative validity', { ...vended('secret-token'), expiresInSeconds: -1 }],
    ['null', null],
  ])('maps %s to INTERNAL without echoing the payload', async (_label, body) => {
    // Prepare
    lambda.on(InvokeCommand).resolves(invokeResult(body));
    const { client } = makeClient();

    // Act
    const error = await failure(client.getToken());

    // Assess
    expect(error.code).toBe('INTERNAL');
    expect(error.message).not.toContain('secret-token');
  });
});

describe('invalidate', () => {
  it('replaces the cached token with the answer', async () => {
    // Prepare
    lambda
      .on(InvokeCommand)
      .resolvesOnce(invokeResult(vended('t1')))
      .resolves(invokeResult(vended('t2')));
    const { client } = makeClient();
    await client.getToken();

    // Act
    const replaced = await client.invalidate('t1');
    const next = await client.getToken();

    // Assess
    expect(replaced.token).toBe('t2');
    expect(next.token).toBe('t2');
    expect(lambda).toHaveReceivedCommandTimes(InvokeCommand, 2);
  });

  it('sends one invalidate for concurrent and repeated invalidations of a token', async () => {
    // Prepare
    const gate = deferred();
    lambda
      .on(InvokeCommand)
      .resolvesOnce(invokeResult(vended('t1')))
      .callsFake(async () => {
        await gate.promise;
        return invokeResult(vended('t2'));
      });
    const { client } = makeClient();
    await client.getToken();

    // Act
    const calls = Array.from({ length: 20 }, () => client.invalidate('t1'));
    gate.resolve();
    const results = await Promise.all(calls);
    const again = await client.invalidate('t1');

    // Assess
    expect(results.every((r) => r.token === 't2')).toBe(true);
    expect(again.token).toBe('t2');
    expect(lambda).toHaveReceivedCommandTimes(InvokeCommand, 2);
  });

  it('keeps a late getToken answer from overwriting a newer invalidate answer', async () => {
    // Prepare
    const slow = deferred();
    lambda
      .on(InvokeCommand)
      .callsFakeOnce(async () => {
        await slow.promise;
        return invokeResult(vended('old'));
      })
      .resolves(invokeResult(vended('new')));
    const { client } = makeClient();

    // Act
    const pending = client.getToken();
    await client.invalidate('old');
    slow.resolve();
    await pending;
    const cached = await client.getToken();

    // Assess
    expect(cached.token).toBe('new');
  });

  it('surfaces a failed invalidate as a typed error and drops the rejected token', async () => {
    // Prepare
    lambda
      .on(InvokeCommand)
      .resolvesOnce(invokeResult(vended('t1')))
      .resolvesOnce(invokeResult(vendorError('CRM_AUTH_FAILED', { retryAfterSeconds: 60 })))
      .resolves(invokeResult(vended('t2')));
    const { client } = makeClient();
    await client.getToken();

    // Act
    const error = await failure(client.invalidate('t1'));
    const next = await client.getToken();

    // Assess
    expect(error).toMatchObject({ code: 'CRM_AUTH_FAILED', status: 502, retryAfterSeconds: 60 });
    expect(next.token).toBe('t2');
  });
});

describe('withToken', () => {
  it('passes the token through when CRM.COM accepts it', async () => {
    // Prepare
    lambda.on(InvokeCommand).resolves(invokeResult(vended('t1')));
    const { client } = makeClient();
    const seen: string[] = [];

    // Act
    const result = await client.withToken((token) => {
      seen.push(token);
      return okAnswer;
    });

    // Assess
    expect(result).toBe(okAnswer);
    expect(seen).toStrictEqual(['t1']);
  });

  it('invalidates and retries once when the answer says the token was rejected', async () => {
    // Prepare
    lambda
      .on(InvokeCommand)
      .resolvesOnce(invokeResult(vended('t1')))
      .resolves(invokeResult(vended('t2')));
    const { client } = makeClient();
    const seen: string[] = [];

    // Act
    const result = await client.withToken((token) => {
      seen.push(token);
      return token === 't1' ? rejectedAnswer : okAnswer;
    });

    // Assess
    expect(result).toBe(okAnswer);
    expect(seen).toStrictEqual(['t1', 't2']);
    expect(payloads()[1]).toStrictEqual({ action: 'invalidate', profile: 'default', token: 't1' });
  });

  it('retries once on a thrown error carrying the answer, and no more (no storm)', async () => {
    // Prepare
    lambda
      .on(InvokeCommand)
      .resolvesOnce(invokeResult(vended('t1')))
      .resolves(invokeResult(vended('t2')));
    const { client } = makeClient();
    let calls = 0;

    // Act
    const thrown = await client
      .withToken(() => {
        calls++;
        throw Object.assign(new Error('CRM said no'), { crmAnswer: rejectedAnswer });
      })
      .catch((e: unknown) => e);

    // Assess
    expect(calls).toBe(2);
    expect(thrown).toMatchObject({ message: 'CRM said no' });
    expect(lambda).toHaveReceivedCommandTimes(InvokeCommand, 2);
  });

  it('returns a second rejection as it is, after exactly one invalidate', async () => {
    // Prepare
    lambda
      .on(InvokeCommand)
      .resolvesOnce(invokeResult(vended('t1')))
      .resolves(invokeResult(vended('t2')));
    const { client } = makeClient();
    let calls = 0;

    // Act
    const result = await client.withToken(() => {
      calls++;
      return rejectedAnswer;
    });

    // Assess
    expect(result).toBe(rejectedAnswer);
    expect(calls).toBe(2);
    expect(lambda).toHaveReceivedCommandTimes(InvokeCommand, 2);
  });

  it('does not retry on other errors', async () => {
    // Prepare
    lambda.on(InvokeCommand).resolves(invokeResult(vended('t1')));
    const { client } = makeClient();
    let calls = 0;

    // Act
    const thrown = await client
      .withToken(() => {
        calls++;
        throw new Error('network down');
      })
      .catch((e: unknown) => e);

    // Assess
    expect(calls).toBe(1);
    expect(thrown).toMatchObject({ message: 'network down' });
    expect(lambda).toHaveReceivedCommandTimes(InvokeCommand, 1);
  });

  it('sends one invalidate when 50 concurrent calls see the same rejection', async () => {
    // Prepare
    lambda
      .on(InvokeCommand)
      .resolvesOnce(invokeResult(vended('t1')))
      .resolves(invokeResult(vended('t2')));
    const { client } = makeClient();
    await client.getToken();

    // Act
    const results = await Promise.all(
      Array.from({ length: 50 }, () =>
        client.withToken((token) => (token === 't1' ? rejectedAnswer : okAnswer)),
      ),
    );

    // Assess
    expect(results.every((r) => r === okAnswer)).toBe(true);
    expect(lambda).toHaveReceivedCommandTimes(InvokeCommand, 2);
  });

  it('throws the vendor error when the invalidate fails', async () => {
    // Prepare
    lambda
      .on(InvokeCommand)
      .resolvesOnce(invokeResult(vended('t1')))
      .resolves(
        invokeResult(vendorError('CRM_UNAVAILABLE', { retryable: true, retryAfterSeconds: 1 })),
      );
    const { client } = makeClient();
    let calls = 0;

    // Act
    const error = await failure(
      client.withToken(() => {
        calls++;
        return rejectedAnswer;
      }),
    );

    // Assess
    expect(error.code).toBe('CRM_UNAVAILABLE');
    expect(calls).toBe(1);
  });
});
