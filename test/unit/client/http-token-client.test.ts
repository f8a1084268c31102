import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createHttpTokenClient,
  type HttpTokenClientOptions,
  TokenVendorError,
} from '../../../functions/client/index.js';
import { vended, vendorError } from './helpers.js';

const REGION = 'eu-west-1';
const KEYS: Record<string, { secretAccessKey: string; sessionToken?: string }> = {
  AKIDTESTSTATIC: { secretAccessKey: 'test-secret-static-0123456789abcdefghij' },
  ASIATESTSESSION: {
    secretAccessKey: 'test-secret-session-0123456789abcdefghi',
    sessionToken: 'test-session-token',
  },
};
const STATIC = {
  accessKeyId: 'AKIDTESTSTATIC',
  secretAccessKey: 'test-secret-static-0123456789abcdefghij',
};

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly body: string;
  readonly verified: boolean;
}

type Reply = { status: number; headers?: Record<string, string>; body: string };

let server: Server;
let baseUrl: string;
let seen: Seen[] = [];
/** When set, answers verified requests instead of the fake vendor. */
let reply: ((request: Seen) => Reply | Promise<Reply>) | undefined;

/** Recomputes the request's SigV4 signature with the known test keys; true when it matches. */
async function verifySignature(req: IncomingMessage, body: string): Promise<boolean> {
  const authorization = req.headers.authorization ?? '';
  const match =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=[0-9a-f]{64}$/.exec(
      authorization,
    );
  if (!match) return false;
  const [, accessKeyId = '', region, service, signedHeaders = ''] = match;
  const key = KEYS[accessKeyId];
  const amzDate = req.headers['x-amz-date'];
  if (!key || region !== REGION || service !== 'execute-api' || typeof amzDate !== 'string') {
    return false;
  }
  const names = signedHeaders.split(';');
  if (!names.includes('host') || !names.includes('x-amz-date')) return false;
  const headers: Record<string, string> = {};
  for (const name of names) {
    const value = req.headers[name];
    if (typeof value !== 'string') return false;
    headers[name] = value;
  }
  const url = new URL(req.url ?? '/', 'http://placeholder');
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = v;
  const [host, port] = (req.headers.host ?? '').split(':');
  const signer = new SignatureV4({
    service: 'execute-api',
    region: REGION,
    credentials: { accessKeyId, ...key },
    sha256: Sha256,
  });
  const expected = await signer.sign(
    {
      method: req.method ?? 'GET',
      protocol: 'http:',
      hostname: host ?? '',
      port: port === undefined ? undefined : Number(port),
      path: url.pathname,
      query,
      headers,
      body: body === '' ? undefined : body,
    },
    { signingDate: parseAmzDate(amzDate) },
  );
  return expected.headers.authorization === authorization;
}

function parseAmzDate(value: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return new Date(Number.NaN);
  return new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`);
}

/** The fake vendor behind the signature check, routes as CONTRACT §4 under stage `/prod`. */
function fakeVendor(request: Seen): Reply {
  const url = new URL(request.url, 'http://placeholder');
  const json = (status: number, value: unknown, headers: Record<string, string> = {}) => ({
    status,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(value),
  });
  if (request.method === 'GET' && url.pathname === '/prod/v1/tokens/default') {
    return json(200, vended('t1', 3000), { 'cache-control': 'no-store' });
  }
  if (request.method === 'POST' && url.pathname === '/prod/v1/tokens/default/invalidate') {
    const parsed: unknown = JSON.parse(request.body);
    if (typeof parsed !== 'object' || parsed === null || !('token' in parsed)) {
      return json(400, vendorError('INVALID_REQUEST'));
    }
    return json(200, vended('t2', 3000), { 'cache-control': 'no-store' });
  }
  return json(404, vendorError('NOT_FOUND'));
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks).toString('utf8');
  const verified = await verifySignature(req, body);
  const request: Seen = { method: req.method ?? '', url: req.url ?? '', body, verified };
  seen.push(request);
  const answer: Reply = verified
    ? await (reply ?? fakeVendor)(request)
    : {
        // API Gateway's gateway response for a bad signature, mapped to the error shape.
        status: 403,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(vendorError('FORBIDDEN', { message: 'Forbidden' })),
      };
  res.writeHead(answer.status, answer.headers ?? {});
  res.end(answer.body);
}

beforeAll(async () => {
  server = createServer((req, res) => {
    handle(req, res).catch(() => {
      res.writeHead(500).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  baseUrl = `http://127.0.0.1:${port}/prod`;
});

afterAll(async () => {
  server.closeAllConnections();
  server.close();
  await once(server, 'close');
});

beforeEach(() => {
  seen = [];
  reply = undefined;
});

function makeClient(options: Partial<HttpTokenClientOptions> = {}) {
  return createHttpTokenClient({
    baseUrl,
    profile: 'default',
    region: REGION,
    credentials: STATIC,
    timeoutMs: 2000,
    ...options,
  });
}

async function failure(promise: Promise<unknown>): Promise<TokenVendorError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof TokenVendorError)) throw new Error('expected a TokenVendorError');
  return error;
}

describe('SigV4 signing', () => {
  it('signs a GET with its query so the server verifies it', async () => {
    // Prepare
    const client = makeClient();

    // Act
    const token = await client.getToken({ minValiditySeconds: 120 });

    // Assess
    expect(token.token).toBe('t1');
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      method: 'GET',
      url: '/prod/v1/tokens/default?minValiditySeconds=120',
      verified: true,
    });
  });

  it('signs the invalidate POST and its body', async () => {
    // Prepare
    const client = makeClient();

    // Act
    const replaced = await client.invalidate('t1');

    // Assess
    expect(replaced.token).toBe('t2');
    expect(seen[0]).toMatchObject({
      method: 'POST',
      url: '/prod/v1/tokens/default/invalidate',
      body: '{"token":"t1"}',
      verified: true,
    });
  });

  it('signs with session credentials from a provider', async () => {
    // Prepare
    const client = makeClient({
      credentials: async () => ({
        accessKeyId: 'ASIATESTSESSION',
        secretAccessKey: 'test-secret-session-0123456789abcdefghi',
        sessionToken: 'test-session-token',
      }),
    });

    // Act
    const token = await client.getToken();

    // Assess
    expect(token.token).toBe('t1');
    expect(seen[0]?.verified).toBe(true);
  });

  it('fails with a typed FORBIDDEN error when the secret key is wrong', async () => {
    // Prepare
    const client = makeClient({
      credentials: { accessKeyId: 'AKIDTESTSTATIC', secretAccessKey: 'not-the-right-secret' },
    });

    // Act
    const error = await failure(client.getToken());

    // Assess
    expect(seen[0]?.verified).toBe(false);
    expect(error).toMatchObject({ code: 'FORBIDDEN', status: 403, retryable: false });
  });

  it('fails when the session token is missing', async () => {
    // Prepare
    const client = makeClient({
      credentials: {
        accessKeyId: 'ASIATESTSESSION',
        secretAccessKey: 'test-secret-session-0123456789abcdefghi',
      },
    });

    // Act
    const error = await failure(client.getToken());

    // Assess
    expect(error.code).toBe('FORBIDDEN');
  });
});

describe('over HTTP', () => {
  it('shares the cache: three calls, one request', async () => {
    // Prepare
    const client = makeClient();

    // Act
    await client.getToken();
    await client.getToken();
    await client.getToken();

    // Assess
    expect(seen).toHaveLength(1);
  });

  it('retries once through withToken, invalidating over HTTP', async () => {
    // Prepare
    const client = makeClient();
    const tokens: string[] = [];

    // Act
    const result = await client.withToken((token) => {
      tokens.push(token);
      return token === 't1' ? { status: { code: 'INVALID_TOKEN' } } : { status: { code: 'OK' } };
    });

    // Assess
    expect(result).toStrictEqual({ status: { code: 'OK' } });
    expect(tokens).toStrictEqual(['t1', 't2']);
    expect(seen.map((s) => s.method)).toStrictEqual(['GET', 'POST']);
  });

  it.each([
    [
      'a 503 body, Retry-After from the header',
      {
        status: 503,
        headers: { 'retry-after': '4' },
        body: JSON.stringify(vendorError('CRM_UNAVAILABLE', { retryable: true })),
      },
      { code: 'CRM_UNAVAILABLE', status: 503, retryable: true, retryAfterSeconds: 4 },
    ],
    [
      'a 502 body with its own retryAfterSeconds',
      {
        status: 502,
        headers: { 'retry-after': '9' },
        body: JSON.stringify(vendorError('CRM_AUTH_FAILED', { retryAfterSeconds: 30 })),
      },
      { code: 'CRM_AUTH_FAILED', status: 502, retryable: false, retryAfterSeconds: 30 },
    ],
    [
      'a 404 UNKNOWN_PROFILE body',
      { status: 404, body: JSON.stringify(vendorError('UNKNOWN_PROFILE')) },
      { code: 'UNKNOWN_PROFILE', status: 404 },
    ],
    [
      "API Gateway's HTML 502",
      {
        status: 502,
        headers: { 'content-type': 'text/html' },
        body: '<html><body>Bad Gateway</body></html>',
      },
      { code: 'INTERNAL', status: 502, retryable: true },
    ],
    [
      "API Gateway's own 403 JSON",
      { status: 403, body: '{"message":"Missing Authentication Token"}' },
      { code: 'FORBIDDEN', status: 403, retryable: false },
    ],
    [
      "API Gateway's own 429 JSON",
      { status: 429, headers: { 'retry-after': '2' }, body: '{"message":"Too Many Requests"}' },
      { code: 'THROTTLED', status: 429, retryable: true, retryAfterSeconds: 2 },
    ],
    [
      'a 200 that is not JSON',
      { status: 200, body: 'token=secret-token' },
      { code: 'INTERNAL', status: 200, retryable: true },
    ],
  ] as const)('maps %s to a typed error', async (_label, answer, expected) => {
    // Prepare
    reply = () => answer;
    const client = makeClient();

    // Act
    const error = await failure(client.getToken());

    // Assess
    expect(error).toMatchObject(expected);
    expect(error.message).not.toContain('secret-token');
    expect(error.message).not.toContain('Missing Authentication Token');
  });

  it('gives up after timeoutMs with a retryable INTERNAL error', async () => {
    // Prepare
    reply = async () => {
      await new Promise((r) => setTimeout(r, 500));
      return { status: 200, body: JSON.stringify(vended('late')) };
    };
    const client = makeClient({ timeoutMs: 100 });

    // Act
    const error = await failure(client.getToken());

    // Assess
    expect(error).toMatchObject({ code: 'INTERNAL', retryable: true });
    expect(error.message).toContain('100 ms');
  });

  it('fails with a retryable INTERNAL error when nothing listens', async () => {
    // Prepare
    const idle = createServer();
    idle.listen(0, '127.0.0.1');
    await once(idle, 'listening');
    const { port } = idle.address() as AddressInfo;
    idle.close();
    await once(idle, 'close');
    const client = makeClient({ baseUrl: `http://127.0.0.1:${port}` });

    // Act
    const error = await failure(client.getToken());

    // Assess
    expect(error).toMatchObject({ code: 'INTERNAL', retryable: true });
  });

  it.each(['not a url', 'ftp://example.com', 'https://example.com/prod?x=1'])(
    'refuses the base URL %j at creation',
    (bad) => {
      // Act & Assess
      expect(() => makeClient({ baseUrl: bad })).toThrow(TokenVendorError);
    },
  );
});
