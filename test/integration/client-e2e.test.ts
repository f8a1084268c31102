/**
 * The consumer clients (docs/client.md) end to end: the real local service in process (its
 * Lambda Invoke API and REST API, an embedded DynamoDB and the bundled CRM.COM simulator), a real
 * `LambdaClient`, real HTTP. Each test gets a fresh service, so counts start at zero.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvokeCommand, type InvokeCommandInput, LambdaClient } from '@aws-sdk/client-lambda';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createHttpTokenClient,
  createTokenClient,
  crmStatusCode,
  type HttpTokenClientOptions,
  type LambdaTokenClientOptions,
  type TokenClient,
  TokenVendorError,
  type VendorTokenContext,
  vendorToken,
  withVendorToken,
} from '../../functions/client/index.js';
import { type CrmSimulator, simulatorFingerprint } from '../../functions/local/crm-simulator.js';
import { type LocalService, startLocalService } from '../../functions/local/local-service.js';
import { FAST_ENV } from '../support/local-service.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

/** Short lifetimes (8 s advertised validity) so one test sees refresh-ahead in seconds. */
const ENV = { ...FAST_ENV, LOG_LEVEL: 'SILENT', PORT: '0', MEMORY_CACHE_SECONDS: '1' };
const ADVERTISED_SECONDS = 12 - 4;

/** `default` is the simulator's demo user; `other` the same user; `webkey` its web API key. */
const PROFILES = {
  other: { username: 'demo', password: 'demo', organisation: 'DEMO' },
  webkey: { webApiKey: 'demo-web-api-key' },
};

process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';

interface Invocation {
  readonly functionName: string;
  readonly qualifier: string | undefined;
  readonly payload: Record<string, unknown>;
}

let dir: string;
let service: LocalService;
let simulator: CrmSimulator;
let lambdaClient: LambdaClient;
/** Every Invoke the test's LambdaClient sent, in order. */
let invocations: Invocation[];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'client-e2e-'));
  const profilesFile = join(dir, 'profiles.json');
  writeFileSync(profilesFile, JSON.stringify(PROFILES));
  service = await startLocalService({ ...ENV, PROFILES_FILE: profilesFile });
  simulator = service.simulator!;
  invocations = [];
  lambdaClient = new LambdaClient({
    endpoint: service.url,
    region: 'us-east-1',
    credentials: CREDENTIALS,
  });
  lambdaClient.middlewareStack.add(
    (next) => async (args) => {
      const input = args.input as InvokeCommandInput;
      const raw = input.Payload;
      const text = raw instanceof Uint8Array ? new TextDecoder().decode(raw) : String(raw);
      const payload = JSON.parse(text) as Record<string, unknown>;
      invocations.push({
        functionName: String(input.FunctionName),
        qualifier: input.Qualifier,
        payload,
      });
      return next(args);
    },
    { step: 'initialize', name: 'recordInvocations' },
  );
});

afterEach(async () => {
  vi.unstubAllEnvs();
  vi.resetModules();
  simulator.setFaults({ login: 'none', release: 'none', loginDelayMs: 0, releaseDelayMs: 0 });
  lambdaClient.destroy();
  await service.stop();
  rmSync(dir, { recursive: true, force: true });
});

function vendClient(profile = 'default', options: Partial<LambdaTokenClientOptions> = {}) {
  return createTokenClient({ functionName: 'vend', profile, lambdaClient, ...options });
}

function httpClient(profile = 'default', options: Partial<HttpTokenClientOptions> = {}) {
  return createHttpTokenClient({
    baseUrl: service.url,
    region: 'us-east-1',
    profile,
    credentials: CREDENTIALS,
    ...options,
  });
}

/** Invokes of the vend function with `action`. */
function vendCalls(action?: string): Invocation[] {
  return invocations.filter(
    (call) =>
      call.functionName === 'vend' && (action === undefined || call.payload.action === action),
  );
}

/** The operators' tool (CONTRACT §5): releases a profile's live tokens, clears its current one. */
async function revokeProfile(profile: string): Promise<unknown> {
  const output = await lambdaClient.send(
    new InvokeCommand({
      FunctionName: 'release',
      Payload: new TextEncoder().encode(JSON.stringify({ action: 'revokeProfile', profile })),
    }),
  );
  return JSON.parse(new TextDecoder().decode(output.Payload));
}

/** CRM.COM's data call with `token`, as a consumer makes it. */
async function listContacts(token: string): Promise<unknown> {
  const response = await fetch(
    `${simulator.url}/contacts/list?token=${encodeURIComponent(token)}`,
    {
      signal: AbortSignal.timeout(5000),
    },
  );
  return response.json();
}

/** What a failed call threw (tokens never appear in assertion output: fingerprints only). */
async function failure(promise: Promise<unknown>): Promise<TokenVendorError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TokenVendorError);
  return error as TokenVendorError;
}

const fp = simulatorFingerprint;

/** Runs `node --import tsx --input-type=module -e code` in the repo root; resolves to stdout. */
function runModule(code: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', code],
      { cwd: REPO_ROOT, timeout: 15_000, env: { ...process.env, NODE_NO_WARNINGS: '1' } },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`the snippet failed: ${stderr.slice(0, 500)}`));
        else resolve(stdout);
      },
    );
  });
}

describe('createTokenClient over the local Invoke API', () => {
  it('runs the five-line local example of docs/client.md as written', async () => {
    // Prepare
    const doc = readFileSync(join(REPO_ROOT, 'docs/client.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## Local mode in five lines'));
    const snippet = /```ts\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
    expect(snippet.trim().split('\n')).toHaveLength(5);
    expect(snippet.split('http://127.0.0.1:3000')).toHaveLength(2);

    // Act: only the port differs from the document (this service listens on an ephemeral one).
    const stdout = await runModule(snippet.replace('http://127.0.0.1:3000', service.url));

    // Assess
    const printed = Number(stdout.trim());
    expect(Number.isInteger(printed)).toBe(true);
    expect(printed).toBeGreaterThanOrEqual(1);
    expect(printed).toBeLessThanOrEqual(ADVERTISED_SECONDS);
    expect(simulator.stats().logins).toBe(1);
  });

  it('serves concurrent and repeated calls from one invoke and one login', async () => {
    // Prepare
    const client = vendClient();

    // Act
    const concurrent = await Promise.all(Array.from({ length: 20 }, () => client.getToken()));
    const sequential = [];
    for (let i = 0; i < 20; i += 1) sequential.push(await client.getToken());

    // Assess
    const tokens = new Set([...concurrent, ...sequential].map((v) => fp(v.token)));
    expect(tokens.size).toBe(1);
    expect(vendCalls()).toStrictEqual([
      {
        functionName: 'vend',
        qualifier: 'profile-default',
        payload: { action: 'getToken', profile: 'default' },
      },
    ]);
    expect(simulator.stats().logins).toBe(1);
    const first = concurrent[0]!;
    expect(first.profile).toBe('default');
    expect(first.expiresInSeconds).toBeGreaterThanOrEqual(1);
    expect(first.expiresInSeconds).toBeLessThanOrEqual(ADVERTISED_SECONDS);
    expect(await listContacts(first.token)).toMatchObject({ status: { code: 'OK' } });
  });

  it('gets a new token before the current one expires, with no call failing', async () => {
    // Prepare
    const client = vendClient();
    const startedAt = performance.now();
    const first = await client.getToken();
    const firstValidUntil = startedAt + first.expiresInSeconds * 1000;
    const statuses: string[] = [];
    let switchedAt: number | undefined;

    // Act: a consumer calling CRM.COM every 100 ms until it is handed the next token.
    while (switchedAt === undefined && performance.now() - startedAt < 10_000) {
      const answer = await client.withToken(async (token) => {
        if (token !== first.token) switchedAt = performance.now();
        return listContacts(token);
      });
      statuses.push(crmStatusCode(answer) ?? 'none');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    // Assess
    expect(switchedAt).toBeDefined();
    expect(switchedAt!).toBeLessThan(firstValidUntil);
    expect(new Set(statuses)).toStrictEqual(new Set(['OK']));
    expect(vendCalls('invalidate')).toHaveLength(0);
    // The client re-asks only at its refresh points (a quarter of the validity left each time:
    // about six before the switch), however often it is called.
    expect(statuses.length).toBeGreaterThan(10);
    expect(vendCalls('getToken').length).toBeLessThanOrEqual(8);
    expect(simulator.stats().logins).toBe(2);
  });

  it('invalidates a token CRM.COM rejects and retries once with a new one', async () => {
    // Prepare
    const client = vendClient();
    const first = await client.withToken(async (token) => ({
      token,
      answer: await listContacts(token),
    }));
    expect(crmStatusCode(first.answer)).toBe('OK');
    expect(await revokeProfile('default')).toMatchObject({ released: 1 });
    const seen: string[] = [];

    // Act
    const answer = await client.withToken(async (token) => {
      seen.push(fp(token));
      return listContacts(token);
    });

    // Assess
    expect(crmStatusCode(answer)).toBe('OK');
    expect(seen).toHaveLength(2);
    expect(seen[0]).toBe(fp(first.token));
    expect(seen[1]).not.toBe(fp(first.token));
    const invalidations = vendCalls('invalidate');
    expect(invalidations).toHaveLength(1);
    expect(invalidations[0]?.payload.token === first.token).toBe(true);
    expect(simulator.stats().logins).toBe(2);
    // The replacement is cached: the next call needs no invoke.
    await client.getToken();
    expect(vendCalls()).toHaveLength(2);
  });

  it('shares one invalidate among concurrent calls that see the same rejection', async () => {
    // Prepare
    const client = vendClient();
    await client.getToken();
    await revokeProfile('default');
    let runs = 0;

    // Act
    const answers = await Promise.all(
      Array.from({ length: 25 }, () =>
        client.withToken((token) => {
          runs += 1;
          return listContacts(token);
        }),
      ),
    );

    // Assess
    expect(new Set(answers.map((a) => crmStatusCode(a)))).toStrictEqual(new Set(['OK']));
    expect(runs).toBe(50);
    expect(vendCalls('invalidate')).toHaveLength(1);
    expect(simulator.stats().logins).toBe(2);
  });

  it('retries a token that stays rejected only once: one invalidate, no storm', async () => {
    // Prepare: every token this consumer is handed is ended at CRM.COM before its data call.
    const client = vendClient();
    const endAndList = async (token: string) => {
      await fetch(`${simulator.url}/authentication/token/release`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token }),
      });
      return listContacts(token);
    };
    let runs = 0;

    // Act
    const answer = await client.withToken((token) => {
      runs += 1;
      return endAndList(token);
    });

    // Assess: the second rejection comes back as it is.
    expect(crmStatusCode(answer)).toBe('INVALID_TOKEN');
    expect(runs).toBe(2);
    expect(vendCalls('getToken')).toHaveLength(1);
    expect(vendCalls('invalidate')).toHaveLength(1);
    expect(simulator.stats().dataCalls).toBe(2);
    expect(simulator.stats().logins).toBe(2);
  });

  it('keeps serving its cached token while the vendor cannot be reached', async () => {
    // Prepare: a client clock past the token's refresh point, well before its expiry.
    let now = 0;
    const client = vendClient('default', { clock: { now: () => now } });
    const first = await client.getToken();
    await service.stop();
    now += 3000;

    // Act
    const stale = await client.getToken();
    const again = await client.getToken();

    // Assess: one failed attempt, then the cached token until the retry pause ends.
    expect(fp(stale.token)).toBe(fp(first.token));
    expect(stale.expiresInSeconds).toBe(first.expiresInSeconds - 3);
    expect(fp(again.token)).toBe(fp(first.token));
    expect(vendCalls('getToken')).toHaveLength(2);
    now = first.expiresInSeconds * 1000;
    const error = await failure(client.getToken());
    expect(error).toMatchObject({ code: 'INTERNAL', retryable: true });
  });

  it('the middleware and the handler wrapper put a working token on the context', async () => {
    // Prepare
    const client = vendClient();
    const context = () => ({ awsRequestId: 'req' }) as Context & VendorTokenContext;
    const simple = middy<unknown, unknown>()
      .use(vendorToken({ client }))
      .handler(async (_event, ctx) => listContacts(ctx.crmToken));
    const retrying = middy(
      withVendorToken(async (_event: unknown, ctx) => listContacts(ctx.crmToken), { client }),
    );

    // Act
    const before = await simple({}, context());
    await revokeProfile('default');
    const afterRevoke = await retrying({}, context());

    // Assess
    expect(crmStatusCode(before)).toBe('OK');
    expect(crmStatusCode(afterRevoke)).toBe('OK');
    expect(vendCalls().map((c) => c.payload.action)).toStrictEqual(['getToken', 'invalidate']);
    expect(simulator.stats().dataCalls).toBe(3);
  });

  it('logs in with a web API key profile and its token works', async () => {
    // Prepare
    const client = vendClient('webkey');

    // Act
    const answer = await client.withToken((token) => listContacts(token));

    // Assess
    expect(crmStatusCode(answer)).toBe('OK');
    expect(vendCalls()[0]?.qualifier).toBe('profile-webkey');
    const logins = simulator.requests().filter((r) => r.path.endsWith('/token'));
    expect(logins.map((r) => r.path)).toStrictEqual([
      '/crmapi/rest/v2/authentication/web_api_key/token',
    ]);
  });

  it('invokes the unqualified function when asked to', async () => {
    // Prepare
    const client = vendClient('other', { qualifier: false });

    // Act
    const vended = await client.getToken({ minValiditySeconds: 2 });

    // Assess
    expect(vended.profile).toBe('other');
    expect(vended.expiresInSeconds).toBeGreaterThanOrEqual(2);
    expect(vendCalls()).toStrictEqual([
      {
        functionName: 'vend',
        qualifier: undefined,
        payload: { action: 'getToken', profile: 'other', minValiditySeconds: 2 },
      },
    ]);
  });

  describe('typed errors', () => {
    it('UNKNOWN_PROFILE (404) for a profile that is not configured, through its alias', async () => {
      // Act
      const error = await failure(vendClient('nope').getToken());

      // Assess
      expect(error).toMatchObject({ code: 'UNKNOWN_PROFILE', status: 404, retryable: false });
      expect(vendCalls()[0]?.qualifier).toBe('profile-nope');
      expect(simulator.stats().loginAttempts).toBe(0);
    });

    it('NOT_FOUND (404) for a function that does not exist', async () => {
      // Act
      const error = await failure(
        vendClient('default', { functionName: 'no-such-vend' }).getToken(),
      );

      // Assess
      expect(error).toMatchObject({ code: 'NOT_FOUND', status: 404 });
      expect(error.message).toContain('no-such-vend:profile-default');
    });

    it("FORBIDDEN_PROFILE (403) through another profile's alias, without a login", async () => {
      // Act
      const error = await failure(vendClient('default', { qualifier: 'profile-other' }).getToken());

      // Assess
      expect(error).toMatchObject({ code: 'FORBIDDEN_PROFILE', status: 403, retryable: false });
      expect(simulator.stats().loginAttempts).toBe(0);
    });

    it('CRM_AUTH_FAILED (502) with the backoff left when CRM.COM rejects the login', async () => {
      // Prepare
      simulator.setFaults({ login: 'reject' });
      const client = vendClient();

      // Act
      const error = await failure(client.getToken());
      const again = await failure(client.getToken());

      // Assess: no second login attempt during the backoff (no lock-out).
      expect(error).toMatchObject({ code: 'CRM_AUTH_FAILED', status: 502, retryable: false });
      expect(error.retryAfterSeconds).toBeGreaterThan(0);
      expect(error.retryAfterSeconds).toBeLessThanOrEqual(60);
      expect(again.code).toBe('CRM_AUTH_FAILED');
      expect(simulator.stats().loginAttempts).toBe(1);
    });

    it('CRM_UNAVAILABLE (503), retryable, when CRM.COM is unavailable', async () => {
      // Prepare
      simulator.setFaults({ login: 'unavailable' });

      // Act
      const error = await failure(vendClient().getToken());

      // Assess
      expect(error).toMatchObject({ code: 'CRM_UNAVAILABLE', status: 503, retryable: true });
      expect(Number.isInteger(error.retryAfterSeconds)).toBe(true);
      expect(error.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    });

    it('INVALID_REQUEST (400) for a validity beyond the vendor’s REFRESH_AHEAD_SECONDS', async () => {
      // Act
      const error = await failure(vendClient().getToken({ minValiditySeconds: 99 }));

      // Assess
      expect(error).toMatchObject({ code: 'INVALID_REQUEST', status: 400, retryable: false });
    });
  });
});

describe('createHttpTokenClient over the local REST API', () => {
  /** A fetch that records each request the client sends. */
  function recordingFetch() {
    const sent: Array<{ method: string; path: string; signed: boolean }> = [];
    const recording: typeof fetch = (input, init) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      const headers = new Headers(init?.headers);
      sent.push({
        method: init?.method ?? 'GET',
        path: `${url.pathname}${url.search}`,
        signed: /^AWS4-HMAC-SHA256 Credential=local\//.test(headers.get('authorization') ?? ''),
      });
      return fetch(input, init);
    };
    return { sent, fetch: recording };
  }

  it('gets a token, serves it from its cache, and invalidates it for a new one', async () => {
    // Prepare
    const { sent, fetch: recording } = recordingFetch();
    const client: TokenClient = httpClient('default', { fetch: recording });

    // Act
    const first = await client.getToken({ minValiditySeconds: 1 });
    const cached = await client.getToken({ minValiditySeconds: 1 });
    const replacement = await client.invalidate(first.token);

    // Assess
    expect(fp(cached.token)).toBe(fp(first.token));
    expect(fp(replacement.token)).not.toBe(fp(first.token));
    expect(sent).toStrictEqual([
      { method: 'GET', path: '/v1/tokens/default?minValiditySeconds=1', signed: true },
      { method: 'POST', path: '/v1/tokens/default/invalidate', signed: true },
    ]);
    expect(await listContacts(replacement.token)).toMatchObject({ status: { code: 'OK' } });
    expect(simulator.stats().logins).toBe(2);
    // The replacement is what the cache serves now.
    expect(fp((await client.getToken()).token)).toBe(fp(replacement.token));
    expect(sent).toHaveLength(2);
  });

  it('withToken retries once over HTTP after CRM.COM rejected the token', async () => {
    // Prepare
    const client = httpClient();
    await client.getToken();
    await revokeProfile('default');
    let runs = 0;

    // Act
    const answer = await client.withToken((token) => {
      runs += 1;
      return listContacts(token);
    });

    // Assess
    expect(crmStatusCode(answer)).toBe('OK');
    expect(runs).toBe(2);
  });

  it('UNKNOWN_PROFILE (404) for a profile that is not configured', async () => {
    const error = await failure(httpClient('nope').getToken());
    expect(error).toMatchObject({ code: 'UNKNOWN_PROFILE', status: 404, retryable: false });
  });

  it('NOT_FOUND (404) under a base path the API does not serve', async () => {
    const error = await failure(
      httpClient('default', { baseUrl: `${service.url}/prod` }).getToken(),
    );
    expect(error).toMatchObject({ code: 'NOT_FOUND', status: 404 });
  });

  it('INVALID_REQUEST (400) for a validity beyond REFRESH_AHEAD_SECONDS', async () => {
    const error = await failure(httpClient().getToken({ minValiditySeconds: 99 }));
    expect(error).toMatchObject({ code: 'INVALID_REQUEST', status: 400 });
  });

  it('CRM_AUTH_FAILED (502) with retryAfterSeconds when CRM.COM rejects the login', async () => {
    simulator.setFaults({ login: 'reject' });
    const error = await failure(httpClient().getToken());
    expect(error).toMatchObject({ code: 'CRM_AUTH_FAILED', status: 502, retryable: false });
    expect(error.retryAfterSeconds).toBeGreaterThan(0);
  });

  it('CRM_UNAVAILABLE (503), retryable, when CRM.COM does not answer in time', async () => {
    simulator.setFaults({ login: 'hang' });
    const error = await failure(httpClient().getToken());
    expect(error).toMatchObject({ code: 'CRM_UNAVAILABLE', status: 503, retryable: true });
    expect(error.retryAfterSeconds).toBeGreaterThanOrEqual(1);
  });
});

describe('the example consumer Lambda', () => {
  /** Loads the handler fresh (it reads its environment at cold start), pointed at the service. */
  async function coldStart(profile = 'default') {
    vi.stubEnv('AWS_REGION', 'us-east-1');
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'local');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'local');
    vi.stubEnv('AWS_SESSION_TOKEN', undefined);
    vi.stubEnv('AWS_PROFILE', undefined);
    vi.stubEnv('AWS_IGNORE_CONFIGURED_ENDPOINT_URLS', undefined);
    // The SDK's own per-service endpoint variable: the handler needs no code for local mode.
    vi.stubEnv('AWS_ENDPOINT_URL_LAMBDA', service.url);
    vi.stubEnv('VENDOR_FUNCTION_NAME', 'vend');
    vi.stubEnv('VENDOR_PROFILE', profile);
    vi.stubEnv('CRM_BASE_URL', simulator.url);
    vi.resetModules();
    return (await import('../../functions/example-consumer/handler.js')).handler;
  }

  it('lists contacts with a vended token and answers its summary, never the token', async () => {
    // Prepare
    const handler = await coldStart();

    // Act
    const summary = await handler();
    const warm = await handler();

    // Assess
    expect(summary).toStrictEqual({ profile: 'default', crmStatus: 'OK', contacts: 0 });
    expect(warm).toStrictEqual(summary);
    const stats = simulator.stats();
    expect(stats.logins).toBe(1);
    expect(stats.dataCalls).toBe(2);
    const text = JSON.stringify([summary, warm]);
    expect(simulator.issuedTokens().some((token) => text.includes(token))).toBe(false);
  });

  it('recovers with one retry when its cached token was revoked', async () => {
    // Prepare
    const handler = await coldStart();
    await handler();
    await revokeProfile('default');

    // Act
    const summary = await handler();

    // Assess
    expect(summary).toStrictEqual({ profile: 'default', crmStatus: 'OK', contacts: 0 });
    const stats = simulator.stats();
    expect(stats.dataCalls).toBe(3);
    expect(stats.logins).toBe(2);
  });

  it('fails with the typed vendor error for a profile that is not configured', async () => {
    // Prepare
    const handler = await coldStart('nope');

    // Act
    const error: unknown = await handler().catch((e: unknown) => e);

    // Assess: a fresh module instance, so the class is checked by name.
    expect(error).toMatchObject({ name: 'TokenVendorError', code: 'UNKNOWN_PROFILE', status: 404 });
    expect(simulator.stats().dataCalls).toBe(0);
  });
});
