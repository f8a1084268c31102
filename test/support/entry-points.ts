/**
 * Arbitraries and contract checks for fuzzing the vend function's two entry points (API Gateway
 * REST events and direct-invoke payloads) and the local server's HTTP front (CONTRACT §4–§6).
 */
import type { Context } from 'aws-lambda';
import fc from 'fast-check';
import { MemoryTokenStore } from '../../functions/adapters/memory-token-store.js';
import {
  createObservability,
  type Observability,
} from '../../functions/adapters/powertools-telemetry.js';
import { ERROR_STATUS } from '../../functions/core/errors.js';
import { VendService } from '../../functions/core/vend-service.js';
import { isRestEvent } from '../../functions/handlers/requests.js';
import type { RestResult } from '../../functions/handlers/responses.js';
import { createVendHandler } from '../../functions/handlers/vend-handler.js';
import { FakeClock } from './fake-clock.js';
import { FakeCrm, FakeSecrets, type LoginBehaviour, testSettings } from './fakes.js';

/** Profiles the fuzzed handlers have configured; names that look like Object members included. */
export const CONFIGURED_PROFILES = ['default', 'a', 'other', 'constructor'] as const;

/** Every HTTP status §4 lets the vend function answer. */
export const CONTRACT_STATUSES = new Set([200, ...Object.values(ERROR_STATUS)]);

const TOKEN_KEYS = ['token', 'profile', 'issuedAt', 'expiresAt', 'expiresInSeconds'];
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Strings that matter to the router, the validators and prototype handling. */
const NASTY_STRINGS = [
  '',
  ' ',
  'v1',
  'tokens',
  'health',
  'invalidate',
  'default',
  'a',
  'zzz',
  'constructor',
  '__proto__',
  'prototype',
  'toString',
  'hasOwnProperty',
  '.',
  '..',
  '%2F',
  '%2f',
  '%ZZ',
  '%',
  '%00',
  '%C3%A9',
  'é',
  '\u0000',
  '\uD800',
  'a.b',
  'a'.repeat(64),
  'a'.repeat(65),
  '0',
  '-1',
  '1.5',
  '1e3',
  '0x10',
  ' 5',
  '007',
  '30',
  '31',
  'null',
  'true',
  '{}',
  '[]',
];

export const nastyString = fc.constantFrom(...NASTY_STRINGS);

/** Mostly small strings, now and then one around or far over the 8 KiB limit. */
export const sizedString = fc.oneof(
  { weight: 8, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 4, arbitrary: nastyString },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 8180, max: 8200 }), fc.constantFrom('x', 'é', '\u{1F600}'))
      .map(([n, c]) => c.repeat(Math.ceil(n / Buffer.byteLength(c)))),
  },
  { weight: 1, arbitrary: fc.integer({ min: 10_000, max: 300_000 }).map((n) => 'y'.repeat(n)) },
);

const segment = fc.oneof(
  { weight: 4, arbitrary: nastyString },
  { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,70}$/) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }) },
);

/** Paths from a mix of valid and invalid segments, some near a route, some far from any. */
export const path = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .tuple(
        segment,
        fc.oneof(
          { weight: 4, arbitrary: fc.constantFrom('', '/invalidate') },
          { weight: 1, arbitrary: fc.constantFrom('/', '/invalidate/', '/x', '//') },
        ),
      )
      .map(([profile, tail]) => `/v1/tokens/${profile}${tail}`),
  },
  {
    weight: 5,
    arbitrary: fc.constantFrom(
      '/v1/health',
      '/v1/tokens/default',
      '/v1/tokens/default/invalidate',
      '/v1/tokens/a',
      '/v1/tokens/constructor',
      '/v1/tokens/zzz',
      '/v1/tokens/',
      '/v1/tokens//invalidate',
    ),
  },
  { weight: 2, arbitrary: fc.array(segment, { maxLength: 6 }).map((s) => `/${s.join('/')}`) },
  { weight: 1, arbitrary: sizedString },
);

const methodArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('GET', 'POST') },
  {
    weight: 2,
    arbitrary: fc.constantFrom('PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'get', 'post', ''),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
);

const minValidityValue = fc.oneof(
  fc.integer({ min: -5, max: 40 }).map(String),
  nastyString,
  fc.string({ maxLength: 6 }),
);

/** Bodies: JSON that looks like an invalidate body, any JSON, text, binary, wrong types. */
export const bodyText = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .record({ token: fc.oneof(sizedString, fc.jsonValue()) })
      .map((b) => JSON.stringify(b)),
  },
  { weight: 2, arbitrary: fc.json({ maxDepth: 3 }) },
  { weight: 2, arbitrary: sizedString },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.constantFrom('__proto__', 'constructor', 'prototype'),
        fc.jsonValue({ maxDepth: 2 }),
      )
      .map(([key, value]) => `{"${key}":${JSON.stringify({ token: 'TOKEN-0001', value })}}`),
  },
);

const binaryBody = fc
  .oneof(
    fc.uint8Array({ maxLength: 64 }),
    fc.integer({ min: 8185, max: 8200 }).map((n) => new Uint8Array(n).fill(0xff)),
  )
  .map((bytes) => Buffer.from(bytes).toString('base64'));

/** Any value at all, JSON-ish or not, for the "wrong type everywhere" cases. */
const wrongType = fc.oneof(
  fc.constant(null),
  fc.constant(undefined),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.string({ maxLength: 10 }),
  fc.array(fc.anything({ maxDepth: 1 }), { maxLength: 3 }),
  fc.anything({ maxDepth: 2 }),
);

const queryMap = fc.oneof(
  fc.constant(null),
  fc.dictionary(fc.oneof(nastyString, fc.constant('minValiditySeconds')), minValidityValue, {
    maxKeys: 3,
  }),
  fc.record({ minValiditySeconds: minValidityValue }),
  wrongType,
);

const multiQueryMap = fc.oneof(
  fc.constant(null),
  fc.record({ minValiditySeconds: fc.array(minValidityValue, { maxLength: 3 }) }),
  fc.dictionary(nastyString, fc.oneof(fc.array(fc.string(), { maxLength: 2 }), wrongType), {
    maxKeys: 3,
  }),
  wrongType,
);

const headerMap = fc.oneof(
  fc.constant(null),
  fc.dictionary(
    fc.oneof(fc.constantFrom('x-correlation-id', 'X-Correlation-Id', 'content-type'), nastyString),
    fc.oneof(sizedString, wrongType),
    { maxKeys: 3 },
  ),
  wrongType,
);

const requestContext = fc.oneof(
  { weight: 12, arbitrary: fc.record({ requestId: fc.oneof(fc.uuid(), sizedString) }) },
  { weight: 1, arbitrary: fc.constant({}) },
  { weight: 1, arbitrary: wrongType },
);

/**
 * API Gateway REST proxy events, mostly well-typed, with wrong types, huge strings, binary and
 * base64 bodies (`isBase64Encoded` true, false, "true" or junk) and any field missing.
 */
export const apiGatewayEvent = fc.record(
  {
    resource: fc.constant('/{proxy+}'),
    httpMethod: fc.oneof({ weight: 19, arbitrary: methodArb }, { weight: 1, arbitrary: wrongType }),
    path: fc.oneof({ weight: 19, arbitrary: path }, { weight: 1, arbitrary: wrongType }),
    headers: headerMap,
    multiValueHeaders: fc.oneof(fc.constant(null), wrongType),
    queryStringParameters: queryMap,
    multiValueQueryStringParameters: multiQueryMap,
    pathParameters: fc.oneof(fc.constant(null), wrongType),
    requestContext,
    body: fc.oneof(
      { weight: 2, arbitrary: fc.constant('{"token":"TOKEN-0001"}') },
      { weight: 4, arbitrary: bodyText },
      { weight: 2, arbitrary: fc.constant(null) },
      { weight: 2, arbitrary: binaryBody },
      { weight: 1, arbitrary: wrongType },
    ),
    isBase64Encoded: fc.oneof(
      fc.boolean(),
      fc.constantFrom('true', 'false', 1, 0, null, undefined),
      wrongType,
    ),
  },
  { requiredKeys: ['httpMethod', 'path', 'requestContext'] },
);

/** A JSON object text with one of the prototype-pollution keys, parsed as Lambda's runtime would. */
const pollutedPayload = fc
  .tuple(
    fc.constantFrom('__proto__', 'constructor', 'prototype'),
    fc.record(
      {
        action: fc.constantFrom('getToken', 'invalidate'),
        profile: fc.constantFrom(...CONFIGURED_PROFILES),
        token: fc.constant('TOKEN-0001'),
      },
      { requiredKeys: [] },
    ),
    fc.record(
      { action: fc.constantFrom('getToken', 'invalidate'), profile: fc.constantFrom('a', 'zzz') },
      { requiredKeys: [] },
    ),
  )
  .map(([key, inner, outer]) => {
    const text = JSON.stringify(outer).replace(/}$/, '');
    const glue = text === '{' ? '' : ',';
    return JSON.parse(
      `${text}${glue}"${key}":${JSON.stringify({ ...inner, prototype: inner })}}`,
    ) as unknown;
  });

const deepPayload = fc.integer({ min: 1, max: 20_000 }).map((depth) => {
  let value: unknown = { action: 'getToken', profile: 'default' };
  for (let i = 0; i < depth; i++) value = { action: 'getToken', profile: 'default', nested: value };
  return value;
});

/** Direct-invoke payloads: near-valid ones, anything at all, polluted keys, deep and huge ones. */
export const directPayload = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record(
      {
        action: fc.oneof(
          { weight: 4, arbitrary: fc.constantFrom('getToken', 'invalidate') },
          { weight: 1, arbitrary: fc.oneof(nastyString, wrongType) },
        ),
        profile: fc.oneof(
          { weight: 4, arbitrary: fc.constantFrom(...CONFIGURED_PROFILES, 'zzz', '__proto__') },
          { weight: 1, arbitrary: fc.oneof(sizedString, wrongType) },
        ),
        minValiditySeconds: fc.oneof(
          fc.integer({ min: -5, max: 40 }),
          fc.double(),
          minValidityValue,
          wrongType,
        ),
        token: fc.oneof(fc.constant('TOKEN-0001'), sizedString, wrongType),
      },
      { requiredKeys: [] },
    ),
  },
  { weight: 2, arbitrary: fc.anything({ maxDepth: 3 }) },
  { weight: 2, arbitrary: pollutedPayload },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
  { weight: 1, arbitrary: deepPayload },
  {
    weight: 1,
    arbitrary: sizedString.map((s) => ({ action: 'getToken', profile: 'default', pad: s })),
  },
);

/** The Lambda qualifier a fuzzed invocation comes through. */
export const qualifier = fc.constantFrom(
  undefined,
  '$LATEST',
  '7',
  'profile-default',
  'profile-a',
  'profile-zzz',
  'profile-__proto__',
  'profile-',
);

/** What must never be in any answer: a stack frame, "Error:", file paths, the given secrets. */
export function leaksIn(text: string, secrets: readonly string[]): string[] {
  const found: string[] = [];
  if (text.includes('Error:')) found.push('"Error:"');
  if (/\n\s+at |\bat [^\s]+ \(/.test(text)) found.push('a stack frame');
  if (/\.(ts|js|mjs|cjs):\d+|node:internal|file:\/\//.test(text)) found.push('a file path');
  for (const secret of secrets) if (secret && text.includes(secret)) found.push('a secret');
  return found;
}

/** Problems with a contract error body (`{"error":{code,message,retryable,retryAfterSeconds?}}`). */
export function errorBodyProblems(body: unknown): string[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return ['not an object'];
  const keys = Object.keys(body);
  if (keys.length !== 1 || keys[0] !== 'error') return [`keys ${keys.join()}`];
  const error = (body as { error: unknown }).error;
  if (typeof error !== 'object' || error === null) return ['error is not an object'];
  const e = error as Record<string, unknown>;
  const problems: string[] = [];
  const extra = Object.keys(e).filter(
    (k) => !['code', 'message', 'retryable', 'retryAfterSeconds'].includes(k),
  );
  if (extra.length > 0) problems.push(`extra keys ${extra.join()}`);
  if (typeof e.code !== 'string' || !Object.hasOwn(ERROR_STATUS, e.code)) {
    problems.push(`code ${String(e.code)}`);
  }
  if (typeof e.message !== 'string' || e.message === '') problems.push('message');
  if (typeof e.retryable !== 'boolean') problems.push('retryable');
  if (
    'retryAfterSeconds' in e &&
    !(Number.isInteger(e.retryAfterSeconds) && (e.retryAfterSeconds as number) >= 1)
  ) {
    problems.push('retryAfterSeconds');
  }
  return problems;
}

/** Problems with a token body (exactly the five fields, ISO-8601 UTC, whole seconds). */
export function tokenBodyProblems(body: unknown): string[] {
  if (typeof body !== 'object' || body === null) return ['not an object'];
  const b = body as Record<string, unknown>;
  const problems: string[] = [];
  if (Object.keys(b).join() !== TOKEN_KEYS.join()) problems.push(`keys ${Object.keys(b).join()}`);
  if (typeof b.token !== 'string' || b.token === '') problems.push('token');
  if (typeof b.profile !== 'string') problems.push('profile');
  if (typeof b.issuedAt !== 'string' || !ISO_UTC.test(b.issuedAt)) problems.push('issuedAt');
  if (typeof b.expiresAt !== 'string' || !ISO_UTC.test(b.expiresAt)) problems.push('expiresAt');
  if (!Number.isInteger(b.expiresInSeconds) || (b.expiresInSeconds as number) < 0) {
    problems.push('expiresInSeconds');
  }
  return problems;
}

function isTokenShaped(body: unknown): boolean {
  return typeof body === 'object' && body !== null && 'token' in body && !('error' in body);
}

/**
 * Problems with what the vend function answered to an API Gateway event (statusCode, headers,
 * body) or over HTTP: a §4 status, JSON, the token / health / error shape that status implies,
 * Cache-Control, Allow on 405, Retry-After on 502 and 503, and no leak. `tokens`: values that
 * may appear only as the `token` field of a 200.
 */
export function restAnswerProblems(
  answer: { status: number; headers: Record<string, unknown>; body: string },
  secrets: readonly string[],
  tokens: readonly string[] = [],
): string[] {
  const problems: string[] = [];
  const header = (name: string): unknown => {
    const key = Object.keys(answer.headers).find((k) => k.toLowerCase() === name.toLowerCase());
    return key === undefined ? undefined : answer.headers[key];
  };
  if (!CONTRACT_STATUSES.has(answer.status)) problems.push(`status ${answer.status}`);
  if (header('cache-control') !== 'no-store') problems.push('Cache-Control');
  if (!String(header('content-type')).startsWith('application/json')) problems.push('Content-Type');
  let body: unknown;
  try {
    body = JSON.parse(answer.body);
  } catch {
    return [...problems, 'body is not JSON'];
  }
  if (answer.status === 200) {
    const isHealth = answer.body === '{"status":"ok"}';
    if (!isHealth) problems.push(...tokenBodyProblems(body));
  } else {
    problems.push(...errorBodyProblems(body));
    const error = (body as { error?: { code?: string; retryAfterSeconds?: number } }).error;
    const code = error?.code as keyof typeof ERROR_STATUS | undefined;
    if (code && ERROR_STATUS[code] !== answer.status) problems.push(`${code} on ${answer.status}`);
    if (answer.status === 405 && typeof header('allow') !== 'string') problems.push('Allow');
    if (answer.status === 502 || answer.status === 503) {
      if (header('retry-after') !== String(error?.retryAfterSeconds)) problems.push('Retry-After');
    }
  }
  const nonTokenText = answer.status === 200 ? '' : answer.body;
  problems.push(...leaksIn(answer.body, secrets));
  for (const token of tokens)
    if (nonTokenText.includes(token)) problems.push('a token in an error');
  return problems;
}

/** Problems with what the vend function returned to a direct invoke: token or error object. */
export function invokeAnswerProblems(
  result: unknown,
  secrets: readonly string[],
  tokens: readonly string[] = [],
): string[] {
  const text = JSON.stringify(result) ?? '';
  const problems = isTokenShaped(result) ? tokenBodyProblems(result) : errorBodyProblems(result);
  problems.push(...leaksIn(text, secrets));
  if (!isTokenShaped(result)) {
    for (const token of tokens) if (text.includes(token)) problems.push('a token in an error');
  }
  return problems;
}

/** A fingerprint of Object.prototype, to prove nothing polluted it. */
export function prototypeSnapshot(): string {
  const names = Object.getOwnPropertyNames(Object.prototype).sort().join();
  const probe: Record<string, unknown> = {};
  const inherited: string[] = [];
  for (const key in probe) inherited.push(key);
  return `${names}|${inherited.join()}|${String(probe.action)}|${String(probe.profile)}`;
}

/** CRM.COM behaviours a fuzzed handler's fake CRM.COM switches between. */
export const crmBehaviour = fc.constantFrom<LoginBehaviour>(
  { kind: 'ok' },
  { kind: 'ok' },
  { kind: 'reject' },
  { kind: 'unavailable' },
  { kind: 'hang' },
);

/** Secrets a fuzzed handler holds, which no answer may contain. */
export const FUZZ_SECRETS = ['Fuzz-pa55word-0a1b2c', 'secret-1'] as const;
/** Tokens the fake CRM.COM issues first; only a token body's `token` field may carry one. */
export const FUZZ_TOKENS = ['TOKEN-0001', 'TOKEN-0002', 'TOKEN-0003'] as const;

let sharedObservability: Observability | undefined;

function lambdaContextFor(qualifierName: string | undefined, remainingMs: number): Context {
  const arn = `arn:aws:lambda:us-east-1:000000000000:function:vend${qualifierName ? `:${qualifierName}` : ''}`;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: 'vend',
    functionVersion: '$LATEST',
    invokedFunctionArn: arn,
    memoryLimitInMB: '256',
    awsRequestId: 'fuzz',
    logGroupName: '/aws/lambda/vend',
    logStreamName: 'fuzz',
    getRemainingTimeInMillis: () => remainingMs,
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

/**
 * A vend handler over the in-memory store, a fake CRM.COM and fake secrets on a fake clock, for
 * one fuzz run: `call` never lets time pass for real.
 */
export function fuzzedVendHandler(behaviour: LoginBehaviour, secretsFailing = false) {
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  sharedObservability ??= createObservability({ logLevel: 'SILENT' });
  const settings = testSettings();
  const clock = new FakeClock();
  const crm = new FakeCrm(clock, settings.crmTimeoutMs);
  crm.behaviour = behaviour;
  const secrets = new FakeSecrets([...CONFIGURED_PROFILES]);
  secrets.set('default', 'v1', FUZZ_SECRETS[0]);
  secrets.failing = secretsFailing;
  const service = new VendService({
    store: new MemoryTokenStore(),
    secrets,
    crm,
    clock,
    settings,
    random: () => 0.5,
  });
  const handler = createVendHandler({
    service,
    settings,
    clock,
    observability: sharedObservability,
  });
  const call = (event: unknown, qualifierName?: string, remainingMs = 10_000) =>
    clock.run(handler(event, lambdaContextFor(qualifierName, remainingMs)) as Promise<unknown>);
  return { call, crm, secrets, clock };
}

/** Runs one fuzzed invocation and lists every way its answer breaks the contract. */
async function answerProblems(
  event: unknown,
  q: string | undefined,
  b: LoginBehaviour,
  failing: boolean,
) {
  const before = prototypeSnapshot();
  const { call } = fuzzedVendHandler(b, failing);
  let result: unknown;
  try {
    result = await call(event, q);
  } catch (error) {
    return [`the handler threw ${error instanceof Error ? error.name : typeof error}`];
  }
  const problems = isRestEvent(event)
    ? restAnswerProblems(
        {
          status: (result as RestResult).statusCode,
          headers: (result as RestResult).headers ?? {},
          body: (result as RestResult).body,
        },
        FUZZ_SECRETS,
        FUZZ_TOKENS,
      )
    : invokeAnswerProblems(result, FUZZ_SECRETS, FUZZ_TOKENS);
  if (prototypeSnapshot() !== before) problems.push('Object.prototype changed');
  return problems;
}

/** The property: any API Gateway-like event gets a contract answer, never a throw or a leak. */
export const restEventProperty = () =>
  fc.asyncProperty(
    apiGatewayEvent,
    qualifier,
    crmBehaviour,
    fc.boolean(),
    async (event, q, b, f) => {
      const problems = await answerProblems(event, q, b, f);
      if (problems.length > 0) throw new Error(`contract broken: ${problems.join('; ')}`);
    },
  );

/** The property: any direct-invoke payload gets a token or error object, never a throw or leak. */
export const directPayloadProperty = () =>
  fc.asyncProperty(
    directPayload,
    qualifier,
    crmBehaviour,
    fc.boolean(),
    async (payload, q, b, f) => {
      const problems = await answerProblems(payload, q, b, f);
      if (problems.length > 0) throw new Error(`contract broken: ${problems.join('; ')}`);
    },
  );

/** Makes a fuzzed path sendable by node:http (printable ASCII), starting with `/`. */
export function sendablePath(raw: string): string {
  const encoded = Array.from(raw)
    .map((c) => {
      if (/^[\x21-\x7e]$/.test(c)) return c;
      try {
        return encodeURIComponent(c);
      } catch {
        return '%ED%A0%80'; // a lone surrogate, as its (invalid) UTF-8 bytes
      }
    })
    .join('');
  return encoded.startsWith('/') ? encoded : `/${encoded}`;
}

const httpQuery = fc.option(
  fc.array(
    fc.tuple(
      fc.constantFrom('minValiditySeconds', 'constructor', '__proto__', 'toString', 'x'),
      fc.oneof(minValidityValue, fc.string({ maxLength: 6 })),
    ),
    { maxLength: 3 },
  ),
  { nil: undefined },
);

const httpHeaders = fc.dictionary(
  fc.constantFrom(
    'x-correlation-id',
    'content-type',
    'constructor',
    '__proto__',
    'x-amz-invocation-type',
    'accept',
  ),
  fc.string({ unit: 'grapheme-ascii', maxLength: 40 }).map((v) => v.replace(/[^\x20-\x7e]/g, '')),
  { maxKeys: 3 },
);

/** A request node:http can send: a method its parser knows or not, any path, query, body. */
export const httpRequest = fc
  .record({
    method: fc.constantFrom(
      'GET',
      'GET',
      'POST',
      'POST',
      'PUT',
      'DELETE',
      'PATCH',
      'HEAD',
      'OPTIONS',
      'X-ODD',
    ),
    path,
    query: httpQuery,
    body: fc.option(
      fc.oneof(
        bodyText,
        fc.uint8Array({ maxLength: 9000 }).map((b) => Buffer.from(b)),
      ),
      { nil: undefined },
    ),
    headers: httpHeaders,
  })
  .map(({ method, path: p, query, body, headers }) => {
    const search = query
      ? `?${query.map(([k, v]) => `${k}=${encodeURIComponent(v.replace(/[\uD800-\uDFFF]/g, '?'))}`).join('&')}`
      : '';
    return {
      method,
      path: `${sendablePath(p)}${search}`,
      headers,
      ...(body === undefined || method === 'GET' || method === 'HEAD' ? {} : { body }),
    };
  });

/** Node's limit on a request line plus headers; beyond it the server answers 431 itself. */
const MAX_HEAD_BYTES = 16 * 1024;

/**
 * restAnswerProblems for an answer over HTTP. A HEAD answer has headers but no body; a request
 * whose line and headers exceed Node's 16 KiB limit gets its bare 431 (API Gateway refuses such
 * requests before any function, too).
 */
export function httpAnswerProblems(
  request: { method: string; path: string; headers?: Record<string, string> },
  answer: { status: number; headers: Record<string, unknown>; text: string },
  secrets: readonly string[],
  tokens: readonly string[] = [],
): string[] {
  const headBytes =
    request.method.length + request.path.length + JSON.stringify(request.headers ?? {}).length;
  if (answer.status === 431) {
    return headBytes > MAX_HEAD_BYTES - 512 ? [] : ['431 for a small request'];
  }
  if (request.method !== 'HEAD') {
    return restAnswerProblems({ ...answer, body: answer.text }, secrets, tokens);
  }
  const problems: string[] = [];
  if (!CONTRACT_STATUSES.has(answer.status)) problems.push(`status ${answer.status}`);
  if (answer.headers['cache-control'] !== 'no-store') problems.push('Cache-Control');
  if (answer.text !== '') problems.push('a body on HEAD');
  return problems;
}
