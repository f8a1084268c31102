import type { Context } from 'aws-lambda';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryTokenStore } from '../../../functions/adapters/memory-token-store.js';
import { createObservability } from '../../../functions/adapters/powertools-telemetry.js';
import { CachedSecretSource, type SecretFetcher } from '../../../functions/core/secret-cache.js';
import type { SecretSource } from '../../../functions/core/types.js';
import { VendService } from '../../../functions/core/vend-service.js';
import type { RestResult } from '../../../functions/handlers/responses.js';
import { createVendHandler } from '../../../functions/handlers/vend-handler.js';
import { directPayloadProperty, restEventProperty } from '../../support/entry-points.js';
import { FakeClock } from '../../support/fake-clock.js';
import { FakeCrm, FakeSecrets, testSettings } from '../../support/fakes.js';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';

const PASSWORD = 'Hunter2-pa55word';
const FUNCTION_ARN = 'arn:aws:lambda:us-east-1:000000000000:function:vend';
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

function lambdaContext(options: { qualifier?: string; remainingMs?: number } = {}): Context {
  const remainingMs = options.remainingMs ?? 10_000;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: 'vend',
    functionVersion: '$LATEST',
    invokedFunctionArn: options.qualifier ? `${FUNCTION_ARN}:${options.qualifier}` : FUNCTION_ARN,
    memoryLimitInMB: '256',
    awsRequestId: 'req-1',
    logGroupName: '/aws/lambda/vend',
    logStreamName: 'test',
    getRemainingTimeInMillis: () => remainingMs,
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

function restEvent(httpMethod: string, path: string, body: string | null = null) {
  return {
    resource: '/{proxy+}',
    httpMethod,
    path,
    headers: {},
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: { proxy: path.slice(1) },
    requestContext: { requestId: 'api-req-1', stage: 'test' },
    body,
    isBase64Encoded: false,
  };
}

function setup(options: { secrets?: SecretSource; store?: MemoryTokenStore } = {}) {
  const settings = testSettings();
  const clock = new FakeClock();
  const store = options.store ?? new MemoryTokenStore();
  const crm = new FakeCrm(clock, settings.crmTimeoutMs);
  const fakeSecrets = new FakeSecrets(['default', 'a', 'other']);
  fakeSecrets.set('default', 'v1', PASSWORD);
  const secrets = options.secrets ?? fakeSecrets;
  const make = (instanceId: string) =>
    new VendService({ store, secrets, crm, clock, settings, instanceId, random: () => 0.5 });
  const service = make('a');
  const observability = createObservability({ logLevel: 'SILENT' });
  const handler = createVendHandler({ service, settings, clock, observability });
  const invoke = (event: unknown, context: Context = lambdaContext()) =>
    clock.run(handler(event, context) as Promise<unknown>);
  const rest = async (method: string, path: string, body: string | null = null) => {
    const result = (await invoke(restEvent(method, path, body))) as RestResult;
    return { ...result, json: JSON.parse(result.body) as Record<string, unknown> };
  };
  return { settings, clock, store, crm, secrets: fakeSecrets, make, handler, invoke, rest };
}

/** Asserts the contract's error shape exactly, and that nothing sensitive is in it. */
function expectErrorBody(body: unknown, code: string, retryable?: boolean): void {
  expect(Object.keys(body as object)).toEqual(['error']);
  const error = (body as { error: Record<string, unknown> }).error;
  expect(error.code).toBe(code);
  expect(typeof error.message).toBe('string');
  expect(typeof error.retryable).toBe('boolean');
  if (retryable !== undefined) expect(error.retryable).toBe(retryable);
  const keys = Object.keys(error).sort();
  expect(
    keys.join() === 'code,message,retryable' ||
      keys.join() === 'code,message,retryAfterSeconds,retryable',
  ).toBe(true);
  if ('retryAfterSeconds' in error) {
    expect(Number.isInteger(error.retryAfterSeconds)).toBe(true);
    expect(error.retryAfterSeconds as number).toBeGreaterThanOrEqual(1);
  }
  expectNoLeak(JSON.stringify(body));
}

function expectNoLeak(text: string, tokens: string[] = []): void {
  expect(text).not.toContain(PASSWORD);
  expect(text).not.toContain('secret-1');
  expect(text).not.toContain('Error:');
  expect(text).not.toMatch(/\bat .*[(:]/); // a stack frame
  expect(text).not.toMatch(/\.(ts|js):\d+|node:internal|file:\/\//);
  for (const token of tokens) expect(text).not.toContain(token);
}

describe('vend handler: success (CONTRACT §4, §5)', () => {
  it('answers GET /v1/tokens/{profile} with exactly the token body, no-store', async () => {
    // Prepare
    const { rest, clock, settings } = setup();
    const start = clock.now();
    // Act
    const answer = await rest('GET', '/v1/tokens/default');
    // Assess
    expect(answer.statusCode).toBe(200);
    expect(answer.headers['Cache-Control']).toBe('no-store');
    expect(answer.headers['Content-Type']).toBe('application/json');
    expect(Object.keys(answer.json)).toEqual([
      'token',
      'profile',
      'issuedAt',
      'expiresAt',
      'expiresInSeconds',
    ]);
    const { token, profile, issuedAt, expiresAt, expiresInSeconds } = answer.json;
    expect(token).toBe('TOKEN-0001');
    expect(profile).toBe('default');
    expect(issuedAt).toMatch(ISO_UTC);
    expect(expiresAt).toMatch(ISO_UTC);
    expect(Date.parse(issuedAt as string)).toBe(start);
    const advertised = (settings.tokenLifetimeSeconds - settings.releaseLeadSeconds) * 1000;
    expect(Date.parse(expiresAt as string)).toBe(start + advertised);
    // The login took 100 ms: 99.9 s are left, rounded down (invariant 2).
    expect(clock.now()).toBe(start + 100);
    expect(expiresInSeconds).toBe(advertised / 1000 - 1);
  });

  it('returns the same body object to a direct invoke, also through its own alias', async () => {
    const { invoke } = setup();
    const plain = await invoke({ action: 'getToken', profile: 'a' });
    const aliased = await invoke(
      { action: 'getToken', profile: 'a', minValiditySeconds: 5 },
      lambdaContext({ qualifier: 'profile-a' }),
    );
    expect(plain).toMatchObject({ token: 'TOKEN-0001', profile: 'a' });
    expect(Object.keys(plain as object)).toEqual([
      'token',
      'profile',
      'issuedAt',
      'expiresAt',
      'expiresInSeconds',
    ]);
    expect(aliased).toMatchObject({ token: 'TOKEN-0001', profile: 'a' });
  });

  it('invalidates through POST /v1/tokens/{profile}/invalidate and answers a different token', async () => {
    const { rest, crm } = setup();
    const first = await rest('GET', '/v1/tokens/default');
    const second = await rest(
      'POST',
      '/v1/tokens/default/invalidate',
      JSON.stringify({ token: first.json.token }),
    );
    expect(second.statusCode).toBe(200);
    expect(second.headers['Cache-Control']).toBe('no-store');
    expect(second.json.token).not.toBe(first.json.token);
    expect(crm.logins).toBe(2);
  });

  it('answers GET /v1/health with {"status":"ok"}: no secret read, no CRM.COM call', async () => {
    // Prepare: even with the secrets and CRM.COM failing
    const { rest, secrets, crm } = setup();
    secrets.failing = true;
    crm.behaviour = { kind: 'reject' };
    // Act
    const answer = await rest('GET', '/v1/health');
    // Assess
    expect(answer.statusCode).toBe(200);
    expect(answer.body).toBe('{"status":"ok"}');
    expect(answer.headers['Cache-Control']).toBe('no-store');
    expect(secrets.reads).toBe(0);
    expect(crm.loginAttempts).toBe(0);
  });
});

describe('vend handler: routing errors', () => {
  it.each([
    ['GET', '/v1/nope', null, 404, 'NOT_FOUND'],
    ['GET', '/v1/tokens/', null, 404, 'NOT_FOUND'],
    ['DELETE', '/v1/tokens/default', null, 405, 'METHOD_NOT_ALLOWED'],
    ['POST', '/v1/tokens/default/invalidate', 'x'.repeat(8193), 413, 'PAYLOAD_TOO_LARGE'],
    ['GET', '/v1/tokens/a.b', null, 400, 'INVALID_REQUEST'],
    ['POST', '/v1/tokens/default/invalidate', '{"token":1}', 400, 'INVALID_REQUEST'],
    ['GET', '/v1/tokens/zzz', null, 404, 'UNKNOWN_PROFILE'],
  ])('%s %s → %d %s in the error shape', async (method, path, body, status, code) => {
    const { rest, crm, secrets } = setup();
    const answer = await rest(method, path, body);
    expect(answer.statusCode).toBe(status);
    expect(answer.headers['Content-Type']).toBe('application/json');
    expect(answer.headers['Cache-Control']).toBe('no-store');
    expectErrorBody(answer.json, code, false);
    expect(crm.loginAttempts).toBe(0);
    expect(secrets.reads).toBe(0);
  });

  it('lists the allowed methods in the Allow header of a 405', async () => {
    const { rest } = setup();
    expect((await rest('GET', '/v1/tokens/default/invalidate')).headers.Allow).toBe('POST');
    expect((await rest('POST', '/v1/health')).headers.Allow).toBe('GET');
  });
});

describe('vend handler: aliases (FORBIDDEN_PROFILE, CONTRACT §7)', () => {
  it('refuses another profile through an alias, before existence is checked', async () => {
    // Prepare
    const { invoke, crm, secrets } = setup();
    const alias = lambdaContext({ qualifier: 'profile-a' });
    // Act
    const other = await invoke({ action: 'getToken', profile: 'other' }, alias);
    const unknown = await invoke({ action: 'getToken', profile: 'zzz' }, alias);
    const invalidate = await invoke({ action: 'invalidate', profile: 'zzz', token: 't' }, alias);
    // Assess
    expectErrorBody(other, 'FORBIDDEN_PROFILE', false);
    expectErrorBody(unknown, 'FORBIDDEN_PROFILE', false);
    expectErrorBody(invalidate, 'FORBIDDEN_PROFILE', false);
    expect(crm.loginAttempts).toBe(0);
    expect(secrets.reads).toBe(0);
  });

  it('answers UNKNOWN_PROFILE only without an alias or through the matching one', async () => {
    const { invoke } = setup();
    expectErrorBody(await invoke({ action: 'getToken', profile: 'zzz' }), 'UNKNOWN_PROFILE');
    expectErrorBody(
      await invoke(
        { action: 'getToken', profile: 'zzz' },
        lambdaContext({ qualifier: 'profile-zzz' }),
      ),
      'UNKNOWN_PROFILE',
    );
  });

  it('checks the request (400) before the alias (403)', async () => {
    const { invoke } = setup();
    const alias = lambdaContext({ qualifier: 'profile-a' });
    expectErrorBody(await invoke({ action: 'getToken', profile: 'a.b' }, alias), 'INVALID_REQUEST');
    expectErrorBody(await invoke({ action: 'nope', profile: 'other' }, alias), 'INVALID_REQUEST');
  });

  it('serves any profile through a qualifier that is not a profile alias', async () => {
    const { invoke } = setup();
    const versioned = await invoke(
      { action: 'getToken', profile: 'other' },
      lambdaContext({ qualifier: '3' }),
    );
    expect(versioned).toMatchObject({ profile: 'other' });
  });
});

describe('vend handler: CRM.COM and configuration errors', () => {
  it('answers 502 CRM_AUTH_FAILED, not retryable, Retry-After = backoff left', async () => {
    // Prepare
    const { rest, crm, clock } = setup();
    crm.behaviour = { kind: 'reject' };
    // Act
    const first = await rest('GET', '/v1/tokens/default');
    await clock.advance(10_000);
    const later = await rest('GET', '/v1/tokens/default');
    // Assess
    expect(first.statusCode).toBe(502);
    expectErrorBody(first.json, 'CRM_AUTH_FAILED', false);
    // AUTH_FAILURE_BACKOFF_SECONDS is 60, counted from the attempt (100 ms before the answer).
    expect(first.headers['Retry-After']).toBe('60');
    expect((first.json.error as Record<string, unknown>).retryAfterSeconds).toBe(60);
    expect(later.statusCode).toBe(502);
    expect(later.headers['Retry-After']).toBe('50');
    expect((later.json.error as Record<string, unknown>).retryAfterSeconds).toBe(50);
    expect(crm.loginAttempts).toBe(1);
  });

  it.each([
    ['unavailable', { kind: 'unavailable' } as const],
    ['hanging', { kind: 'hang' } as const],
  ])(
    'answers 503 CRM_UNAVAILABLE, retryable, with Retry-After, when CRM.COM is %s',
    async (_label, behaviour) => {
      const { rest, crm } = setup();
      crm.behaviour = behaviour;
      const answer = await rest('GET', '/v1/tokens/default');
      expect(answer.statusCode).toBe(503);
      expectErrorBody(answer.json, 'CRM_UNAVAILABLE', true);
      const retryAfter = (answer.json.error as Record<string, unknown>).retryAfterSeconds;
      expect(Number.isInteger(retryAfter)).toBe(true);
      expect(answer.headers['Retry-After']).toBe(String(retryAfter));
    },
  );

  it('answers the direct invoke with the error object instead of throwing', async () => {
    const { handler, crm, clock } = setup();
    crm.behaviour = { kind: 'unavailable' };
    const pending = handler({ action: 'getToken', profile: 'default' }, lambdaContext());
    const result = await clock.run(pending as Promise<unknown>);
    expectErrorBody(result, 'CRM_UNAVAILABLE', true);
  });

  it('answers a deadline-bound 503 when another instance holds the lease too long', async () => {
    // Prepare: instance b logs in very slowly and holds the lease
    const { make, crm, clock, invoke } = setup();
    crm.latencyMs = 60_000;
    const holder = make('b').getToken('default');
    holder.catch(() => {});
    await clock.advance(10);
    const start = clock.now();
    // Act: 2.5 s left in this Lambda, 1.5 s of which are kept to answer
    const result = await invoke(
      { action: 'getToken', profile: 'default' },
      lambdaContext({ remainingMs: 2500 }),
    );
    // Assess
    expectErrorBody(result, 'CRM_UNAVAILABLE', true);
    expect(clock.now() - start).toBeLessThanOrEqual(1500);
    expect(crm.loginAttempts).toBe(1);
  });

  it.each([
    ['not JSON', `{"username":"u","password":"${PASSWORD}","organisation":`],
    ['lacking organisation', JSON.stringify({ username: 'u', password: PASSWORD })],
    [
      'with both password and webApiKey',
      JSON.stringify({ username: 'u', password: PASSWORD, organisation: 'O', webApiKey: PASSWORD }),
    ],
    ['not an object', JSON.stringify([PASSWORD])],
  ])('answers 500 MISCONFIGURED for a secret %s, never echoing it', async (_label, value) => {
    // Prepare
    const fetcher: SecretFetcher = {
      has: (profile) => profile === 'default',
      fetch: async () => ({ version: 'v1', value }),
    };
    const clock = new FakeClock();
    const { rest, crm } = setup({ secrets: new CachedSecretSource(fetcher, clock, 300) });
    // Act
    const answer = await rest('GET', '/v1/tokens/default');
    // Assess
    expect(answer.statusCode).toBe(500);
    expectErrorBody(answer.json, 'MISCONFIGURED');
    expect(answer.body).not.toContain('"u"');
    expect(crm.loginAttempts).toBe(0);
  });

  it('answers 500 MISCONFIGURED when the secret cannot be read', async () => {
    const { rest, secrets } = setup();
    secrets.failing = true;
    const answer = await rest('GET', '/v1/tokens/default');
    expect(answer.statusCode).toBe(500);
    expectErrorBody(answer.json, 'MISCONFIGURED');
  });

  it('answers 500 INTERNAL when the store throws, with nothing of the error in the body', async () => {
    // Prepare: a store failure whose message and stack carry what must never reach a caller
    class BrokenStore extends MemoryTokenStore {
      override async getState(): Promise<never> {
        const error = new TypeError(
          `socket hang up password=${PASSWORD} at /var/task/index.js:1:2`,
        );
        error.stack = `TypeError: ${error.message}\n    at getState (/work/functions/x.ts:10:5)`;
        throw error;
      }
    }
    const { rest, invoke } = setup({ store: new BrokenStore() });
    // Act
    const answer = await rest('GET', '/v1/tokens/default');
    const direct = await invoke({ action: 'invalidate', profile: 'default', token: 'TOKEN-X' });
    // Assess
    expect(answer.statusCode).toBe(500);
    expectErrorBody(answer.json, 'INTERNAL');
    expect(answer.body).not.toContain('socket');
    expect(answer.body).not.toContain('TOKEN-X');
    expectErrorBody(direct, 'INTERNAL');
    expect(JSON.stringify(direct)).not.toContain('TOKEN-X');
  });

  it('never puts the token in an error body, even after a token was vended', async () => {
    const { rest, invoke, crm } = setup();
    const ok = await rest('GET', '/v1/tokens/default');
    const token = ok.json.token as string;
    crm.behaviour = { kind: 'reject' };
    const answers = [
      await rest('POST', '/v1/tokens/default/invalidate', JSON.stringify({ token })),
      await rest('POST', '/v1/tokens/zzz/invalidate', JSON.stringify({ token })),
      await rest('POST', `/v1/tokens/${token}.x/invalidate`, JSON.stringify({ token })),
    ];
    const direct = await invoke(
      { action: 'invalidate', profile: 'other', token },
      lambdaContext({ qualifier: 'profile-a' }),
    );
    expect(answers.map((a) => a.statusCode)).toEqual([502, 404, 400]);
    for (const answer of answers) expectNoLeak(answer.body, [token]);
    expectNoLeak(JSON.stringify(direct), [token]);
  });
});

describe('vend handler: fuzzed entry points (issue 7, item 4)', () => {
  // The long runs are in test/fuzz/entry-points.fuzz.test.ts (npm run test:fuzz).
  const RUNS = 300;

  it('answers any API Gateway-like event in the contract shape, never throwing or leaking', async () => {
    await fc.assert(restEventProperty(), { numRuns: RUNS });
  });

  it('answers any direct-invoke payload with a token or error object, never throwing or leaking', async () => {
    await fc.assert(directPayloadProperty(), { numRuns: RUNS });
  });
});
