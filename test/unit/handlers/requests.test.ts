import { describe, expect, it } from 'vitest';
import { type ErrorCode, VendorError } from '../../../functions/core/errors.js';
import {
  aliasProfile,
  isRestEvent,
  MAX_BODY_BYTES,
  parseInvokePayload,
  parseRestEvent,
  type RestEvent,
  routePath,
  type VendRequest,
} from '../../../functions/handlers/requests.js';
import { testSettings } from '../../support/fakes.js';

// REFRESH_AHEAD_SECONDS is 30: the largest minValiditySeconds a request may ask for.
const settings = testSettings();
const REFRESH_AHEAD = settings.refreshAheadSeconds;

function rest(fields: Partial<RestEvent> & Record<string, unknown> = {}): RestEvent {
  return {
    httpMethod: 'GET',
    path: '/v1/health',
    body: null,
    isBase64Encoded: false,
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    ...fields,
  };
}

function query(values: Record<string, string[]>): Partial<RestEvent> {
  const single: Record<string, string> = {};
  for (const [k, v] of Object.entries(values)) single[k] = v[v.length - 1] as string;
  return { queryStringParameters: single, multiValueQueryStringParameters: values };
}

/** The outcome of a parse: the request, or the error code (and Allow list) it refused with. */
function outcome(parse: () => VendRequest): VendRequest | { code: ErrorCode; allow?: string[] } {
  try {
    return parse();
  } catch (error) {
    if (!(error instanceof VendorError)) throw error;
    return error.allow ? { code: error.code, allow: [...error.allow] } : { code: error.code };
  }
}

const restOutcome = (event: RestEvent) => outcome(() => parseRestEvent(event, settings));
const invokeOutcome = (payload: unknown) => outcome(() => parseInvokePayload(payload, settings));

describe('parseRestEvent routing (CONTRACT §4, checks 1–2)', () => {
  it.each([
    ['GET', '/v1/health', { action: 'health' }],
    ['GET', '/v1/tokens/default', { action: 'getToken', profile: 'default' }],
    ['GET', '/v1/tokens/A-z_09', { action: 'getToken', profile: 'A-z_09' }],
    ['GET', '/v1/tokens/%64efault', { action: 'getToken', profile: 'default' }],
  ])('%s %s → %o', (httpMethod, path, expected) => {
    expect(restOutcome(rest({ httpMethod, path }))).toEqual(expected);
  });

  it.each([
    '/v1/tokens/',
    '/v1/tokens//invalidate',
    '/v1/tokens',
    '/v1/health/',
    '/v1/tokens/default/',
    '/v1/tokens/default/invalidate/',
    '/v1/tokens/default/extra',
    '/v1/tokens/default/invalidate/x',
    '/v1//health',
    '//v1/health',
    '/v1',
    '/',
    '',
    'v1/health',
    '/V1/health',
    '/v1/HEALTH',
    '/v2/tokens/default',
    '/v1/token/default',
    '/v1/tokens/default/Invalidate',
    '/x/v1/health',
  ])('%j matches no route → NOT_FOUND, whatever the method', (path) => {
    for (const httpMethod of ['GET', 'POST', 'DELETE']) {
      expect(restOutcome(rest({ httpMethod, path }))).toEqual({ code: 'NOT_FOUND' });
    }
  });

  it.each([
    ['POST', '/v1/health', ['GET']],
    ['HEAD', '/v1/health', ['GET']],
    ['PUT', '/v1/tokens/default', ['GET']],
    ['POST', '/v1/tokens/default', ['GET']],
    ['get', '/v1/tokens/default', ['GET']],
    ['GET', '/v1/tokens/default/invalidate', ['POST']],
    ['DELETE', '/v1/tokens/default/invalidate', ['POST']],
    ['OPTIONS', '/v1/tokens/default/invalidate', ['POST']],
    // 405 comes before the profile name is looked at (400).
    ['DELETE', '/v1/tokens/a.b', ['GET']],
    ['GET', '/v1/tokens/%ZZ/invalidate', ['POST']],
  ])('%s %s → METHOD_NOT_ALLOWED, Allow %o', (httpMethod, path, allow) => {
    expect(restOutcome(rest({ httpMethod, path }))).toEqual({ code: 'METHOD_NOT_ALLOWED', allow });
  });

  it('NOT_FOUND comes before METHOD_NOT_ALLOWED and PAYLOAD_TOO_LARGE', () => {
    const big = 'x'.repeat(MAX_BODY_BYTES + 1);
    expect(restOutcome(rest({ httpMethod: 'PATCH', path: '/nope', body: big }))).toEqual({
      code: 'NOT_FOUND',
    });
  });
});

describe('parseRestEvent body limit (check 3)', () => {
  const invalidate = (body: string, isBase64Encoded = false) =>
    restOutcome(
      rest({ httpMethod: 'POST', path: '/v1/tokens/default/invalidate', body, isBase64Encoded }),
    );
  const tokenBodyOf = (bytes: number) => {
    const shell = '{"token":""}';
    return `{"token":"${'t'.repeat(bytes - shell.length)}"}`;
  };

  it('takes a body of exactly 8192 bytes and refuses 8193', () => {
    expect(invalidate(tokenBodyOf(MAX_BODY_BYTES))).toMatchObject({ action: 'invalidate' });
    expect(invalidate(tokenBodyOf(MAX_BODY_BYTES + 1))).toEqual({ code: 'PAYLOAD_TOO_LARGE' });
  });

  it('counts bytes, not characters', () => {
    const body = `{"token":"${'é'.repeat(4091)}"}`; // 12 + 2 × 4091 = 8194 bytes
    expect(body.length).toBeLessThan(MAX_BODY_BYTES);
    expect(invalidate(body)).toEqual({ code: 'PAYLOAD_TOO_LARGE' });
  });

  it('measures a base64-encoded body decoded', () => {
    const fits = Buffer.from(tokenBodyOf(MAX_BODY_BYTES)).toString('base64');
    const over = Buffer.from(tokenBodyOf(MAX_BODY_BYTES + 1)).toString('base64');
    expect(fits.length).toBeGreaterThan(MAX_BODY_BYTES);
    expect(invalidate(fits, true)).toMatchObject({ action: 'invalidate' });
    expect(invalidate(over, true)).toEqual({ code: 'PAYLOAD_TOO_LARGE' });
  });

  it('decodes base64 only when isBase64Encoded is the boolean true', () => {
    const body = Buffer.from('{"token":"abc"}').toString('base64');
    const event = (flag: unknown) =>
      rest({
        httpMethod: 'POST',
        path: '/v1/tokens/p/invalidate',
        body,
        isBase64Encoded: flag as boolean,
      });
    expect(restOutcome(event(true))).toEqual({ action: 'invalidate', profile: 'p', token: 'abc' });
    for (const flag of ['true', 1, false, undefined, null]) {
      expect(restOutcome(event(flag))).toEqual({ code: 'INVALID_REQUEST' });
    }
  });

  it('applies to GET routes too, before the profile name or the query is checked', () => {
    const body = 'x'.repeat(MAX_BODY_BYTES + 1);
    expect(restOutcome(rest({ path: '/v1/health', body }))).toEqual({ code: 'PAYLOAD_TOO_LARGE' });
    expect(
      restOutcome(rest({ path: '/v1/tokens/a.b', body, ...query({ minValiditySeconds: ['x'] }) })),
    ).toEqual({ code: 'PAYLOAD_TOO_LARGE' });
  });
});

describe('parseRestEvent validation (check 4)', () => {
  it.each([
    ['65 characters', `/v1/tokens/${'a'.repeat(65)}`],
    ['a dot', '/v1/tokens/a.b'],
    ['an encoded slash', '/v1/tokens/a%2Fb'],
    ['an encoded slash alone', '/v1/tokens/%2F'],
    ['an encoded space', '/v1/tokens/a%20b'],
    ['unicode', '/v1/tokens/caf%C3%A9'],
    ['raw unicode', '/v1/tokens/café'],
    ['bad percent-encoding', '/v1/tokens/%ZZ'],
    ['a lone percent', '/v1/tokens/a%'],
    ['an encoded NUL', '/v1/tokens/a%00'],
    ['an encoded empty name', '/v1/tokens/%20'],
  ])('a profile name with %s → INVALID_REQUEST', (_label, path) => {
    expect(restOutcome(rest({ path }))).toEqual({ code: 'INVALID_REQUEST' });
    expect(
      restOutcome(rest({ httpMethod: 'POST', path: `${path}/invalidate`, body: '{"token":"t"}' })),
    ).toEqual({ code: 'INVALID_REQUEST' });
  });

  it('takes a 64-character profile name', () => {
    const name = 'a'.repeat(64);
    expect(restOutcome(rest({ path: `/v1/tokens/${name}` }))).toEqual({
      action: 'getToken',
      profile: name,
    });
  });

  const get = (values: Record<string, string[]>) =>
    restOutcome(rest({ path: '/v1/tokens/default', ...query(values) }));

  it.each([
    '',
    '-1',
    '1.5',
    '1e3',
    ' 5',
    '5 ',
    '+5',
    '0x10',
    'five',
    '٣', // an Arabic-Indic digit is not a decimal digit here
    String(REFRESH_AHEAD + 1),
    '99999999999999999999',
  ])('minValiditySeconds=%j → INVALID_REQUEST', (value) => {
    expect(get({ minValiditySeconds: [value] })).toEqual({ code: 'INVALID_REQUEST' });
  });

  it.each([
    ['0', 0],
    [String(REFRESH_AHEAD), REFRESH_AHEAD],
    ['007', 7],
    ['0000000000', 0],
    ['000000000000000000007', 7],
  ])('minValiditySeconds=%j → %d', (value, expected) => {
    expect(get({ minValiditySeconds: [value] })).toEqual({
      action: 'getToken',
      profile: 'default',
      minValiditySeconds: expected,
    });
  });

  it('refuses minValiditySeconds given twice, even with the same value', () => {
    expect(get({ minValiditySeconds: ['5', '5'] })).toEqual({ code: 'INVALID_REQUEST' });
    expect(get({ minValiditySeconds: ['5', '6'] })).toEqual({ code: 'INVALID_REQUEST' });
  });

  it('ignores other query parameters and takes the default without minValiditySeconds', () => {
    expect(get({ other: ['x', 'y'], minvalidityseconds: ['zz'] })).toEqual({
      action: 'getToken',
      profile: 'default',
    });
  });

  it('refuses a minValiditySeconds of the wrong type rather than ignoring it', () => {
    const event = rest({
      path: '/v1/tokens/default',
      queryStringParameters: { minValiditySeconds: 5 as unknown as string },
    });
    expect(restOutcome(event)).toEqual({ code: 'INVALID_REQUEST' });
  });

  const invalidateWith = (body: string | null) =>
    restOutcome(rest({ httpMethod: 'POST', path: '/v1/tokens/default/invalidate', body }));

  it.each([
    ['no body', null],
    ['an empty body', ''],
    ['malformed JSON', '{"token":'],
    ['not JSON', 'token=abc'],
    ['an array', '["abc"]'],
    ['null', 'null'],
    ['a string', '"abc"'],
    ['a number', '42'],
    ['no token', '{}'],
    ['a token that is a number', '{"token":42}'],
    ['a token that is null', '{"token":null}'],
    ['a token that is an object', '{"token":{"a":1}}'],
    ['an empty token', '{"token":""}'],
    ['a token only inherited', '{"__proto__":{"token":"abc"}}'],
  ])('an invalidate body with %s → INVALID_REQUEST', (_label, body) => {
    expect(invalidateWith(body)).toEqual({ code: 'INVALID_REQUEST' });
  });

  it('takes an invalidate body with a token, extra fields ignored', () => {
    expect(invalidateWith('{"token":"abc","other":[1,2]}')).toEqual({
      action: 'invalidate',
      profile: 'default',
      token: 'abc',
    });
  });

  it('takes a base64-encoded invalidate body', () => {
    const body = Buffer.from('{"token":"abc"}').toString('base64');
    expect(
      restOutcome(
        rest({ httpMethod: 'POST', path: '/v1/tokens/p/invalidate', body, isBase64Encoded: true }),
      ),
    ).toEqual({ action: 'invalidate', profile: 'p', token: 'abc' });
  });
});

describe('parseInvokePayload (CONTRACT §5)', () => {
  it.each([
    [
      { action: 'getToken', profile: 'p' },
      { action: 'getToken', profile: 'p' },
    ],
    [
      { action: 'getToken', profile: 'p', minValiditySeconds: 5 },
      { action: 'getToken', profile: 'p', minValiditySeconds: 5 },
    ],
    [
      { action: 'getToken', profile: 'p', minValiditySeconds: '5' },
      { action: 'getToken', profile: 'p', minValiditySeconds: 5 },
    ],
    [
      { action: 'getToken', profile: 'p', minValiditySeconds: 0 },
      { action: 'getToken', profile: 'p', minValiditySeconds: 0 },
    ],
    [
      { action: 'getToken', profile: 'p', minValiditySeconds: REFRESH_AHEAD },
      { action: 'getToken', profile: 'p', minValiditySeconds: REFRESH_AHEAD },
    ],
    [
      { action: 'invalidate', profile: 'p', token: 't', minValiditySeconds: 'ignored' },
      { action: 'invalidate', profile: 'p', token: 't' },
    ],
  ])('%o → %o', (payload, expected) => {
    expect(invokeOutcome(payload)).toEqual(expected);
  });

  it.each([
    ['null', null],
    ['undefined', undefined],
    ['an array', []],
    ['an array of a payload', [{ action: 'getToken', profile: 'p' }]],
    ['a string', 'x'],
    ['a JSON string', '{"action":"getToken","profile":"p"}'],
    ['a number', 5],
    ['a boolean', true],
    ['no action', { profile: 'p' }],
    ['an unknown action', { action: 'health', profile: 'p' }],
    ['another unknown action', { action: 'revokeProfile', profile: 'p' }],
    ['an action of the wrong case', { action: 'GetToken', profile: 'p' }],
    ['an action that is not a string', { action: ['getToken'], profile: 'p' }],
    ['no profile', { action: 'getToken' }],
    ['an empty profile', { action: 'getToken', profile: '' }],
    ['a profile that is a number', { action: 'getToken', profile: 5 }],
    ['a bad profile name', { action: 'getToken', profile: 'a/b' }],
    ['a 65-character profile', { action: 'getToken', profile: 'a'.repeat(65) }],
    ['minValiditySeconds float', { action: 'getToken', profile: 'p', minValiditySeconds: 1.5 }],
    ['minValiditySeconds negative', { action: 'getToken', profile: 'p', minValiditySeconds: -1 }],
    ['minValiditySeconds "-1"', { action: 'getToken', profile: 'p', minValiditySeconds: '-1' }],
    ['minValiditySeconds "1e3"', { action: 'getToken', profile: 'p', minValiditySeconds: '1e3' }],
    ['minValiditySeconds null', { action: 'getToken', profile: 'p', minValiditySeconds: null }],
    [
      'minValiditySeconds NaN',
      { action: 'getToken', profile: 'p', minValiditySeconds: Number.NaN },
    ],
    [
      'minValiditySeconds too large',
      { action: 'getToken', profile: 'p', minValiditySeconds: REFRESH_AHEAD + 1 },
    ],
    [
      'minValiditySeconds huge',
      { action: 'getToken', profile: 'p', minValiditySeconds: Number.MAX_SAFE_INTEGER },
    ],
    ['invalidate without a token', { action: 'invalidate', profile: 'p' }],
    ['invalidate with an empty token', { action: 'invalidate', profile: 'p', token: '' }],
    ['invalidate with a number token', { action: 'invalidate', profile: 'p', token: 1 }],
  ])('%s → INVALID_REQUEST', (_label, payload) => {
    expect(invokeOutcome(payload)).toEqual({ code: 'INVALID_REQUEST' });
  });

  it('refuses a payload over 8 KiB, and one too deeply nested to measure', () => {
    const big = { action: 'getToken', profile: 'p', pad: 'x'.repeat(MAX_BODY_BYTES) };
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 100_000; i++) deep = { a: deep };
    expect(invokeOutcome(big)).toEqual({ code: 'PAYLOAD_TOO_LARGE' });
    expect(invokeOutcome({ action: 'getToken', profile: 'p', deep })).toEqual({
      code: 'PAYLOAD_TOO_LARGE',
    });
  });

  it('does not take fields through __proto__ or constructor keys (JSON payloads)', () => {
    // Prepare
    const payloads = [
      '{"__proto__":{"action":"getToken","profile":"p"}}',
      '{"action":"getToken","__proto__":{"profile":"p"}}',
      '{"action":"invalidate","profile":"p","__proto__":{"token":"t"}}',
      '{"constructor":{"prototype":{"action":"getToken","profile":"p"}}}',
      '{"action":"getToken","profile":"p","__proto__":{"minValiditySeconds":"x"}}',
    ].map((text) => JSON.parse(text) as unknown);
    // Act
    const outcomes = payloads.map(invokeOutcome);
    // Assess
    expect(outcomes).toEqual([
      { code: 'INVALID_REQUEST' },
      { code: 'INVALID_REQUEST' },
      { code: 'INVALID_REQUEST' },
      { code: 'INVALID_REQUEST' },
      { action: 'getToken', profile: 'p' },
    ]);
    expect(Object.hasOwn(Object.prototype, 'action')).toBe(false);
    expect(({} as Record<string, unknown>).profile).toBeUndefined();
  });

  it('does not take inherited fields of an object built in process', () => {
    const inherited = Object.create({ action: 'getToken', profile: 'p' }) as object;
    const tokenInherited = Object.assign(Object.create({ token: 't' }) as object, {
      action: 'invalidate',
      profile: 'p',
    });
    expect(invokeOutcome(inherited)).toEqual({ code: 'INVALID_REQUEST' });
    expect(invokeOutcome(tokenInherited)).toEqual({ code: 'INVALID_REQUEST' });
  });

  it('takes profile names that look like Object.prototype members as plain names', () => {
    for (const profile of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      expect(invokeOutcome({ action: 'getToken', profile })).toEqual({
        action: 'getToken',
        profile,
      });
    }
  });
});

describe('isRestEvent', () => {
  it.each([
    [{ httpMethod: 'GET', path: '/v1/health', requestContext: {} }, true],
    [{ httpMethod: 'GET', path: '/v1/health' }, false],
    [{ httpMethod: 'GET', path: '/v1/health', requestContext: null }, false],
    [{ httpMethod: 1, path: '/v1/health', requestContext: {} }, false],
    [{ httpMethod: 'GET', path: ['/v1/health'], requestContext: {} }, false],
    [{ action: 'getToken', profile: 'p' }, false],
    [JSON.parse('{"__proto__":{"httpMethod":"GET","path":"/","requestContext":{}}}'), false],
    [null, false],
    [undefined, false],
    ['GET /v1/health', false],
    [[], false],
  ])('%o → %s', (event, expected) => {
    expect(isRestEvent(event)).toBe(expected);
  });
});

describe('aliasProfile', () => {
  const arn = 'arn:aws:lambda:us-east-1:000000000000:function:vend';
  it.each([
    [undefined, undefined],
    ['', undefined],
    [arn, undefined],
    [`${arn}:$LATEST`, undefined],
    [`${arn}:7`, undefined],
    [`${arn}:live`, undefined],
    [`${arn}:profile-default`, 'default'],
    [`${arn}:profile-a-b_c`, 'a-b_c'],
    [`${arn}:profile-`, ''],
  ])('%s → %s', (invokedArn, expected) => {
    expect(aliasProfile(invokedArn)).toBe(expected);
  });
});

describe('routePath: API Gateway behind a custom domain with a base path mapping', () => {
  const behindMapping = (
    path: string,
    resource: string,
    pathParameters: Record<string, string> | null,
    httpMethod = 'GET',
  ) => ({ httpMethod, path, resource, pathParameters, body: null });

  it('routes on the matched resource, not on a path that carries the base path', () => {
    // Prepare: API Gateway puts the mapping's base path (`/crm`) into `path`
    const token = behindMapping('/crm/v1/tokens/billing', '/v1/tokens/{profile}', {
      profile: 'billing',
    });
    const invalidate = {
      ...behindMapping(
        '/crm/v1/tokens/billing/invalidate',
        '/v1/tokens/{profile}/invalidate',
        { profile: 'billing' },
        'POST',
      ),
      body: '{"token":"t"}',
    };
    const health = behindMapping('/crm/v1/health', '/v1/health', null);
    const viaRootProxy = behindMapping('/crm/v1/health', '/{proxy+}', { proxy: 'v1/health' });
    const unknown = behindMapping('/crm/v1/nope', '/v1/{proxy+}', { proxy: 'nope' });
    // Act / Assess
    expect(routePath(token)).toBe('/v1/tokens/billing');
    expect(parseRestEvent(token, settings)).toEqual({ action: 'getToken', profile: 'billing' });
    expect(parseRestEvent(invalidate, settings)).toEqual({
      action: 'invalidate',
      profile: 'billing',
      token: 't',
    });
    expect(parseRestEvent(health, settings)).toEqual({ action: 'health' });
    expect(parseRestEvent(viaRootProxy, settings)).toEqual({ action: 'health' });
    expect(() => parseRestEvent(unknown, settings)).toThrow(/No such route/);
  });

  it('re-encodes a decoded profile parameter, so a slash in it stays a bad name (400)', () => {
    const event = behindMapping('/v1/tokens/a%2Fb', '/v1/tokens/{profile}', { profile: 'a/b' });
    expect(routePath(event)).toBe('/v1/tokens/a%2Fb');
    expect(() => parseRestEvent(event, settings)).toThrow(/profile name/);
  });

  it('falls back to path when the parameters do not fill the resource', () => {
    expect(routePath(behindMapping('/v1/health', '/{proxy+}', null))).toBe('/v1/health');
    expect(routePath(behindMapping('/v1/health', '/{proxy+}', { other: 'x' }))).toBe('/v1/health');
    expect(routePath({ httpMethod: 'GET', path: '/v1/health' })).toBe('/v1/health');
  });
});
