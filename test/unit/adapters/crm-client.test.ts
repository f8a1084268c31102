import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HttpCrmClient } from '../../../functions/adapters/crm-client.js';
import { isTokenRejected } from '../../../functions/client/crm-answers.js';
import { CrmRejectedError, CrmUnavailableError } from '../../../functions/core/errors.js';
import { computeExpiry } from '../../../functions/core/jwt.js';
import type { Credentials } from '../../../functions/core/types.js';
import {
  type CrmSimulator,
  type SimulatorFault,
  startCrmSimulator,
} from '../../../functions/local/crm-simulator.js';

const PASSWORD = 'S3cr3t-P@ss-word';
const WEB_API_KEY = 'EE73C0AE64524371B5DDEFF5F7BB2192';
const TIMEOUT_MS = 1000;

const passwordCreds: Credentials = {
  kind: 'password',
  username: 'svc',
  password: PASSWORD,
  organisation: 'ACME',
};
const keyCreds: Credentials = { kind: 'webApiKey', webApiKey: WEB_API_KEY };

/** The login's error, or a failure when it succeeded. */
async function loginError(client: HttpCrmClient, url: string, creds: Credentials): Promise<Error> {
  try {
    await client.login(url, creds);
  } catch (error) {
    if (error instanceof Error) return error;
    throw new Error('login threw a non-error');
  }
  throw new Error('login succeeded');
}

/** Everything about an error a log line could show: no secret may appear in it. */
function errorText(error: Error): string {
  const cause = error.cause;
  return [
    String(error),
    error.message,
    String(cause),
    JSON.stringify(error),
    error.stack ?? '',
  ].join('\n');
}

/** A one-off HTTP server on 127.0.0.1 for answers the simulator does not give. */
async function startStub(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => handler(req, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/crmapi/rest/v2`, server };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

describe('HttpCrmClient against the CRM.COM simulator', () => {
  let sim: CrmSimulator;
  const client = new HttpCrmClient({ timeoutMs: TIMEOUT_MS });
  const stubs: Server[] = [];
  const extraSims: CrmSimulator[] = [];

  beforeAll(async () => {
    sim = await startCrmSimulator({
      users: [{ username: 'svc', password: PASSWORD, organisation: 'ACME' }],
      webApiKeys: [WEB_API_KEY],
    });
  });

  afterEach(async () => {
    sim.reset();
    for (const stub of stubs.splice(0)) {
      stub.closeAllConnections();
      await new Promise((resolve) => stub.close(resolve));
    }
    await Promise.all(extraSims.splice(0).map((s) => s.close()));
  });

  afterAll(async () => {
    await sim.close();
  });

  async function stub(handler: (req: IncomingMessage, res: ServerResponse) => void) {
    const started = await startStub(handler);
    stubs.push(started.server);
    return started.url;
  }

  async function extraSim(options: Parameters<typeof startCrmSimulator>[0]) {
    const started = await startCrmSimulator(options);
    extraSims.push(started);
    return started;
  }

  describe('login', () => {
    it('logs in with a password, sending exactly the documented body and headers', async () => {
      // Act
      const result = await client.login(sim.url, passwordCreds);

      // Assess
      expect(result.token).toMatch(/^[0-9A-F]{32}$/);
      expect(result).not.toHaveProperty('jwt');
      expect(sim.issuedTokens()).toEqual([result.token]);
      const [request] = sim.requests();
      expect(request?.method).toBe('POST');
      expect(request?.path).toBe('/crmapi/rest/v2/authentication/token');
      expect(request?.headers['content-type']).toBe('application/json');
      expect(request?.headers.accept).toBe('application/json');
      expect(request?.headers.authorization).toBeUndefined();
      expect(JSON.parse(request?.body ?? '')).toEqual({
        username: 'svc',
        password: PASSWORD,
        organisation: 'ACME',
      });
    });

    it('sends the unit when given and strips a trailing slash of the base URL', async () => {
      // Act
      await client.login(`${sim.url}/`, { ...passwordCreds, unit: 'EE63A82C' });

      // Assess
      const [request] = sim.requests();
      expect(request?.path).toBe('/crmapi/rest/v2/authentication/token');
      expect(JSON.parse(request?.body ?? '')).toMatchObject({ unit: 'EE63A82C' });
    });

    it('logs in with a web API key as the Basic user name and an empty password', async () => {
      // Act
      const result = await client.login(sim.url, keyCreds);

      // Assess
      expect(result.token).toMatch(/^[0-9A-F]{32}$/);
      const [request] = sim.requests();
      expect(request?.path).toBe('/crmapi/rest/v2/authentication/web_api_key/token');
      // The value from CRM.COM's own documentation for this key.
      expect(request?.headers.authorization).toBe(
        'Basic RUU3M0MwQUU2NDUyNDM3MUI1RERFRkY1RjdCQjIxOTI6',
      );
      expect(request?.headers['content-type']).toBe('application/json');
      expect(request?.body).toBe('{}');
    });

    it('sends the unit in the body of a web API key login', async () => {
      // Act
      await client.login(sim.url, { ...keyCreds, unit: 'U1' });

      // Assess
      expect(sim.requests()[0]?.body).toBe('{"unit":"U1"}');
    });

    it('classifies wrong credentials as a rejection with CRM.COM code and HTTP status', async () => {
      // Act
      const wrongPassword = await loginError(client, sim.url, {
        ...passwordCreds,
        password: 'not-it',
      });
      const wrongKey = await loginError(client, sim.url, { ...keyCreds, webApiKey: 'nope' });

      // Assess
      for (const error of [wrongPassword, wrongKey]) {
        expect(error).toBeInstanceOf(CrmRejectedError);
        expect(error).toMatchObject({ crmCode: 'LOGIN_FAILED', httpStatus: 200 });
      }
      expect(sim.stats().loginRejections).toBe(2);
    });

    it.each<[SimulatorFault, string, number | undefined]>([
      ['unavailable', 'server-error', 503],
      ['throttle', 'throttled', 429],
      ['server-error', 'server-error', 500],
      ['reset', 'network', undefined],
      ['non-json', 'bad-response', 200],
      ['not-found', 'bad-response', 404],
      ['method-not-allowed', 'bad-response', 405],
    ])('classifies the %s fault as unavailable (%s)', async (fault, reason, httpStatus) => {
      // Prepare
      sim.setFaults({ login: fault });

      // Act
      const error = await loginError(client, sim.url, passwordCreds);

      // Assess
      expect(error).toBeInstanceOf(CrmUnavailableError);
      expect(error).toMatchObject({ reason, httpStatus });
    });

    it('classifies the reject fault as a rejection', async () => {
      // Prepare
      sim.setFaults({ login: 'reject' });

      // Act
      const error = await loginError(client, sim.url, keyCreds);

      // Assess
      expect(error).toBeInstanceOf(CrmRejectedError);
      expect(error).toMatchObject({ crmCode: 'LOGIN_FAILED' });
    });

    it('times out a hanging CRM.COM within timeoutMs', async () => {
      // Prepare
      const quick = new HttpCrmClient({ timeoutMs: 300 });
      sim.setFaults({ login: 'hang' });
      const started = Date.now();

      // Act
      const error = await loginError(quick, sim.url, passwordCreds);

      // Assess
      const elapsed = Date.now() - started;
      expect(error).toBeInstanceOf(CrmUnavailableError);
      expect(error).toMatchObject({ reason: 'timeout' });
      expect(elapsed).toBeGreaterThanOrEqual(250);
      expect(elapsed).toBeLessThan(1000);
    });

    it('times out an answer whose body never finishes', async () => {
      // Prepare: headers at once, then the body trickles forever.
      const url = await stub((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.write('{"status":');
      });
      const quick = new HttpCrmClient({ timeoutMs: 300 });
      const started = Date.now();

      // Act
      const error = await loginError(quick, url, passwordCreds);

      // Assess
      expect(error).toMatchObject({ reason: 'timeout' });
      expect(Date.now() - started).toBeLessThan(1000);
    });

    it('classifies a refused connection as a network failure', async () => {
      // Prepare: a port that was just free.
      const closed = await startStub(() => {});
      await new Promise((resolve) => closed.server.close(resolve));

      // Act
      const error = await loginError(client, closed.url, passwordCreds);

      // Assess
      expect(error).toBeInstanceOf(CrmUnavailableError);
      expect(error).toMatchObject({ reason: 'network' });
      expect((error.cause as { code?: string }).code).toBe('ECONNREFUSED');
    });

    it.each<[string, number, unknown]>([
      ['OK without data', 200, { status: { code: 'OK', message: null, description: null } }],
      ['OK with data but no token', 200, { status: { code: 'OK' }, data: {} }],
      ['OK with an empty token', 200, { status: { code: 'OK' }, data: { token: '' } }],
      ['OK with a numeric token', 200, { status: { code: 'OK' }, data: { token: 42 } }],
      ['JSON without a status', 200, { data: { token: 'T' } }],
      ['a status without a string code', 200, { status: { code: 7 }, data: null }],
      ['a JSON array', 200, []],
      ['OK on HTTP 401', 401, { status: { code: 'OK' }, data: { token: 'T' } }],
    ])('classifies %s as a bad response', async (_name, status, body) => {
      // Prepare
      const url = await stub((_req, res) => json(res, status, body));

      // Act
      const error = await loginError(client, url, passwordCreds);

      // Assess
      expect(error).toBeInstanceOf(CrmUnavailableError);
      expect(error).toMatchObject({ reason: 'bad-response', httpStatus: status });
    });

    it('classifies an HTML 401 from a proxy as a bad response, not a rejection', async () => {
      // Prepare
      const url = await stub((_req, res) => {
        res.writeHead(401, { 'Content-Type': 'text/html' });
        res.end('<html><body>401 Authorization Required</body></html>');
      });

      // Act
      const error = await loginError(client, url, passwordCreds);

      // Assess
      expect(error).toBeInstanceOf(CrmUnavailableError);
      expect(error).toMatchObject({ reason: 'bad-response', httpStatus: 401 });
    });

    it('classifies a JSON rejection on a 4xx as a rejection, and on a 429 as throttling', async () => {
      // Prepare
      const rejected = await stub((_req, res) =>
        json(res, 401, { status: { code: 'AUTHENTICATION_FAILED', message: '', description: '' } }),
      );
      const throttled = await stub((_req, res) =>
        json(res, 429, { status: { code: 'TOO_MANY_REQUESTS' } }),
      );

      // Act
      const rejection = await loginError(client, rejected, passwordCreds);
      const throttling = await loginError(client, throttled, passwordCreds);

      // Assess
      expect(rejection).toBeInstanceOf(CrmRejectedError);
      expect(rejection).toMatchObject({ crmCode: 'AUTHENTICATION_FAILED', httpStatus: 401 });
      expect(throttling).toMatchObject({ reason: 'throttled', httpStatus: 429 });
    });

    it('does not follow a redirect', async () => {
      // Prepare
      const target = await stub((_req, res) => json(res, 200, { status: { code: 'OK' } }));
      const url = await stub((_req, res) => {
        res.writeHead(307, { Location: `${target}/authentication/token` });
        res.end();
      });

      // Act
      const error = await loginError(client, url, keyCreds);

      // Assess
      expect(error).toMatchObject({ reason: 'bad-response', httpStatus: 307 });
    });

    it('caps the body it reads', async () => {
      // Prepare: valid JSON, but far over the cap, without and with Content-Length.
      const huge = JSON.stringify({
        status: { code: 'OK' },
        data: { token: 'T', padding: 'x'.repeat(200_000) },
      });
      const chunked = await stub((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(huge);
      });
      const sized = await stub((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': huge.length });
        res.end(huge);
      });

      // Act
      const errors = [
        await loginError(client, chunked, passwordCreds),
        await loginError(client, sized, passwordCreds),
      ];

      // Assess
      for (const error of errors) expect(error).toMatchObject({ reason: 'bad-response' });
    });

    it('keeps CRM.COM texts, the password, the key and the code alphabet out of errors', async () => {
      // Prepare: CRM.COM echoing the secret in its message and code.
      const url = await stub((_req, res) =>
        json(res, 200, {
          status: { code: `BAD ${PASSWORD}`, message: PASSWORD, description: WEB_API_KEY },
        }),
      );

      // Act
      const error = await loginError(client, url, passwordCreds);

      // Assess
      expect(error).toBeInstanceOf(CrmRejectedError);
      expect((error as CrmRejectedError).crmCode).toMatch(/^[A-Za-z0-9_.:-]+$/);
      expect(errorText(error)).not.toContain(PASSWORD);
      expect(errorText(error)).not.toContain(WEB_API_KEY);
    });

    it('puts no password or key in any error message or cause', async () => {
      // Prepare
      const faults: SimulatorFault[] = [
        'reject',
        'unavailable',
        'throttle',
        'server-error',
        'reset',
        'non-json',
        'not-found',
      ];
      const quick = new HttpCrmClient({ timeoutMs: 200 });
      const errors: Error[] = [];

      // Act
      for (const fault of [...faults, 'hang' as const]) {
        sim.setFaults({ login: fault });
        errors.push(await loginError(quick, sim.url, passwordCreds));
        errors.push(await loginError(quick, sim.url, keyCreds));
      }
      sim.setFaults({ login: 'none' });
      errors.push(await loginError(quick, sim.url, { ...passwordCreds, password: `x${PASSWORD}` }));

      // Assess
      expect(errors).toHaveLength(faults.length * 2 + 3);
      for (const error of errors) {
        const text = errorText(error);
        expect(text).not.toContain(PASSWORD);
        expect(text).not.toContain(WEB_API_KEY);
        expect(text).not.toContain(Buffer.from(`${WEB_API_KEY}:`).toString('base64'));
      }
    });

    it('recovers after a burst of faults limited by count', async () => {
      // Prepare
      sim.setFaults({ login: 'unavailable', count: 2 });

      // Act
      const first = await loginError(client, sim.url, passwordCreds);
      const second = await loginError(client, sim.url, passwordCreds);
      const third = await client.login(sim.url, passwordCreds);

      // Assess
      expect(first).toMatchObject({ reason: 'server-error' });
      expect(second).toMatchObject({ reason: 'server-error' });
      expect(third.token).toMatch(/^[0-9A-F]{32}$/);
      expect(sim.faults().login).toBe('none');
    });

    it('reuses one keep-alive connection across sequential logins', async () => {
      // Prepare
      const fresh = await extraSim({});

      // Act
      for (let i = 0; i < 10; i++) {
        await client.login(fresh.url, {
          kind: 'password',
          username: 'demo',
          password: 'demo',
          organisation: 'DEMO',
        });
      }

      // Assess
      expect(fresh.stats().logins).toBe(10);
      expect(fresh.stats().connections).toBe(1);
    });
  });

  describe('JWT tokens', () => {
    it('returns exp and iat of a JWT token given as numbers', async () => {
      // Prepare
      const jwtSim = await extraSim({ tokenMode: 'jwt', webApiKeys: [WEB_API_KEY] });
      const before = Math.floor(Date.now() / 1000);

      // Act
      const result = await client.login(jwtSim.url, keyCreds);

      // Assess
      expect(result.token.split('.')).toHaveLength(3);
      expect(result.jwt?.iat).toBeGreaterThanOrEqual(before);
      expect(result.jwt?.iat).toBeLessThanOrEqual(before + 2);
      expect((result.jwt?.exp ?? 0) - (result.jwt?.iat ?? 0)).toBe(3600);
    });

    it('reads claims given as strings, skewed and shorter than the real lifetime', async () => {
      // Prepare
      const jwtSim = await extraSim({
        tokenMode: 'jwt',
        jwtClaimsAsStrings: true,
        iatSkewSeconds: 7200,
        jwtLifetimeSeconds: 1200,
      });
      const sentAt = Date.now();

      // Act
      const result = await client.login(jwtSim.url, {
        kind: 'password',
        username: 'demo',
        password: 'demo',
        organisation: 'DEMO',
      });
      const expiry = computeExpiry({
        sentAt,
        lifetimeSeconds: 3600,
        leadSeconds: 600,
        ...(result.jwt ? { jwt: result.jwt } : {}),
      });

      // Assess
      const payload = JSON.parse(
        Buffer.from(result.token.split('.')[1] ?? '', 'base64url').toString(),
      ) as Record<string, unknown>;
      expect(typeof payload.exp).toBe('string');
      expect(result.jwt?.iat).toBeGreaterThanOrEqual(Math.floor(sentAt / 1000) + 7200);
      expect((result.jwt?.exp ?? 0) - (result.jwt?.iat ?? 0)).toBe(1200);
      expect(expiry.realExpiresAt).toBe(sentAt + 1_200_000);
    });
  });

  describe('release', () => {
    async function liveToken(): Promise<string> {
      return (await client.login(sim.url, passwordCreds)).token;
    }

    it('releases a live token, then finds it already invalid', async () => {
      // Prepare
      const token = await liveToken();

      // Act
      const first = await client.release(sim.url, token);
      const second = await client.release(`${sim.url}/`, token);

      // Assess
      expect(first).toEqual({ kind: 'released' });
      expect(second).toEqual({ kind: 'already-invalid', crmCode: 'INVALID_TOKEN' });
      expect(sim.stats().releases).toBe(1);
      const request = sim.requests().at(-1);
      expect(request?.path).toBe('/crmapi/rest/v2/authentication/token/release');
      expect(request?.headers['content-type']).toBe('application/json');
      expect(JSON.parse(request?.body ?? '')).toEqual({ token });
    });

    it('finds an unknown token already invalid', async () => {
      // Act
      const outcome = await client.release(sim.url, 'FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF');

      // Assess
      expect(outcome).toEqual({ kind: 'already-invalid', crmCode: 'INVALID_TOKEN' });
    });

    it('reports CRM.COM saying a live token is invalid as already invalid', async () => {
      // Prepare
      const token = await liveToken();
      sim.setFaults({ release: 'invalid-token' });

      // Act
      const outcome = await client.release(sim.url, token);

      // Assess
      expect(outcome).toEqual({ kind: 'already-invalid', crmCode: 'INVALID_TOKEN' });
      expect(sim.stats().liveTokens).toBe(0);
    });

    it('reports any other JSON rejection as already invalid, keeping the code', async () => {
      // Prepare
      const token = await liveToken();
      sim.setFaults({ release: 'reject' });

      // Act
      const outcome = await client.release(sim.url, token);

      // Assess
      expect(outcome).toEqual({ kind: 'already-invalid', crmCode: 'PERMISSION_DENIED' });
    });

    it('reports release as unsupported on 404 (R12+) and 405', async () => {
      // Prepare
      const r12 = await extraSim({ releaseSupported: false });
      const token = await liveToken();

      // Act
      const onR12 = await client.release(r12.url, token);
      sim.setFaults({ release: 'not-found' });
      const notFound = await client.release(sim.url, token);
      sim.setFaults({ release: 'method-not-allowed' });
      const notAllowed = await client.release(sim.url, token);

      // Assess
      expect(onR12).toEqual({ kind: 'unsupported', httpStatus: 404 });
      expect(notFound).toEqual({ kind: 'unsupported', httpStatus: 404 });
      expect(notAllowed).toEqual({ kind: 'unsupported', httpStatus: 405 });
    });

    it.each<[SimulatorFault, RegExp]>([
      ['unavailable', /^server-error/],
      ['throttle', /^throttled/],
      ['server-error', /^server-error/],
      ['reset', /^network$/],
      ['non-json', /^bad-response/],
      ['hang', /^timeout$/],
    ])('asks to retry on the %s fault, without the token in the reason', async (fault, reason) => {
      // Prepare
      const quick = new HttpCrmClient({ timeoutMs: 300 });
      const token = await liveToken();
      sim.setFaults({ release: fault });

      // Act
      const outcome = await quick.release(sim.url, token);

      // Assess
      expect(outcome.kind).toBe('retry');
      const text = JSON.stringify(outcome);
      expect(outcome.kind === 'retry' && outcome.reason).toMatch(reason);
      expect(text).not.toContain(token);
      expect(sim.stats().liveTokens).toBe(1);
    });

    it('never throws, even for a base URL that is not a URL', async () => {
      // Act
      const outcome = await client.release('not a url', 'T');

      // Assess
      expect(outcome).toEqual({ kind: 'retry', reason: 'network' });
    });
  });

  describe('the client’s isTokenRejected on CRM.COM answers', () => {
    it.each([
      'INVALID_TOKEN',
      'EXPIRED_TOKEN',
      'TOKEN_EXPIRED',
      'SESSION_EXPIRED',
      'NOT_AUTHENTICATED',
      'UNAUTHORIZED',
      'invalid_token',
    ])('recognises %s', (code) => {
      // Act & Assess
      expect(isTokenRejected({ status: { code, message: null }, data: null })).toBe(true);
    });

    it.each<[string, unknown]>([
      ['OK', { status: { code: 'OK' }, data: [] }],
      ['another error', { status: { code: 'CONTACT_NOT_FOUND' } }],
      ['no status', { data: null }],
      ['a numeric code', { status: { code: 401 } }],
      ['null', null],
      ['a string', 'INVALID_TOKEN'],
    ])('does not recognise %s', (_name, body) => {
      // Act & Assess
      expect(isTokenRejected(body)).toBe(false);
    });

    it('recognises the simulator answer to a data call with a released token', async () => {
      // Prepare
      const token = (await client.login(sim.url, passwordCreds)).token;
      const live = await fetch(`${sim.url}/contacts/list?token=${token}`);
      await client.release(sim.url, token);

      // Act
      const released = await fetch(`${sim.url}/contacts/list?token=${token}`);

      // Assess
      expect(isTokenRejected(await live.json())).toBe(false);
      expect(isTokenRejected(await released.json())).toBe(true);
    });
  });
});
