import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type CrmSimulator,
  type SimulatorOptions,
  simulatorFingerprint,
  startCrmSimulator,
} from '../../../functions/local/crm-simulator.js';

interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: unknown;
}

async function call(
  url: string,
  options: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const { method = 'POST', body, headers = {} } = options;
  const response = await fetch(url, {
    method,
    headers: { 'Content-Type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    signal: AbortSignal.timeout(2000),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

const demo = { username: 'demo', password: 'demo', organisation: 'DEMO' };

function statusCode(reply: Reply): unknown {
  return (reply.json as { status?: { code?: unknown } } | undefined)?.status?.code;
}

async function login(sim: CrmSimulator, body: unknown = demo): Promise<string> {
  const reply = await call(`${sim.url}/authentication/token`, { body });
  const token = (reply.json as { data?: { token?: unknown } }).data?.token;
  if (typeof token !== 'string') throw new Error(`login failed: ${reply.text}`);
  return token;
}

function claims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as Record<
    string,
    unknown
  >;
}

describe('CRM.COM simulator', () => {
  let sim: CrmSimulator;
  const extra: CrmSimulator[] = [];

  beforeAll(async () => {
    sim = await startCrmSimulator();
  });

  afterEach(async () => {
    sim.reset();
    await Promise.all(extra.splice(0).map((s) => s.close()));
  });

  afterAll(async () => {
    await sim.close();
  });

  async function another(options: SimulatorOptions): Promise<CrmSimulator> {
    const started = await startCrmSimulator(options);
    extra.push(started);
    return started;
  }

  describe('authentication', () => {
    it('serves the REST root on an ephemeral 127.0.0.1 port', () => {
      // Assess
      expect(sim.url).toBe(`http://127.0.0.1:${sim.port}/crmapi/rest/v2`);
      expect(sim.port).toBeGreaterThan(0);
    });

    it('logs the default user in with the documented answer shape and an opaque token', async () => {
      // Act
      const reply = await call(`${sim.url}/authentication/token`, { body: demo });

      // Assess
      expect(reply.status).toBe(200);
      expect(reply.headers.get('content-type')).toMatch(/^application\/json/);
      expect(reply.json).toEqual({
        status: { code: 'OK', message: null, description: null },
        data: { token: expect.stringMatching(/^[0-9A-F]{32}$/) },
      });
      expect(sim.stats()).toMatchObject({ loginAttempts: 1, logins: 1, liveTokens: 1 });
    });

    it('rejects wrong credentials with LOGIN_FAILED on HTTP 200', async () => {
      // Act
      const replies = [
        await call(`${sim.url}/authentication/token`, { body: { ...demo, password: 'x' } }),
        await call(`${sim.url}/authentication/token`, { body: { ...demo, organisation: 'X' } }),
        await call(`${sim.url}/authentication/token`, { body: { ...demo, username: 'x' } }),
      ];

      // Assess
      for (const reply of replies) {
        expect(reply.status).toBe(200);
        expect(reply.json).toMatchObject({ status: { code: 'LOGIN_FAILED' }, data: null });
      }
      expect(sim.stats()).toMatchObject({ loginAttempts: 3, logins: 0, loginRejections: 3 });
    });

    it('answers INVALID_REQUEST to a login body that is not JSON or lacks a field', async () => {
      // Act
      const notJson = await call(`${sim.url}/authentication/token`, { body: 'username=demo' });
      const missing = await call(`${sim.url}/authentication/token`, { body: { username: 'demo' } });

      // Assess
      for (const reply of [notJson, missing]) {
        expect(reply.status).toBe(400);
        expect(statusCode(reply)).toBe('INVALID_REQUEST');
      }
    });

    it('logs in with a web API key as the Basic user name and an empty password only', async () => {
      // Prepare
      const basic = (value: string) => `Basic ${Buffer.from(value).toString('base64')}`;
      const url = `${sim.url}/authentication/web_api_key/token`;

      // Act
      const ok = await call(url, {
        body: {},
        headers: { Authorization: basic('demo-web-api-key:') },
      });
      const withUnit = await call(url, {
        body: { unit: 'U1' },
        headers: { Authorization: basic('demo-web-api-key:') },
      });
      const withPassword = await call(url, {
        body: {},
        headers: { Authorization: basic('demo-web-api-key:x') },
      });
      const wrongKey = await call(url, { body: {}, headers: { Authorization: basic('other:') } });
      const noHeader = await call(url, { body: {} });

      // Assess
      expect(statusCode(ok)).toBe('OK');
      expect(statusCode(withUnit)).toBe('OK');
      for (const reply of [withPassword, wrongKey, noHeader]) {
        expect(statusCode(reply)).toBe('LOGIN_FAILED');
      }
    });

    it('issues a signed JWT with numeric iat, exp and sub in jwt mode', async () => {
      // Prepare
      const jwtSim = await another({ tokenMode: 'jwt', tokenLifetimeSeconds: 7200 });
      const before = Math.floor(Date.now() / 1000);

      // Act
      const token = await login(jwtSim);

      // Assess
      const [header, , signature] = token.split('.');
      expect(JSON.parse(Buffer.from(header ?? '', 'base64url').toString())).toEqual({
        alg: 'HS256',
        typ: 'JWT',
      });
      expect(signature).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const payload = claims(token);
      expect(payload.sub).toBe('demo');
      expect(payload.iat).toBeGreaterThanOrEqual(before);
      expect(payload.exp).toBe((payload.iat as number) + 7200);
    });

    it('can give JWT claims as strings, skewed, with a different exp − iat', async () => {
      // Prepare
      let now = Date.parse('2026-01-01T00:00:00Z');
      const jwtSim = await another({
        tokenMode: 'jwt',
        jwtClaimsAsStrings: true,
        iatSkewSeconds: -300,
        jwtLifetimeSeconds: 600,
        now: () => now,
      });

      // Act
      const token = await login(jwtSim);
      now += 601_000;
      const afterJwtExp = await call(`${jwtSim.url}/contacts/list?token=${token}`, {
        method: 'GET',
      });

      // Assess
      const iat = Date.parse('2026-01-01T00:00:00Z') / 1000 - 300;
      expect(claims(token)).toMatchObject({ iat: String(iat), exp: String(iat + 600) });
      // The real lifetime stays tokenLifetimeSeconds (3600).
      expect(statusCode(afterJwtExp)).toBe('OK');
    });
  });

  describe('token lifetime and data call', () => {
    it('accepts a live token as a query or body parameter, GET or POST', async () => {
      // Prepare
      const token = await login(sim);

      // Act
      const get = await call(`${sim.url}/contacts/list?token=${token}`, { method: 'GET' });
      const post = await call(`${sim.url}/contacts/list`, { body: { token } });

      // Assess
      for (const reply of [get, post]) {
        expect(reply.json).toEqual({
          status: { code: 'OK', message: null, description: null },
          data: [],
        });
      }
      expect(sim.stats().dataCalls).toBe(2);
    });

    it('answers INVALID_TOKEN on HTTP 200 for an unknown or missing token', async () => {
      // Act
      const unknown = await call(`${sim.url}/contacts/list?token=NOPE`, { method: 'GET' });
      const missing = await call(`${sim.url}/contacts/list`, { body: {} });

      // Assess
      for (const reply of [unknown, missing]) {
        expect(reply.status).toBe(200);
        expect(reply.json).toEqual({
          status: { code: 'INVALID_TOKEN', message: expect.any(String), description: null },
          data: null,
        });
      }
    });

    it('stops accepting a token after its lifetime on the simulator clock', async () => {
      // Prepare
      let now = Date.parse('2026-01-01T00:00:00Z');
      const timed = await another({ tokenLifetimeSeconds: 60, now: () => now });
      const token = await login(timed);

      // Act
      now += 59_999;
      const before = await call(`${timed.url}/contacts/list?token=${token}`, { method: 'GET' });
      now += 1;
      const after = await call(`${timed.url}/contacts/list?token=${token}`, { method: 'GET' });
      const release = await call(`${timed.url}/authentication/token/release`, { body: { token } });

      // Assess
      expect(statusCode(before)).toBe('OK');
      expect(statusCode(after)).toBe('INVALID_TOKEN');
      expect(statusCode(release)).toBe('INVALID_TOKEN');
      expect(timed.stats()).toMatchObject({ liveTokens: 0, releases: 0 });
      expect(timed.stats().issued[0]).toEqual({
        fingerprint: simulatorFingerprint(token),
        issuedAt: Date.parse('2026-01-01T00:00:00Z'),
        expiresAt: Date.parse('2026-01-01T00:01:00Z'),
      });
    });

    it('moves its clock forward on advanceClock', async () => {
      // Prepare
      const token = await login(sim);

      // Act
      sim.advanceClock(3_600_000);
      const reply = await call(`${sim.url}/contacts/list?token=${token}`, { method: 'GET' });

      // Assess
      expect(statusCode(reply)).toBe('INVALID_TOKEN');
    });
  });

  describe('release', () => {
    it('releases a live token once, then answers INVALID_TOKEN, counting by fingerprint', async () => {
      // Prepare
      const token = await login(sim);
      const url = `${sim.url}/authentication/token/release`;

      // Act
      const first = await call(url, { body: { token } });
      const second = await call(url, { body: { token } });
      const data = await call(`${sim.url}/contacts/list?token=${token}`, { method: 'GET' });

      // Assess
      expect(first.json).toEqual({
        status: { code: 'OK', message: null, description: null },
        data: {},
      });
      expect(second.status).toBe(200);
      expect(statusCode(second)).toBe('INVALID_TOKEN');
      expect(statusCode(data)).toBe('INVALID_TOKEN');
      const fingerprint = createHash('sha256').update(token).digest('hex').slice(0, 12);
      const stats = sim.stats();
      expect(stats).toMatchObject({ releaseAttempts: 2, releases: 1, liveTokens: 0 });
      expect(stats.releaseCountsByToken).toEqual({ [fingerprint]: 2 });
      expect(stats.issued[0]?.releasedAt).toEqual(expect.any(Number));
      expect(JSON.stringify(stats)).not.toContain(token);
      expect(sim.issuedTokens()).toEqual([token]);
    });

    it('answers 404 when release is not supported (R12+)', async () => {
      // Prepare
      const r12 = await another({ releaseSupported: false });
      const token = await login(r12);

      // Act
      const reply = await call(`${r12.url}/authentication/token/release`, { body: { token } });

      // Assess
      expect(reply.status).toBe(404);
      expect(r12.stats()).toMatchObject({ releaseAttempts: 1, releases: 0, liveTokens: 1 });
    });

    it('ends the token on the invalid-token fault', async () => {
      // Prepare
      const token = await login(sim);
      sim.setFaults({ release: 'invalid-token' });

      // Act
      const reply = await call(`${sim.url}/authentication/token/release`, { body: { token } });

      // Assess
      expect(statusCode(reply)).toBe('INVALID_TOKEN');
      expect(sim.stats()).toMatchObject({ releases: 0, liveTokens: 0 });
      expect(sim.stats().issued[0]?.invalidatedAt).toEqual(expect.any(Number));
    });
  });

  describe('faults', () => {
    it.each([
      ['unavailable', 503, 'SERVICE_UNAVAILABLE'],
      ['throttle', 429, 'TOO_MANY_REQUESTS'],
      ['reject', 200, 'LOGIN_FAILED'],
    ] as const)('answers the %s fault with HTTP %i and JSON', async (fault, status, code) => {
      // Prepare
      sim.setFaults({ login: fault });

      // Act
      const reply = await call(`${sim.url}/authentication/token`, { body: demo });

      // Assess
      expect(reply.status).toBe(status);
      expect(statusCode(reply)).toBe(code);
      expect(sim.stats().logins).toBe(0);
    });

    it.each([
      ['server-error', 500],
      ['non-json', 200],
      ['not-found', 404],
      ['method-not-allowed', 405],
    ] as const)('answers the %s fault with HTTP %i and HTML', async (fault, status) => {
      // Prepare
      sim.setFaults({ release: fault });

      // Act
      const reply = await call(`${sim.url}/authentication/token/release`, { body: { token: 'T' } });

      // Assess
      expect(reply.status).toBe(status);
      expect(reply.headers.get('content-type')).toMatch(/^text\/html/);
      expect(reply.json).toBeUndefined();
    });

    it('resets the connection on the reset fault', async () => {
      // Prepare
      sim.setFaults({ login: 'reset' });

      // Act
      const outcome = call(`${sim.url}/authentication/token`, { body: demo });

      // Assess
      await expect(outcome).rejects.toThrow();
      expect(sim.stats().loginAttempts).toBe(1);
    });

    it('applies faults to the next count calls only, then recovers', async () => {
      // Prepare
      sim.setFaults({ login: 'unavailable', count: 2 });

      // Act
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        statuses.push((await call(`${sim.url}/authentication/token`, { body: demo })).status);
      }

      // Assess
      expect(statuses).toEqual([503, 503, 200]);
      expect(sim.faults()).toEqual({
        login: 'none',
        release: 'none',
        loginDelayMs: 0,
        releaseDelayMs: 0,
      });
    });

    it('merges partial faults and delays an answer by loginDelayMs', async () => {
      // Prepare
      sim.setFaults({ release: 'throttle' });
      sim.setFaults({ loginDelayMs: 150 });
      const started = Date.now();

      // Act
      const reply = await call(`${sim.url}/authentication/token`, { body: demo });

      // Assess
      expect(Date.now() - started).toBeGreaterThanOrEqual(140);
      expect(statusCode(reply)).toBe('OK');
      expect(sim.faults()).toMatchObject({ release: 'throttle', loginDelayMs: 150 });
    });

    it('closes promptly while a request hangs', async () => {
      // Prepare
      const hanging = await startCrmSimulator({ faults: { login: 'hang' } });
      const pending = fetch(`${hanging.url}/authentication/token`, {
        method: 'POST',
        body: JSON.stringify(demo),
        signal: AbortSignal.timeout(5000),
      }).then(
        () => 'answered',
        () => 'failed',
      );
      while (hanging.stats().loginAttempts === 0) await new Promise((r) => setTimeout(r, 5));
      const started = Date.now();

      // Act
      await hanging.close();

      // Assess
      expect(Date.now() - started).toBeLessThan(500);
      expect(await pending).toBe('failed');
    });
  });

  describe('HTTP details', () => {
    it('answers 405 with Allow for another method and 404 for an unknown path', async () => {
      // Act
      const wrongMethod = await call(`${sim.url}/authentication/token`, { method: 'GET' });
      const unknown = await call(`${sim.url}/nothing/here`, { body: {} });
      const outside = await call(`${sim.origin}/elsewhere`, { method: 'GET' });

      // Assess
      expect(wrongMethod.status).toBe(405);
      expect(wrongMethod.headers.get('allow')).toBe('POST');
      expect(unknown.status).toBe(404);
      expect(outside.status).toBe(404);
    });

    it('refuses a body over its limit with 413', async () => {
      // Prepare
      const small = await another({ maxBodyBytes: 1024 });

      // Act
      const reply = await call(`${small.url}/authentication/token`, {
        body: { ...demo, padding: 'x'.repeat(4096) },
      });

      // Assess
      expect(reply.status).toBe(413);
      expect(small.stats().loginAttempts).toBe(0);
    });
  });

  describe('admin HTTP API', () => {
    it('sets faults, reads stats and resets', async () => {
      // Act
      const set = await call(`${sim.origin}/__simulator/faults`, {
        body: { login: 'unavailable', count: 1 },
      });
      const faulted = await call(`${sim.url}/authentication/token`, { body: demo });
      const recovered = await call(`${sim.url}/authentication/token`, { body: demo });
      const stats = await call(`${sim.origin}/__simulator/stats`, { method: 'GET' });
      const reset = await call(`${sim.origin}/__simulator/reset`, { body: {} });

      // Assess
      expect(set.status).toBe(200);
      expect(set.json).toMatchObject({ login: 'unavailable', count: 1 });
      expect(faulted.status).toBe(503);
      expect(recovered.status).toBe(200);
      expect(stats.json).toMatchObject({ loginAttempts: 2, logins: 1, liveTokens: 1 });
      expect(stats.text).not.toContain(sim.issuedTokens()[0] ?? 'none');
      expect(reset.status).toBe(200);
      expect(sim.stats()).toMatchObject({ loginAttempts: 0, liveTokens: 0, issued: [] });
    });

    it('refuses bad fault settings', async () => {
      // Act
      const replies = await Promise.all([
        call(`${sim.origin}/__simulator/faults`, { body: { login: 'explode' } }),
        call(`${sim.origin}/__simulator/faults`, { body: { loginDelayMs: -1 } }),
        call(`${sim.origin}/__simulator/faults`, { body: { other: 1 } }),
        call(`${sim.origin}/__simulator/faults`, { body: 'nope' }),
        call(`${sim.origin}/__simulator/faults`, { method: 'GET' }),
      ]);

      // Assess
      expect(replies.map((r) => r.status)).toEqual([400, 400, 400, 400, 405]);
      expect(sim.faults().login).toBe('none');
    });

    it('rotates a password through /__simulator/users', async () => {
      // Act
      const rotate = await call(`${sim.origin}/__simulator/users`, {
        body: { username: 'demo', password: 'rotated' },
      });
      const old = await call(`${sim.url}/authentication/token`, { body: demo });
      const fresh = await call(`${sim.url}/authentication/token`, {
        body: { ...demo, password: 'rotated' },
      });

      // Assess
      expect(rotate.status).toBe(200);
      expect(statusCode(old)).toBe('LOGIN_FAILED');
      expect(statusCode(fresh)).toBe('OK');
    });

    it('replaces web API keys and advances the clock', async () => {
      // Prepare
      const token = await login(sim);

      // Act
      const keys = await call(`${sim.origin}/__simulator/users`, { body: { webApiKeys: ['k2'] } });
      const keyLogin = await call(`${sim.url}/authentication/web_api_key/token`, {
        body: {},
        headers: { Authorization: `Basic ${Buffer.from('k2:').toString('base64')}` },
      });
      const clock = await call(`${sim.origin}/__simulator/clock`, {
        body: { advanceMs: 3_600_000 },
      });
      const expired = await call(`${sim.url}/contacts/list?token=${token}`, { method: 'GET' });

      // Assess
      expect(keys.status).toBe(200);
      expect(statusCode(keyLogin)).toBe('OK');
      expect(clock.status).toBe(200);
      expect(statusCode(expired)).toBe('INVALID_TOKEN');
    });
  });

  describe('CLI', () => {
    let child: ChildProcess | undefined;

    afterEach(() => {
      if (child && child.exitCode === null) child.kill('SIGKILL');
      child = undefined;
    });

    it('prints its REST root and serves it when run directly', async () => {
      // Prepare
      const script = fileURLToPath(
        new URL('../../../functions/local/crm-simulator.ts', import.meta.url),
      );
      child = spawn(process.execPath, ['--import', 'tsx', script], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const started = child;

      // Act
      const line = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no banner')), 8000);
        let out = '';
        started.stdout?.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('\n')) {
            clearTimeout(timer);
            resolve(out.trim());
          }
        });
        started.on('exit', () => reject(new Error('exited')));
      });
      const url = /^simulator on (http:\/\/127\.0\.0\.1:\d+\/crmapi\/rest\/v2)$/.exec(line)?.[1];
      const reply = await call(`${url}/authentication/token`, { body: demo });
      const exited = new Promise((resolve) => started.on('exit', resolve));
      started.kill('SIGTERM');

      // Assess
      expect(url).toBeDefined();
      expect(statusCode(reply)).toBe('OK');
      await exited;
    });
  });
});
