/**
 * openapi/openapi.json against the real local server: every documented answer is driven over
 * HTTP, and each real answer (status, headers, body) is validated against the document. A last
 * test checks that every status the document lists was seen, except the deployed-only ones.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CrmSimulator } from '../../functions/local/crm-simulator.js';
import { type LocalService, startLocalService } from '../../functions/local/local-service.js';
import { FAST_ENV } from '../support/local-service.js';
import { createOpenApiValidator, loadOpenApiDocument } from '../unit/client/openapi-validator.js';

const ENV = { ...FAST_ENV, LOG_LEVEL: 'SILENT', PORT: '0', MEMORY_CACHE_SECONDS: '1' };
const SECRET_PASSWORD = 'hunter2-never-shown';
/** One profile per failure, so that one backoff does not leak into another test. */
const PROFILES = {
  other: { username: 'demo', password: 'demo', organisation: 'DEMO' },
  locked: { username: 'demo', password: 'demo', organisation: 'DEMO' },
  flaky: { username: 'demo', password: 'demo', organisation: 'DEMO' },
  hanging: { username: 'demo', password: 'demo', organisation: 'DEMO' },
  'no-organisation': { username: 'demo', password: SECRET_PASSWORD },
  'two-logins': {
    username: 'demo',
    password: SECRET_PASSWORD,
    organisation: 'DEMO',
    webApiKey: 'demo-web-api-key',
  },
};
const TOKEN = '/v1/tokens/{profile}';
const INVALIDATE = '/v1/tokens/{profile}/invalidate';
const HEALTH = '/v1/health';
const UNMATCHED = 'x-unmatched-path';

/**
 * Documented answers the local server cannot give, each with the reason. Every other documented
 * (method, path, status) must be driven by a test below.
 */
const NOT_REACHABLE_LOCALLY: Record<string, string> = {
  [`GET ${TOKEN} 429`]: "THROTTLED is API Gateway's own answer (deployed only)",
  [`POST ${INVALIDATE} 429`]: "THROTTLED is API Gateway's own answer (deployed only)",
  [`GET ${HEALTH} 429`]: "THROTTLED is API Gateway's own answer (deployed only)",
  [`GET ${HEALTH} 403`]: "FORBIDDEN is API Gateway's IAM denial (deployed only)",
  [`GET ${HEALTH} 500`]: 'the health check reads nothing that could fail',
};

process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';

const validator = createOpenApiValidator();
/** `METHOD template status` of every real answer validated. */
const seen = new Set<string>();
let dir: string;
let service: LocalService;
let simulator: CrmSimulator;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'openapi-conformance-'));
  const profilesFile = join(dir, 'profiles.json');
  writeFileSync(profilesFile, JSON.stringify(PROFILES));
  service = await startLocalService({ ...ENV, PROFILES_FILE: profilesFile });
  simulator = service.simulator!;
});

afterAll(async () => {
  simulator.setFaults({ login: 'none', release: 'none', loginDelayMs: 0, releaseDelayMs: 0 });
  await service.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  json(): Record<string, unknown>;
  /** The error code of an error body. */
  readonly code: unknown;
}

/**
 * Sends a request with fetch (with node:http when a GET carries a body, which fetch refuses),
 * validates the answer against the document and records what it covered.
 */
async function call(method: string, path: string, body?: string): Promise<Answer> {
  const raw =
    body !== undefined && (method === 'GET' || method === 'HEAD')
      ? await withHttp(method, path, body)
      : await withFetch(method, path, body);
  const pathOnly = path.split('?')[0] ?? path;
  validator.assertValid({
    method,
    path: pathOnly,
    status: raw.status,
    headers: raw.headers,
    body: raw.text,
  });
  seen.add(`${method} ${validator.matchPath(pathOnly) ?? UNMATCHED} ${raw.status}`);
  const json = () => JSON.parse(raw.text) as Record<string, unknown>;
  const error = raw.status >= 400 ? (json().error as Record<string, unknown>) : undefined;
  return { ...raw, json, code: error?.code };
}

async function withFetch(method: string, path: string, body?: string) {
  const response = await fetch(`${service.url}${path}`, {
    method,
    body,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

function withHttp(
  method: string,
  path: string,
  body: string,
): Promise<{ status: number; headers: Headers; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${service.url}${path}`,
      { method, agent: false, timeout: 10_000, headers: { 'content-length': body.length } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const headers = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            if (value !== undefined)
              headers.set(name, Array.isArray(value) ? value.join(', ') : value);
          }
          resolve({
            status: res.statusCode ?? 0,
            headers,
            text: Buffer.concat(chunks).toString('utf8'),
          });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer in time')));
    req.on('error', reject);
    req.end(body);
  });
}

/** A direct invoke of the vend function through the local Invoke API; the result body. */
async function invoke(qualifier: string, payload: unknown): Promise<unknown> {
  const response = await fetch(
    `${service.url}/2015-03-31/functions/vend/invocations?Qualifier=${qualifier}`,
    { method: 'POST', body: JSON.stringify(payload), signal: AbortSignal.timeout(10_000) },
  );
  expect(response.status).toBe(200);
  return response.json();
}

const OVERSIZED = JSON.stringify({ token: 'x'.repeat(9000) });

describe('200 answers', () => {
  it('GET a token: the token shape, Cache-Control: no-store', async () => {
    const answer = await call('GET', '/v1/tokens/default?minValiditySeconds=1');
    expect(answer.status).toBe(200);
    expect(answer.headers.get('cache-control')).toBe('no-store');
    expect(answer.json().profile).toBe('default');
  });

  it('GET a token without minValiditySeconds', async () => {
    expect((await call('GET', '/v1/tokens/other')).status).toBe(200);
  });

  it.each(['0', '3'])('GET a token with minValiditySeconds=%s (the bounds)', async (value) => {
    const answer = await call('GET', `/v1/tokens/other?minValiditySeconds=${value}`);
    expect(answer.status).toBe(200);
    expect(answer.json().expiresInSeconds).toBeGreaterThanOrEqual(Number(value));
  });

  it('POST invalidate with the current token: a different token', async () => {
    const current = (await call('GET', '/v1/tokens/default')).json().token;
    const answer = await call(
      'POST',
      '/v1/tokens/default/invalidate',
      JSON.stringify({ token: current }),
    );
    expect(answer.status).toBe(200);
    expect(answer.json().token === current).toBe(false);
  });

  it('POST invalidate with an unknown token: answers like a vend', async () => {
    const answer = await call('POST', '/v1/tokens/default/invalidate', '{"token":"not-a-token"}');
    expect(answer.status).toBe(200);
  });

  it('GET the health check', async () => {
    const answer = await call('GET', '/v1/health');
    expect(answer.status).toBe(200);
    expect(answer.json()).toStrictEqual({ status: 'ok' });
  });
});

describe('404 NOT_FOUND: no route', () => {
  it.each([
    ['GET', '/'],
    ['GET', '/v1'],
    ['GET', '/v1/nope'],
    ['GET', '/v1/tokens'],
    ['GET', '/v1/tokens/'],
    ['POST', '/v1/tokens//invalidate'],
    ['GET', '/v1/tokens/default/extra'],
    ['GET', '/v1/tokens/default/'],
    ['GET', '/v1//health'],
    ['GET', '/v2/tokens/default'],
    ['DELETE', '/v1/nope'],
  ])('%s %s', async (method, path) => {
    const answer = await call(method, path);
    expect([answer.status, answer.code]).toStrictEqual([404, 'NOT_FOUND']);
  });
});

describe('405 METHOD_NOT_ALLOWED with Allow', () => {
  it.each([
    ['POST', '/v1/health', 'GET'],
    ['DELETE', '/v1/tokens/default', 'GET'],
    ['PUT', '/v1/tokens/default', 'GET'],
    ['GET', '/v1/tokens/default/invalidate', 'POST'],
    ['OPTIONS', '/v1/tokens/default/invalidate', 'POST'],
    ['PATCH', '/v1/tokens/bad.name', 'GET'],
  ])('%s %s', async (method, path, allow) => {
    const answer = await call(method, path);
    expect([answer.status, answer.code]).toStrictEqual([405, 'METHOD_NOT_ALLOWED']);
    expect(answer.headers.get('allow')).toBe(allow);
  });

  it('before 413: a known path, another method, an oversized body', async () => {
    const answer = await call('PUT', '/v1/health', OVERSIZED);
    expect(answer.status).toBe(405);
  });
});

describe('413 PAYLOAD_TOO_LARGE: a body over 8 KiB', () => {
  it.each([
    ['POST', '/v1/tokens/default/invalidate'],
    ['POST', '/v1/tokens/bad.name/invalidate'],
    ['GET', '/v1/tokens/default'],
    ['GET', '/v1/health'],
  ])('%s %s', async (method, path) => {
    const answer = await call(method, path, OVERSIZED);
    expect([answer.status, answer.code]).toStrictEqual([413, 'PAYLOAD_TOO_LARGE']);
  });
});

describe('400 INVALID_REQUEST', () => {
  it.each([
    ['a bad profile name', 'GET', '/v1/tokens/bad.name', undefined],
    ['a profile name over 64 characters', 'GET', `/v1/tokens/${'a'.repeat(65)}`, undefined],
    ['an encoded slash in the profile', 'GET', '/v1/tokens/a%2Fb', undefined],
    [
      'minValiditySeconds not digits',
      'GET',
      '/v1/tokens/default?minValiditySeconds=abc',
      undefined,
    ],
    ['a negative minValiditySeconds', 'GET', '/v1/tokens/default?minValiditySeconds=-1', undefined],
    [
      'a fractional minValiditySeconds',
      'GET',
      '/v1/tokens/default?minValiditySeconds=1.5',
      undefined,
    ],
    ['an empty minValiditySeconds', 'GET', '/v1/tokens/default?minValiditySeconds=', undefined],
    [
      'minValiditySeconds over REFRESH_AHEAD_SECONDS',
      'GET',
      '/v1/tokens/default?minValiditySeconds=4',
      undefined,
    ],
    [
      'minValiditySeconds given twice',
      'GET',
      '/v1/tokens/default?minValiditySeconds=1&minValiditySeconds=1',
      undefined,
    ],
    [
      'a bad minValiditySeconds before an unknown profile',
      'GET',
      '/v1/tokens/nope?minValiditySeconds=x',
      undefined,
    ],
    ['malformed JSON', 'POST', '/v1/tokens/default/invalidate', '{"token":'],
    ['no body', 'POST', '/v1/tokens/default/invalidate', undefined],
    ['a body that is not an object', 'POST', '/v1/tokens/default/invalidate', '["t"]'],
    ['a missing token', 'POST', '/v1/tokens/default/invalidate', '{}'],
    ['a token that is not a string', 'POST', '/v1/tokens/default/invalidate', '{"token":42}'],
    ['an empty token', 'POST', '/v1/tokens/default/invalidate', '{"token":""}'],
    ['a bad profile name on invalidate', 'POST', '/v1/tokens/bad.name/invalidate', '{"token":"t"}'],
  ])('%s', async (_what, method, path, body) => {
    const answer = await call(method, path, body);
    expect([answer.status, answer.code]).toStrictEqual([400, 'INVALID_REQUEST']);
  });
});

describe('404 UNKNOWN_PROFILE', () => {
  it.each([
    ['GET', '/v1/tokens/nope', undefined],
    ['POST', '/v1/tokens/nope/invalidate', '{"token":"t"}'],
  ])('%s %s', async (method, path, body) => {
    const answer = await call(method, path, body);
    expect([answer.status, answer.code]).toStrictEqual([404, 'UNKNOWN_PROFILE']);
  });
});

describe('403 FORBIDDEN_PROFILE: direct invoke only', () => {
  // The HTTP API has no aliases, so it never answers FORBIDDEN_PROFILE; the invoke result is
  // the same body (CONTRACT §5), checked here against the 403 the document lists.
  it.each([
    ['GET', TOKEN, { action: 'getToken', profile: 'default' }],
    ['POST', INVALIDATE, { action: 'invalidate', profile: 'default', token: 't' }],
  ])('%s %s through the alias of another profile', async (method, pathTemplate, payload) => {
    const body = await invoke('profile-other', payload);
    validator.assertValid({ method, pathTemplate, status: 403, body });
    seen.add(`${method} ${pathTemplate} 403`);
    expect(body).toMatchObject({ error: { code: 'FORBIDDEN_PROFILE', retryable: false } });
  });
});

describe('5xx answers', () => {
  it('500 MISCONFIGURED for a secret without a mandatory field, never echoing it', async () => {
    const get = await call('GET', '/v1/tokens/no-organisation');
    const post = await call('POST', '/v1/tokens/no-organisation/invalidate', '{"token":"t"}');
    for (const answer of [get, post]) {
      expect([answer.status, answer.code]).toStrictEqual([500, 'MISCONFIGURED']);
      expect(answer.text.includes(SECRET_PASSWORD)).toBe(false);
    }
  });

  it('500 MISCONFIGURED for a secret with both a password and a web API key', async () => {
    const answer = await call('GET', '/v1/tokens/two-logins');
    expect([answer.status, answer.code]).toStrictEqual([500, 'MISCONFIGURED']);
    expect(simulator.requests().some((r) => r.body.includes(SECRET_PASSWORD))).toBe(false);
  });

  it('502 CRM_AUTH_FAILED with Retry-After when CRM.COM rejects the login', async () => {
    simulator.setFaults({ login: 'reject', count: 1 });
    const get = await call('GET', '/v1/tokens/locked');
    // During the backoff, invalidate answers 502 too (invariant 7).
    const post = await call('POST', '/v1/tokens/locked/invalidate', '{"token":"t"}');
    for (const answer of [get, post]) {
      expect([answer.status, answer.code]).toStrictEqual([502, 'CRM_AUTH_FAILED']);
      const error = answer.json().error as Record<string, unknown>;
      expect(answer.headers.get('retry-after')).toBe(String(error.retryAfterSeconds));
    }
  });

  it('503 CRM_UNAVAILABLE with Retry-After when CRM.COM answers 503', async () => {
    simulator.setFaults({ login: 'unavailable' });
    try {
      const get = await call('GET', '/v1/tokens/flaky');
      const post = await call('POST', '/v1/tokens/flaky/invalidate', '{"token":"t"}');
      for (const answer of [get, post]) {
        expect([answer.status, answer.code]).toStrictEqual([503, 'CRM_UNAVAILABLE']);
        const error = answer.json().error as Record<string, unknown>;
        expect(answer.headers.get('retry-after')).toBe(String(error.retryAfterSeconds));
      }
    } finally {
      simulator.setFaults({ login: 'none' });
    }
  });

  it('503 CRM_UNAVAILABLE when CRM.COM does not answer within CRM_TIMEOUT_MS', async () => {
    simulator.setFaults({ login: 'hang', count: 1 });
    const answer = await call('GET', '/v1/tokens/hanging');
    expect([answer.status, answer.code]).toStrictEqual([503, 'CRM_UNAVAILABLE']);
  });
});

describe('coverage of the document', () => {
  it('drove every documented status that local mode can give', () => {
    const document = loadOpenApiDocument() as Record<string, unknown>;
    const paths = document.paths as Record<string, Record<string, unknown>>;
    const expected: string[] = [`GET ${UNMATCHED} 404`];
    for (const [template, item] of Object.entries(paths)) {
      if (item['x-method-not-allowed']) expected.push(`* ${template} 405`);
      for (const method of ['get', 'post', 'put', 'delete', 'patch']) {
        const operation = item[method] as { responses?: Record<string, unknown> } | undefined;
        for (const status of Object.keys(operation?.responses ?? {})) {
          const key = `${method.toUpperCase()} ${template} ${status}`;
          if (!(key in NOT_REACHABLE_LOCALLY)) expected.push(key);
        }
      }
    }
    const covered = (key: string) =>
      key.startsWith('* ')
        ? [...seen].some((s) => s.slice(s.indexOf(' ')) === key.slice(1))
        : seen.has(key);
    const missing = expected.filter((key) => !covered(key));
    expect(missing).toStrictEqual([]);
    // Nothing listed as unreachable is in fact reached.
    expect(Object.keys(NOT_REACHABLE_LOCALLY).filter((key) => seen.has(key))).toStrictEqual([]);
  });
});
