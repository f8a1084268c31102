import { connect } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  errorBodyProblems,
  httpAnswerProblems,
  httpRequest,
  restAnswerProblems,
} from '../support/entry-points.js';
import { startTestService, type TestResponse, type TestService } from '../support/local-service.js';

// The local server (CONTRACT §6) running the real vend handler over the real DynamoDB store
// (embedded dynalite) against the bundled CRM.COM simulator, reached over HTTP.

const FILE_PASSWORD = 'S3cret-in-file';
const FILE_KEY = 'K3y-in-file';
const SECRETS = [FILE_PASSWORD, FILE_KEY];
const demo = { username: 'demo', password: 'demo', organisation: 'DEMO' };
// JSON.parse, so that `__proto__` is a profile of its own rather than the object's prototype.
const profiles = JSON.parse(
  JSON.stringify({
    'p-cache': demo,
    'p-invalidate': demo,
    'p-reject': demo,
    'p-unavailable': demo,
    'p-hang': demo,
    'p-slow': demo,
    constructor: demo,
    'bad-org': { username: 'demo', password: FILE_PASSWORD },
    'bad-both': {
      username: 'demo',
      password: FILE_PASSWORD,
      organisation: 'DEMO',
      webApiKey: FILE_KEY,
    },
  }).replace(/^\{/, `{"__proto__":${JSON.stringify(demo)},`),
) as Record<string, unknown>;

let vendor: TestService;

beforeAll(async () => {
  vendor = await startTestService({}, { profiles });
});

afterAll(async () => {
  await vendor?.stop();
});

function errorOf(answer: TestResponse): Record<string, unknown> {
  return answer.json<{ error: Record<string, unknown> }>().error;
}

/** Every answer of this file passes the same contract checks (shape, headers, no leak). */
function expectContract(answer: TestResponse): void {
  const problems = restAnswerProblems(
    { status: answer.status, headers: answer.headers, body: answer.text },
    SECRETS,
    vendor.simulator.issuedTokens(),
  );
  expect(problems).toEqual([]);
}

async function call(path: string, options: Parameters<TestService['request']>[1] = {}) {
  const answer = await vendor.request(path, options);
  expectContract(answer);
  return answer;
}

const invalidateBody = (token: string) => JSON.stringify({ token });

describe('local HTTP API: success (CONTRACT §4)', () => {
  it('vends a simulator token with the token body and Cache-Control: no-store', async () => {
    const answer = await call('/v1/tokens/default');
    expect(answer.status).toBe(200);
    expect(answer.headers['cache-control']).toBe('no-store');
    const body = answer.json<Record<string, unknown>>();
    expect(Object.keys(body)).toEqual([
      'token',
      'profile',
      'issuedAt',
      'expiresAt',
      'expiresInSeconds',
    ]);
    expect(vendor.simulator.issuedTokens()).toContain(body.token);
    expect(body.profile).toBe('default');
  });

  it('serves a second GET from the cache: one login for both', async () => {
    // Prepare
    const before = vendor.simulator.stats().logins;
    // Act
    const first = await call('/v1/tokens/p-cache');
    const second = await call('/v1/tokens/p-cache?minValiditySeconds=1');
    // Assess
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.json<{ token: string }>().token).toBe(first.json<{ token: string }>().token);
    expect(vendor.simulator.stats().logins - before).toBe(1);
  });

  it('invalidates the current token: 200 with a different token, one more login', async () => {
    const first = await call('/v1/tokens/p-invalidate');
    const token = first.json<{ token: string }>().token;
    const before = vendor.simulator.stats().logins;
    const second = await call('/v1/tokens/p-invalidate/invalidate', {
      method: 'POST',
      body: invalidateBody(token),
      headers: { 'Content-Type': 'application/json' },
    });
    expect(second.status).toBe(200);
    expect(second.headers['cache-control']).toBe('no-store');
    expect(second.json<{ token: string }>().token).not.toBe(token);
    expect(vendor.simulator.stats().logins - before).toBe(1);
  });

  it('answers GET /v1/health with {"status":"ok"} and calls no CRM.COM', async () => {
    const before = vendor.simulator.stats().loginAttempts;
    const answer = await call('/v1/health');
    expect(answer.status).toBe(200);
    expect(answer.text).toBe('{"status":"ok"}');
    expect(vendor.simulator.stats().loginAttempts).toBe(before);
  });

  it('serves profiles named like Object.prototype members as plain profiles', async () => {
    expect((await call('/v1/tokens/constructor')).status).toBe(200);
    expect((await call('/v1/tokens/__proto__')).status).toBe(200);
    const unknown = await call('/v1/tokens/toString');
    expect(unknown.status).toBe(404);
    expect(errorOf(unknown).code).toBe('UNKNOWN_PROFILE');
  });

  it('takes query keys and headers named __proto__, constructor or toString', async () => {
    const answer = await call(
      '/v1/tokens/default?__proto__=1&constructor=2&toString=3&toString=4',
      {
        headers: { constructor: 'x', __proto__: 'y', toString: 'z' },
      },
    );
    expect(answer.status).toBe(200);
  });
});

describe('local HTTP API: every error status of §4', () => {
  it.each([
    ['GET', '/v1/nope', 404, 'NOT_FOUND'],
    ['GET', '/v1/tokens/', 404, 'NOT_FOUND'],
    ['POST', '/v1/tokens//invalidate', 404, 'NOT_FOUND'],
    ['GET', '/v1/tokens/default/', 404, 'NOT_FOUND'],
    ['GET', '//x/v1/health', 404, 'NOT_FOUND'],
    ['GET', '/v1/health/', 404, 'NOT_FOUND'],
    ['DELETE', '/v1/tokens/default', 405, 'METHOD_NOT_ALLOWED'],
    ['GET', '/v1/tokens/default/invalidate', 405, 'METHOD_NOT_ALLOWED'],
    ['POST', '/v1/health', 405, 'METHOD_NOT_ALLOWED'],
    ['GET', '/v1/tokens/a.b', 400, 'INVALID_REQUEST'],
    ['GET', `/v1/tokens/${'a'.repeat(65)}`, 400, 'INVALID_REQUEST'],
    ['GET', '/v1/tokens/a%2Fb', 400, 'INVALID_REQUEST'],
    ['GET', '/v1/tokens/%ZZ', 400, 'INVALID_REQUEST'],
    ['GET', '/v1/tokens/caf%C3%A9', 400, 'INVALID_REQUEST'],
    ['GET', '/v1/tokens/default?minValiditySeconds=', 400, 'INVALID_REQUEST'],
    ['GET', '/v1/tokens/default?minValiditySeconds=-1', 400, 'INVALID_REQUEST'],
    ['GET', '/v1/tokens/default?minValiditySeconds=1.5', 400, 'INVALID_REQUEST'],
    ['GET', '/v1/tokens/default?minValiditySeconds=1e3', 400, 'INVALID_REQUEST'],
    ['GET', '/v1/tokens/default?minValiditySeconds=%205', 400, 'INVALID_REQUEST'],
    ['GET', '/v1/tokens/default?minValiditySeconds=+5', 400, 'INVALID_REQUEST'],
    ['GET', '/v1/tokens/default?minValiditySeconds=0x10', 400, 'INVALID_REQUEST'],
    ['GET', '/v1/tokens/default?minValiditySeconds=4', 400, 'INVALID_REQUEST'], // REFRESH_AHEAD is 3
    ['GET', '/v1/tokens/default?minValiditySeconds=1&minValiditySeconds=1', 400, 'INVALID_REQUEST'],
    ['GET', '/v1/tokens/zzz', 404, 'UNKNOWN_PROFILE'],
    ['POST', '/v1/tokens/zzz/invalidate', 404, 'UNKNOWN_PROFILE'],
  ])('%s %s → %d %s', async (method, path, status, code) => {
    const answer = await call(path, {
      method,
      ...(method === 'POST' ? { body: invalidateBody('t') } : {}),
    });
    expect(answer.status).toBe(status);
    expect(errorOf(answer).code).toBe(code);
    if (status === 405) expect(answer.headers.allow).toMatch(/^(GET|POST)$/);
  });

  it.each([
    ['', 'an empty body'],
    ['{"token":', 'malformed JSON'],
    ['["t"]', 'an array'],
    ['null', 'null'],
    ['{}', 'no token'],
    ['{"token":5}', 'a number token'],
    ['{"token":""}', 'an empty token'],
  ])('POST invalidate with %j (%s) → 400 INVALID_REQUEST', async (body) => {
    const answer = await call('/v1/tokens/default/invalidate', { method: 'POST', body });
    expect(answer.status).toBe(400);
    expect(errorOf(answer).code).toBe('INVALID_REQUEST');
  });

  it('takes minValiditySeconds 0, REFRESH_AHEAD_SECONDS and leading zeros', async () => {
    for (const value of ['0', '3', '003']) {
      expect((await call(`/v1/tokens/default?minValiditySeconds=${value}`)).status).toBe(200);
    }
  });

  it('answers 413 over 8 KiB, text or binary, and not at 8 KiB', async () => {
    // Prepare: JSON bodies of exactly 8192 and 8193 bytes, and binary (non-UTF-8) ones
    const shell = invalidateBody('').length;
    const fits = invalidateBody('t'.repeat(8192 - shell));
    const over = invalidateBody('t'.repeat(8193 - shell));
    const post = (body: string | Buffer) =>
      call('/v1/tokens/default/invalidate', { method: 'POST', body });
    // Act
    const answers = [
      await post(fits),
      await post(over),
      await post(Buffer.alloc(8193, 0xff)),
      await post(Buffer.alloc(8000, 0xff)),
    ];
    // Assess: 8192 bytes pass the size check (an unknown token then answers like a vend)
    expect(answers.map((a) => a.status)).toEqual([200, 413, 413, 400]);
    expect(errorOf(answers[1] as TestResponse).code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('keeps 404 and 405 before 413 for a body over the 6 MB read limit', async () => {
    const huge = Buffer.alloc(6 * 1024 * 1024 + 10, 0x61);
    const unknownPath = await call('/v1/nope', { method: 'POST', body: huge });
    const wrongMethod = await call('/v1/health', { method: 'POST', body: huge });
    const tooLarge = await call('/v1/tokens/default/invalidate', { method: 'POST', body: huge });
    expect([unknownPath.status, wrongMethod.status, tooLarge.status]).toEqual([404, 405, 413]);
  });

  it('answers 502 CRM_AUTH_FAILED with Retry-After when CRM.COM rejects the login', async () => {
    // Prepare
    vendor.simulator.setFaults({ login: 'reject', count: 1 });
    // Act
    const answer = await call('/v1/tokens/p-reject');
    const again = await call('/v1/tokens/p-reject');
    // Assess: AUTH_FAILURE_BACKOFF_SECONDS is 60 by default; no second login attempt
    expect(answer.status).toBe(502);
    expect(errorOf(answer)).toMatchObject({ code: 'CRM_AUTH_FAILED', retryable: false });
    expect(Number(answer.headers['retry-after'])).toBeGreaterThanOrEqual(59);
    expect(answer.headers['retry-after']).toBe(String(errorOf(answer).retryAfterSeconds));
    expect(again.status).toBe(502);
  });

  it.each([
    ['unavailable', 'p-unavailable'],
    ['hang', 'p-hang'],
  ] as const)(
    'answers 503 CRM_UNAVAILABLE with Retry-After on the %s fault',
    async (fault, profile) => {
      vendor.simulator.setFaults({ login: fault, count: 1 });
      const started = Date.now();
      const answer = await call(`/v1/tokens/${profile}`);
      expect(answer.status).toBe(503);
      expect(errorOf(answer)).toMatchObject({ code: 'CRM_UNAVAILABLE', retryable: true });
      expect(answer.headers['retry-after']).toMatch(/^\d+$/);
      // CRM_TIMEOUT_MS is 500: a hanging CRM.COM costs one timeout, not a Lambda timeout.
      expect(Date.now() - started).toBeLessThan(3000);
    },
  );

  it.each([
    ['bad-org', 'lacks organisation'],
    ['bad-both', 'has both password and webApiKey'],
  ])('answers 500 MISCONFIGURED for %s (its secret %s), echoing nothing of it', async (profile) => {
    const before = vendor.simulator.stats().loginAttempts;
    const answer = await call(`/v1/tokens/${profile}`);
    expect(answer.status).toBe(500);
    expect(errorOf(answer).code).toBe('MISCONFIGURED');
    expect(answer.text).not.toContain('demo');
    expect(vendor.simulator.stats().loginAttempts).toBe(before);
  });
});

/** Sends raw bytes and collects what the server answers until it closes or `waitMs` passes. */
function raw(
  data: string | Buffer,
  options: { waitMs?: number; destroyAfterMs?: number } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(vendor.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    const timer = setTimeout(done, options.destroyAfterMs ?? options.waitMs ?? 2000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('close', done);
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.write(data);
  });
}

async function expectServing(): Promise<void> {
  const health = await vendor.request('/v1/health', { timeoutMs: 3000 });
  expect(health.status).toBe(200);
}

describe('local HTTP server: nasty clients', () => {
  it.each([
    ['garbage', 'GARBAGE\r\n\r\n'],
    ['a bad request line', 'GET\r\n\r\n'],
    ['a bad header', 'GET /v1/health HTTP/1.1\r\nBad Header\r\n\r\n'],
    ['a bad content length', 'POST /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'],
    [
      'conflicting lengths',
      'POST /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
    ],
    ['a NUL in the target', 'GET /v1/\u0000health HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['HTTP/9', 'GET /v1/health HTTP/9.9\r\nHost: x\r\n\r\n'],
    ['a method the HTTP parser does not know', 'FROB /v1/health HTTP/1.1\r\nHost: x\r\n\r\n'],
    [
      'raw non-ASCII bytes',
      Buffer.concat([
        Buffer.from('GET /v1/tokens/'),
        Buffer.from([0xc3, 0xa9, 0xff]),
        Buffer.from(' HTTP/1.1\r\nHost: x\r\n\r\n'),
      ]),
    ],
  ])(
    'answers %s with 400 INVALID_REQUEST in the contract shape and keeps serving',
    async (_label, data) => {
      const answer = await raw(data, { waitMs: 1000 });
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
      expect(answer).toMatch(/\r\nCache-Control: no-store\r\n/i);
      const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as unknown;
      expect(errorBodyProblems(body)).toEqual([]);
      expect(body).toMatchObject({ error: { code: 'INVALID_REQUEST' } });
      await expectServing();
    },
  );

  it.each([
    ['an asterisk target', 'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 400],
    [
      'an absolute-form target',
      'GET http://127.0.0.1/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      200,
    ],
  ])('answers %s in the contract shape', async (_label, data, status) => {
    const answer = await raw(data);
    expect(answer).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    const body = answer.slice(answer.indexOf('\r\n\r\n') + 4);
    expect(() => JSON.parse(body)).not.toThrow();
    await expectServing();
  });

  it('keeps serving others while a client never sends the body it announced', async () => {
    // Prepare: a request that announces 100 bytes and sends 5
    const stalled = connect(vendor.port, '127.0.0.1');
    await new Promise<void>((resolve) => stalled.once('connect', resolve));
    stalled.write(
      'POST /v1/tokens/default/invalidate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"tok',
    );
    try {
      // Act / Assess: others are served at once, again and again
      for (let i = 0; i < 3; i++) await expectServing();
      expect((await vendor.request('/v1/tokens/default')).status).toBe(200);
    } finally {
      stalled.destroy();
    }
  });

  it('survives clients that disconnect mid-body and mid-answer', async () => {
    // Prepare: a slow login, so the client is gone before the answer
    vendor.simulator.setFaults({ loginDelayMs: 300, count: 1 });
    // Act
    await raw(
      'POST /v1/tokens/default/invalidate HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{"to',
      {
        destroyAfterMs: 20,
      },
    );
    await raw('GET /v1/tokens/p-slow HTTP/1.1\r\nHost: x\r\n\r\n', { destroyAfterMs: 50 });
    await new Promise((r) => setTimeout(r, 400));
    // Assess: the abandoned login still completed and its token is served
    await expectServing();
    const before = vendor.simulator.stats().logins;
    expect((await call('/v1/tokens/p-slow')).status).toBe(200);
    expect(vendor.simulator.stats().logins).toBe(before);
  });

  it('serves pipelined and keep-alive requests on one connection', async () => {
    const request = 'GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n';
    const answer = await raw(
      `${request}${request}GET /v1/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    );
    expect(answer.match(/HTTP\/1\.1 200 /g)).toHaveLength(2);
    expect(answer).toMatch(/HTTP\/1\.1 404 /);
  });
});

describe('local HTTP API: fuzzed requests (issue 2, issue 7 item 4)', () => {
  it('answers random methods, paths, queries and bodies in the contract shape, and keeps serving', async () => {
    // The long run is in test/fuzz/entry-points.fuzz.test.ts.
    await fc.assert(
      fc.asyncProperty(httpRequest, async (request) => {
        const answer = await vendor.request(request.path, request);
        const problems = httpAnswerProblems(
          request,
          answer,
          SECRETS,
          vendor.simulator.issuedTokens(),
        );
        if (problems.length > 0) throw new Error(`${answer.status}: ${problems.join('; ')}`);
      }),
      { numRuns: 120 },
    );
    await expectServing();
  });
});
