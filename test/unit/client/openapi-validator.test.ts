import { describe, expect, it } from 'vitest';
import { VENDOR_ERROR_STATUS } from '../../../functions/client/index.js';
import { vended, vendorError } from './helpers.js';
import {
  createOpenApiValidator,
  loadOpenApiDocument,
  type ResponseToValidate,
} from './openapi-validator.js';

const validator = createOpenApiValidator();
const TOKEN = '/v1/tokens/{profile}';
const INVALIDATE = '/v1/tokens/{profile}/invalidate';
const HEALTH = '/v1/health';
const json = { 'content-type': 'application/json' };
const noStore = { ...json, 'cache-control': 'no-store' };

function errorsOf(response: ResponseToValidate): readonly string[] {
  return validator.validate(response).errors;
}

describe('openapi.json', () => {
  it('describes the three routes, IAM auth and every §4 status and code', () => {
    // Prepare
    const doc = loadOpenApiDocument();
    const text = JSON.stringify(doc);

    // Act
    const statuses = new Set(
      text.match(/"[1-5][0-9]{2}"(?=:)/g)?.map((s) => Number(s.slice(1, -1))),
    );

    // Assess
    expect(doc.openapi).toBe('3.1.0');
    expect(validator.pathTemplates).toStrictEqual([TOKEN, INVALIDATE, HEALTH]);
    expect([...statuses].sort()).toStrictEqual([200, 400, 403, 404, 413, 429, 500, 502, 503]);
    for (const code of Object.keys(VENDOR_ERROR_STATUS)) expect(text).toContain(`"${code}"`);
    expect(text).toContain('"x-amazon-apigateway-authtype":"awsSigv4"');
  });

  it('matches concrete paths to templates', () => {
    // Act & Assess
    expect(validator.matchPath('/v1/tokens/default')).toBe(TOKEN);
    expect(validator.matchPath('/v1/tokens/default/invalidate')).toBe(INVALIDATE);
    expect(validator.matchPath('/v1/health')).toBe(HEALTH);
    expect(validator.matchPath('/v1/tokens/')).toBeUndefined();
    expect(validator.matchPath('/v1/tokens/a/b')).toBeUndefined();
  });
});

describe('validator: good and bad answers per schema', () => {
  it.each<[string, ResponseToValidate]>([
    [
      'a token',
      { method: 'GET', pathTemplate: TOKEN, status: 200, headers: noStore, body: vended('t1') },
    ],
    [
      'an invalidate answer as text',
      {
        method: 'POST',
        pathTemplate: INVALIDATE,
        status: 200,
        headers: noStore,
        body: JSON.stringify(vended('t2')),
      },
    ],
    [
      'health',
      { method: 'GET', pathTemplate: HEALTH, status: 200, headers: json, body: { status: 'ok' } },
    ],
    [
      '400',
      { method: 'GET', pathTemplate: TOKEN, status: 400, body: vendorError('INVALID_REQUEST') },
    ],
    [
      '403 alias',
      { method: 'GET', pathTemplate: TOKEN, status: 403, body: vendorError('FORBIDDEN_PROFILE') },
    ],
    [
      '403 IAM',
      { method: 'POST', pathTemplate: INVALIDATE, status: 403, body: vendorError('FORBIDDEN') },
    ],
    [
      '404 unknown profile',
      { method: 'GET', pathTemplate: TOKEN, status: 404, body: vendorError('UNKNOWN_PROFILE') },
    ],
    [
      '404 unmatched path',
      { method: 'GET', path: '/v1/tokens/', status: 404, body: vendorError('NOT_FOUND') },
    ],
    [
      '405 with Allow',
      {
        method: 'DELETE',
        path: '/v1/tokens/default',
        status: 405,
        headers: { Allow: 'GET' },
        body: vendorError('METHOD_NOT_ALLOWED'),
      },
    ],
    [
      '413',
      {
        method: 'POST',
        pathTemplate: INVALIDATE,
        status: 413,
        body: vendorError('PAYLOAD_TOO_LARGE'),
      },
    ],
    [
      '429',
      {
        method: 'GET',
        pathTemplate: HEALTH,
        status: 429,
        body: vendorError('THROTTLED', { retryable: true }),
      },
    ],
    [
      '500 misconfigured',
      { method: 'GET', pathTemplate: TOKEN, status: 500, body: vendorError('MISCONFIGURED') },
    ],
    [
      '500 internal',
      {
        method: 'GET',
        pathTemplate: HEALTH,
        status: 500,
        body: vendorError('INTERNAL', { retryable: true }),
      },
    ],
    [
      '502',
      {
        method: 'POST',
        pathTemplate: INVALIDATE,
        status: 502,
        headers: { 'Retry-After': '60' },
        body: vendorError('CRM_AUTH_FAILED', { retryAfterSeconds: 60 }),
      },
    ],
    [
      '503',
      {
        method: 'GET',
        pathTemplate: TOKEN,
        status: 503,
        headers: { 'retry-after': '2' },
        body: vendorError('CRM_UNAVAILABLE', { retryable: true, retryAfterSeconds: 2 }),
      },
    ],
  ])('accepts %s', (_label, response) => {
    // Act & Assess
    expect(errorsOf(response)).toStrictEqual([]);
  });

  it.each<[string, ResponseToValidate, string]>([
    [
      'a token without expiresInSeconds',
      {
        method: 'GET',
        pathTemplate: TOKEN,
        status: 200,
        headers: noStore,
        body: { ...vended('t1'), expiresInSeconds: undefined },
      },
      'expiresInSeconds',
    ],
    [
      'a fractional expiresInSeconds',
      {
        method: 'GET',
        pathTemplate: TOKEN,
        status: 200,
        headers: noStore,
        body: { ...vended('t1'), expiresInSeconds: 1.5 },
      },
      'integer',
    ],
    [
      'a local-time timestamp',
      {
        method: 'GET',
        pathTemplate: TOKEN,
        status: 200,
        headers: noStore,
        body: { ...vended('t1'), expiresAt: '2026-01-01T10:00:00+02:00' },
      },
      'pattern',
    ],
    [
      'an extra field on a token',
      {
        method: 'GET',
        pathTemplate: TOKEN,
        status: 200,
        headers: noStore,
        body: { ...vended('t1'), secret: 'x' },
      },
      'additional',
    ],
    [
      'a token without Cache-Control',
      { method: 'GET', pathTemplate: TOKEN, status: 200, headers: json, body: vended('t1') },
      'Cache-Control',
    ],
    [
      'a cacheable token',
      {
        method: 'POST',
        pathTemplate: INVALIDATE,
        status: 200,
        headers: { 'cache-control': 'max-age=60' },
        body: vended('t1'),
      },
      'Cache-Control',
    ],
    [
      'an HTML body',
      {
        method: 'GET',
        pathTemplate: TOKEN,
        status: 200,
        headers: { ...noStore, 'content-type': 'text/html' },
        body: vended('t1'),
      },
      'content-type',
    ],
    [
      'non-JSON text',
      { method: 'GET', pathTemplate: HEALTH, status: 200, body: '<html>' },
      'not JSON',
    ],
    [
      'health not ok',
      { method: 'GET', pathTemplate: HEALTH, status: 200, body: { status: 'degraded' } },
      'const',
    ],
    [
      '400 with another code',
      { method: 'GET', pathTemplate: TOKEN, status: 400, body: vendorError('INTERNAL') },
      'allowed values',
    ],
    [
      '403 on health with an alias code',
      { method: 'GET', pathTemplate: HEALTH, status: 403, body: vendorError('FORBIDDEN_PROFILE') },
      'allowed values',
    ],
    [
      '404 NOT_FOUND on a known route',
      { method: 'GET', pathTemplate: TOKEN, status: 404, body: vendorError('NOT_FOUND') },
      'allowed values',
    ],
    [
      '404 UNKNOWN_PROFILE for an unmatched path',
      { method: 'GET', path: '/v1/nope', status: 404, body: vendorError('UNKNOWN_PROFILE') },
      'allowed values',
    ],
    [
      '405 without Allow',
      { method: 'PUT', pathTemplate: HEALTH, status: 405, body: vendorError('METHOD_NOT_ALLOWED') },
      'Allow',
    ],
    [
      '413 with a stack trace',
      {
        method: 'POST',
        pathTemplate: INVALIDATE,
        status: 413,
        body: { error: { ...vendorError('PAYLOAD_TOO_LARGE').error, stack: 'at x' } },
      },
      'additional',
    ],
    [
      '429 without retryable',
      {
        method: 'GET',
        pathTemplate: TOKEN,
        status: 429,
        body: { error: { code: 'THROTTLED', message: 'slow down' } },
      },
      'retryable',
    ],
    [
      '500 as API Gateway answers it',
      {
        method: 'GET',
        pathTemplate: TOKEN,
        status: 500,
        body: { message: 'Internal server error' },
      },
      'error',
    ],
    [
      '502 without Retry-After',
      {
        method: 'GET',
        pathTemplate: TOKEN,
        status: 502,
        body: vendorError('CRM_AUTH_FAILED', { retryAfterSeconds: 60 }),
      },
      'Retry-After',
    ],
    [
      '502 marked retryable',
      {
        method: 'GET',
        pathTemplate: TOKEN,
        status: 502,
        headers: { 'retry-after': '60' },
        body: vendorError('CRM_AUTH_FAILED', { retryable: true, retryAfterSeconds: 60 }),
      },
      'const',
    ],
    [
      '503 without retryAfterSeconds',
      {
        method: 'GET',
        pathTemplate: TOKEN,
        status: 503,
        headers: { 'retry-after': '2' },
        body: vendorError('CRM_UNAVAILABLE', { retryable: true }),
      },
      'retryAfterSeconds',
    ],
    [
      '503 with an HTTP-date Retry-After',
      {
        method: 'GET',
        pathTemplate: TOKEN,
        status: 503,
        headers: { 'retry-after': 'Wed, 21 Oct 2026 07:28:00 GMT' },
        body: vendorError('CRM_UNAVAILABLE', { retryable: true, retryAfterSeconds: 2 }),
      },
      'Retry-After',
    ],
    [
      'an undocumented status',
      { method: 'GET', pathTemplate: TOKEN, status: 418, body: vendorError('INTERNAL') },
      'not documented',
    ],
    [
      'an undocumented path',
      { method: 'GET', pathTemplate: '/v2/tokens', status: 200, body: {} },
      'not in the document',
    ],
  ])('rejects %s', (_label, response, mentions) => {
    // Act
    const errors = errorsOf(response);

    // Assess
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.join('\n')).toContain(mentions);
  });

  it('assertValid throws with the problems listed', () => {
    // Act & Assess
    expect(() =>
      validator.assertValid({ method: 'GET', pathTemplate: HEALTH, status: 200, body: {} }),
    ).toThrow(/status/);
  });

  it('reads a fetch Headers object', () => {
    // Prepare
    const headers = new Headers({
      'Content-Type': 'application/json',
      'Cache-Control': 'no-store',
    });

    // Act & Assess
    expect(
      errorsOf({ method: 'GET', pathTemplate: TOKEN, status: 200, headers, body: vended('t1') }),
    ).toStrictEqual([]);
  });
});
