import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbTokenStore } from '../../functions/adapters/dynamodb-token-store.js';
import {
  type CrmSimulator,
  simulatorFingerprint,
  startCrmSimulator,
} from '../../functions/local/crm-simulator.js';
import { type LocalDynamo, startDynalite } from '../support/dynalite.js';
import {
  type FaultyDynamoDbProxy,
  startFaultyDynamoDbProxy,
} from '../support/faulty-dynamodb-proxy.js';
import {
  FAST_ENV,
  requestTo,
  startTestService,
  type TestService,
} from '../support/local-service.js';

/**
 * Fault injection with real components (CONTRACT §3 under faults): the local service, the
 * DynamoDB adapter on dynalite behind a faulty proxy, the HTTP CRM.COM client against the
 * simulator, local server processes killed with SIGKILL. Real time, short settings.
 */

const DEMO = { CRM_USERNAME: 'demo', CRM_PASSWORD: 'demo', CRM_ORGANISATION: 'DEMO' };

interface TokenAnswer {
  token: string;
  profile: string;
  issuedAt: string;
  expiresAt: string;
  expiresInSeconds: number;
}

interface ErrorAnswer {
  error: { code: string; message: string; retryable: boolean; retryAfterSeconds?: number };
}

/** The contract's error shape (§4), and nothing else in the body. */
function expectContractError(body: unknown, code: string, retryable: boolean): void {
  expect(body).toEqual({
    error: {
      code,
      message: expect.any(String),
      retryable,
      ...((body as ErrorAnswer).error.retryAfterSeconds === undefined
        ? {}
        : { retryAfterSeconds: expect.any(Number) }),
    },
  });
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('a DynamoDB endpoint that throttles or drops connections', () => {
  let dynamo: LocalDynamo;
  let proxy: FaultyDynamoDbProxy;
  let simulator: CrmSimulator;
  let service: TestService;

  beforeAll(async () => {
    dynamo = await startDynalite();
    proxy = await startFaultyDynamoDbProxy(dynamo.endpoint);
    simulator = await startCrmSimulator({ tokenLifetimeSeconds: 12 });
    service = await startTestService({
      ...DEMO,
      DYNAMODB_ENDPOINT: proxy.url,
      TABLE_NAME: dynamo.tableName,
      CRM_BASE_URL: simulator.url,
      // Every vend reads the table, so that every fault reaches it.
      MEMORY_CACHE_SECONDS: '0',
    });
  });

  afterAll(async () => {
    await service?.stop();
    await simulator?.close();
    await proxy?.close();
    await dynamo?.close();
  });

  it('answers 500 INTERNAL (retryable) while throttled or dropping, logs in for nobody, then recovers', async () => {
    // Prepare
    proxy.add({ fault: 'throttle' });
    // Act
    const throttled = await service.request('/v1/tokens/default');
    proxy.heal();
    proxy.add({ fault: 'drop' });
    const dropped = await service.request('/v1/tokens/default');
    proxy.heal();
    const healed = await service.request('/v1/tokens/default');
    // Assess
    expect(throttled.status).toBe(500);
    expectContractError(throttled.json(), 'INTERNAL', true);
    expect(dropped.status).toBe(500);
    expectContractError(dropped.json(), 'INTERNAL', true);
    expect(proxy.stats().faulted.throttle).toBeGreaterThanOrEqual(1);
    expect(proxy.stats().faulted.drop).toBeGreaterThanOrEqual(1);
    expect(healed.status).toBe(200);
    expect(simulator.stats().loginAttempts).toBe(1);
    expect(healed.json<TokenAnswer>().token).toBe(simulator.issuedTokens()[0]);
  });

  it('releases at once a token whose record cannot be written (invariant 8), keeps serving the current one', async () => {
    // Prepare: a current token; then every write of a token record is throttled.
    const current = (await service.request('/v1/tokens/default')).json<TokenAnswer>().token;
    const before = simulator.stats();
    proxy.add({ fault: 'throttle', operations: ['PutItem'], match: (b) => b.includes('"T#') });
    // Act: an invalidation forces a login whose token cannot be recorded.
    const failed = await service.request('/v1/tokens/default/invalidate', {
      method: 'POST',
      body: JSON.stringify({ token: current }),
    });
    proxy.heal();
    const after = await service.request('/v1/tokens/default');
    // Assess
    expect(failed.status).toBe(500);
    expectContractError(failed.json(), 'INTERNAL', true);
    const stats = simulator.stats();
    expect(stats.logins).toBe(before.logins + 1);
    const leaked = simulator.issuedTokens().at(-1)!;
    expect(leaked).not.toBe(current);
    expect(stats.releaseCountsByToken[simulatorFingerprint(leaked)]).toBe(1);
    expect(
      stats.issued.find((t) => t.fingerprint === simulatorFingerprint(leaked))?.releasedAt,
    ).toBeDefined();
    expect(after.status).toBe(200);
    expect(after.json<TokenAnswer>().token).toBe(current);
  });

  it('recognises a state write whose answer was lost (the SDK retry fails its condition): serves it, releases nothing early', async () => {
    // Prepare: the write that makes the new token current lands, then its connection drops.
    const current = (await service.request('/v1/tokens/default')).json<TokenAnswer>().token;
    const releasesBefore = simulator.stats().releases;
    proxy.add({
      fault: 'drop-after',
      operations: ['PutItem'],
      match: (b) => b.includes('"P#') && b.includes('"current"') && !b.includes('"lease"'),
      count: 1,
    });
    // Act
    const replaced = await service.request('/v1/tokens/default/invalidate', {
      method: 'POST',
      body: JSON.stringify({ token: current }),
    });
    const next = await service.request('/v1/tokens/default');
    // Assess
    expect(proxy.stats().faulted['drop-after']).toBe(1);
    expect(replaced.status).toBe(200);
    const fresh = replaced.json<TokenAnswer>().token;
    expect(fresh).not.toBe(current);
    expect(next.json<TokenAnswer>().token).toBe(fresh);
    // The invalidated token becomes due at once; the new one must not be released.
    await until(
      () => simulator.stats().releases > releasesBefore,
      5000,
      'the invalidated token’s release',
    );
    const counts = simulator.stats().releaseCountsByToken;
    expect(counts[simulatorFingerprint(current)]).toBe(1);
    expect(counts[simulatorFingerprint(fresh)]).toBeUndefined();
  });
});

interface Child {
  readonly proc: ChildProcess;
  readonly url: string;
  output: string;
}

const children: Child[] = [];

/** `node --import tsx functions/local/main.ts` with PORT=0; resolves on its ready line. */
function startChild(env: Record<string, string>): Promise<Child> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'functions/local/main.ts'], {
    cwd: process.cwd(),
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      PORT: '0',
      LOG_LEVEL: 'WARN',
      POWERTOOLS_METRICS_DISABLED: 'true',
      ...FAST_ENV,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(
      () => reject(new Error(`local server did not start: ${output}`)),
      20_000,
    );
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        const child: Child = { proc, url: match[1], output };
        children.push(child);
        resolve(child);
      }
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`local server exited with ${code}: ${output.slice(-500)}`));
    });
  });
}

async function stopChildren(): Promise<void> {
  await Promise.all(
    children.splice(0).map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.proc.exitCode !== null || c.proc.signalCode !== null) {
            resolve();
            return;
          }
          const hard = setTimeout(() => c.proc.kill('SIGKILL'), 3000);
          c.proc.once('exit', () => {
            clearTimeout(hard);
            resolve();
          });
          c.proc.kill('SIGTERM');
        }),
    ),
  );
}

describe('a local server killed with SIGKILL while it holds the login lease', () => {
  let dynamo: LocalDynamo;
  let simulator: CrmSimulator;
  let holder: Child;
  let taker: Child;
  let third: Child;

  beforeAll(async () => {
    dynamo = await startDynalite();
    simulator = await startCrmSimulator({ tokenLifetimeSeconds: 12 });
    const env = {
      ...DEMO,
      DYNAMODB_ENDPOINT: dynamo.endpoint,
      TABLE_NAME: dynamo.tableName,
      CRM_BASE_URL: simulator.url,
      // The lease (CRM_TIMEOUT_MS + 3 s) must outlast the slow login the holder is killed in.
      CRM_TIMEOUT_MS: '2000',
    };
    [holder, taker, third] = await Promise.all([startChild(env), startChild(env), startChild(env)]);
  }, 40_000);

  afterAll(async () => {
    await stopChildren();
    await simulator?.close();
    await dynamo?.close();
  });

  it('another instance takes over after the lease lapses: exactly one more login, no double release', async () => {
    // Prepare: the holder's login takes 1.5 s at CRM.COM.
    simulator.setFaults({ loginDelayMs: 1500, count: 1 });
    const dying = requestTo(holder.url, '/v1/tokens/default').catch(() => undefined);
    await until(() => simulator.stats().loginAttempts === 1, 10_000, 'the holder’s login');
    const leaseTakenAt = Date.now();
    // Act
    holder.proc.kill('SIGKILL');
    await dying;
    const answer = await requestTo(taker.url, '/v1/tokens/default', { timeoutMs: 15_000 });
    // Assess
    expect(answer.status).toBe(200);
    const token = answer.json<TokenAnswer>().token;
    const stats = simulator.stats();
    expect(stats.loginAttempts).toBe(2);
    expect(stats.logins).toBe(1);
    expect(simulator.issuedTokens()).toEqual([token]);
    // It waited for the dead holder's lease (5 s from just before the login) to lapse.
    expect(Date.now() - leaseTakenAt).toBeGreaterThanOrEqual(4000);
    const state = await new DynamoDbTokenStore({
      client: dynamo.client,
      tableName: dynamo.tableName,
    }).getState('default');
    expect(state?.takeovers).toBe(1);
    expect(state?.current?.fingerprint).toBeDefined();

    // Act: invalidating it makes it due at once; two live instances' release jobs race for it.
    const replaced = await requestTo(third.url, '/v1/tokens/default/invalidate', {
      method: 'POST',
      body: JSON.stringify({ token }),
    });
    expect(replaced.status).toBe(200);
    const fp = simulatorFingerprint(token);
    await until(() => (simulator.stats().releaseCountsByToken[fp] ?? 0) > 0, 6000, 'the release');
    await new Promise((r) => setTimeout(r, 2500)); // two more runs of each job
    // Assess
    expect(simulator.stats().releaseCountsByToken[fp]).toBe(1);
    expect(simulator.stats().loginAttempts).toBe(3);
  }, 30_000);
});

describe('clock skew: a JWT whose iat is far off and whose exp − iat is shorter than the settings', () => {
  const services: TestService[] = [];
  const simulators: CrmSimulator[] = [];

  afterAll(async () => {
    for (const s of services) await s.stop();
    for (const s of simulators) await s.close();
  });

  for (const skew of [3600, -3600]) {
    it(`counts the JWT's 9 s from the request time (iat ${skew > 0 ? '+' : ''}${skew} s)`, async () => {
      // Prepare: TOKEN_LIFETIME_SECONDS 12, RELEASE_LEAD_SECONDS 4; CRM.COM's clock is off
      // by an hour and its tokens live 9 s.
      const simulator = await startCrmSimulator({
        tokenMode: 'jwt',
        tokenLifetimeSeconds: 9,
        jwtLifetimeSeconds: 9,
        iatSkewSeconds: skew,
      });
      simulators.push(simulator);
      const service = await startTestService({ ...DEMO, CRM_BASE_URL: simulator.url });
      services.push(service);
      // Act
      const sentAfter = Date.now();
      const answer = await service.request('/v1/tokens/default');
      const answeredBefore = Date.now();
      // Assess
      expect(answer.status).toBe(200);
      const body = answer.json<TokenAnswer>();
      const issuedAt = Date.parse(body.issuedAt);
      const expiresAt = Date.parse(body.expiresAt);
      expect(issuedAt).toBeGreaterThanOrEqual(sentAfter);
      expect(issuedAt).toBeLessThanOrEqual(answeredBefore);
      expect(expiresAt - issuedAt).toBe((9 - 4) * 1000);
      expect(body.expiresInSeconds).toBeLessThanOrEqual(5);
      expect(body.expiresInSeconds).toBeGreaterThanOrEqual(4);
    });
  }
});

describe('a secret rotated mid-flight (PROFILES_FILE rewritten, CRM.COM password changed)', () => {
  let dir: string;
  let file: string;
  let simulator: CrmSimulator;
  let service: TestService;
  const profile = (password: string) => ({
    rot: { username: 'rot', password, organisation: 'DEMO' },
  });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'token-vendor-rotation-'));
    file = join(dir, 'profiles.json');
    writeFileSync(file, JSON.stringify(profile('pw-1')));
    simulator = await startCrmSimulator({
      tokenLifetimeSeconds: 12,
      users: [{ username: 'rot', password: 'pw-1', organisation: 'DEMO' }],
    });
    service = await startTestService({
      CRM_BASE_URL: simulator.url,
      PROFILES_FILE: file,
      SECRET_CACHE_SECONDS: '2',
      AUTH_FAILURE_BACKOFF_SECONDS: '60',
      CRM_TIMEOUT_MS: '2000',
    });
  });

  afterAll(async () => {
    await service?.stop();
    await simulator?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a login rejected because the password changed while it was in flight retries at once with the new secret', async () => {
    // Prepare
    const first = (await service.request('/v1/tokens/rot')).json<TokenAnswer>().token;
    simulator.setFaults({ loginDelayMs: 800, count: 1 });
    // Act: invalidate; while that login waits at CRM.COM, rotate both sides.
    const pending = service.request('/v1/tokens/rot/invalidate', {
      method: 'POST',
      body: JSON.stringify({ token: first }),
    });
    await until(() => simulator.stats().loginAttempts === 2, 5000, 'the login in flight');
    simulator.setUser({ username: 'rot', password: 'pw-2', organisation: 'DEMO' });
    writeFileSync(file, JSON.stringify(profile('pw-2')));
    const answer = await pending;
    // Assess
    expect(answer.status).toBe(200);
    expect(answer.json<TokenAnswer>().token).not.toBe(first);
    const stats = simulator.stats();
    expect(stats.loginRejections).toBe(1);
    expect(stats.loginAttempts).toBe(3);
    expect(stats.logins).toBe(2);
  });

  it('after a rejection, the rewritten PROFILES_FILE lifts the backoff: no lock-out, one rejected attempt', async () => {
    // Prepare: CRM.COM's password changes first; the vendor still has the old one.
    const current = (await service.request('/v1/tokens/rot')).json<TokenAnswer>().token;
    const before = simulator.stats();
    simulator.setUser({ username: 'rot', password: 'pw-3', organisation: 'DEMO' });
    // Act
    const rejected = await service.request('/v1/tokens/rot/invalidate', {
      method: 'POST',
      body: JSON.stringify({ token: current }),
    });
    const duringBackoff = await service.request('/v1/tokens/rot/invalidate', {
      method: 'POST',
      body: JSON.stringify({ token: current }),
    });
    writeFileSync(file, JSON.stringify(profile('pw-3')));
    await new Promise((r) => setTimeout(r, 2200)); // SECRET_CACHE_SECONDS
    const after = await service.request('/v1/tokens/rot/invalidate', {
      method: 'POST',
      body: JSON.stringify({ token: current }),
    });
    // Assess
    expect(rejected.status).toBe(502);
    expectContractError(rejected.json(), 'CRM_AUTH_FAILED', false);
    expect(rejected.headers['retry-after']).toMatch(/^\d+$/);
    expect(duringBackoff.status).toBe(502);
    expect(after.status).toBe(200);
    expect(after.json<TokenAnswer>().token).not.toBe(current);
    const stats = simulator.stats();
    expect(stats.loginRejections - before.loginRejections).toBe(1);
    expect(stats.loginAttempts - before.loginAttempts).toBe(2);
  });
});

describe('a burst of 5,000 requests while CRM.COM is down', () => {
  let simulator: CrmSimulator;
  let service: TestService;

  beforeAll(async () => {
    simulator = await startCrmSimulator({ faults: { login: 'unavailable' } });
    service = await startTestService({
      ...DEMO,
      CRM_BASE_URL: simulator.url,
      UNAVAILABLE_BACKOFF_SECONDS: '1',
    });
  });

  afterAll(async () => {
    await service?.stop();
    await simulator?.close();
  });

  it('makes about one login per backoff period and answers every request 503 with Retry-After', async () => {
    // Prepare
    const total = 5000;
    const concurrency = 200;
    let sent = 0;
    const problems: string[] = [];
    const url = `${service.url}/v1/tokens/default`;
    // Act
    const started = Date.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (sent < total) {
          sent += 1;
          const response = await fetch(url);
          const body = (await response.json()) as ErrorAnswer;
          const retryAfter = response.headers.get('retry-after');
          if (
            response.status !== 503 ||
            body.error?.code !== 'CRM_UNAVAILABLE' ||
            body.error.retryable !== true ||
            !Number.isInteger(body.error.retryAfterSeconds) ||
            (body.error.retryAfterSeconds ?? 0) < 1 ||
            retryAfter !== String(body.error.retryAfterSeconds)
          ) {
            problems.push(`${response.status} ${JSON.stringify(body).slice(0, 120)}`);
          }
        }
      }),
    );
    const elapsedMs = Date.now() - started;
    // Assess: attempt k+1 waits min(30, 2^(k−1)) s after attempt k failed, so in D seconds
    // at most 1 + #{k : 1 + 2 + … + 2^(k−1) ≤ D} attempts (a second of slack for timers).
    const attempts = simulator.stats().loginAttempts;
    let bound = 1;
    for (let k = 1, sum = 0; ; k++) {
      sum += Math.min(30, 2 ** (k - 1));
      if (sum > elapsedMs / 1000 + 1) break;
      bound += 1;
    }
    expect(problems.slice(0, 5)).toEqual([]);
    expect(attempts).toBeGreaterThanOrEqual(1);
    expect(attempts).toBeLessThanOrEqual(bound);

    // Act: CRM.COM comes back; once the backoff ends the service serves again.
    simulator.setFaults({ login: 'none' });
    const health = await service.request('/v1/health');
    let recovered = await service.request('/v1/tokens/default');
    const recoverBy = Date.now() + 35_000;
    while (recovered.status === 503 && Date.now() < recoverBy) {
      const wait = Number(recovered.headers['retry-after'] ?? 1);
      await new Promise((r) => setTimeout(r, wait * 1000));
      recovered = await service.request('/v1/tokens/default');
    }
    // Assess
    expect(health.status).toBe(200);
    expect(recovered.status).toBe(200);
    expect(recovered.json<TokenAnswer>().token).toBe(simulator.issuedTokens()[0]);
  }, 40_000);
});
