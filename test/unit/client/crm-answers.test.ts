import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CrmAnswerError, isTokenRejected } from '../../../functions/client/index.js';

const answer = (code: unknown, message: unknown = 'x') => ({ status: { code, message } });

describe('isTokenRejected', () => {
  it.each([
    ['INVALID_TOKEN', true],
    ['EXPIRED_TOKEN', true],
    ['TOKEN_EXPIRED', true],
    ['invalid_token', true],
    ['INVALID_SESSION', true],
    ['SESSION_EXPIRED', true],
    ['EXPIRED', true],
    ['NOT_AUTHENTICATED', true],
    ['AUTHENTICATION_FAILED', true],
    ['UNAUTHORIZED', true],
    ['UNAUTHORISED_ACCESS', true],
    ['OK', false],
    [' ok ', false],
    ['INVALID_PARAMETER', false],
    ['NOT_FOUND', false],
    ['GENERAL_ERROR', false],
    ['', false],
  ])('status.code %j → %s', (code, expected) => {
    // Act & Assess
    expect(isTokenRejected(answer(code))).toBe(expected);
  });

  it.each([
    ['a null message', answer('INVALID_TOKEN', null), true],
    ['the JSON text of a rejection', JSON.stringify(answer('INVALID_TOKEN')), true],
    ['a crmAnswer property', { crmAnswer: answer('EXPIRED_TOKEN') }, true],
    ['a body object', { statusCode: 200, body: answer('TOKEN_EXPIRED') }, true],
    [
      'a JSON body string',
      { statusCode: 401, body: JSON.stringify(answer('INVALID_TOKEN')) },
      true,
    ],
    ['a CrmAnswerError', new CrmAnswerError(answer('INVALID_TOKEN'), 401), true],
    ['an OK body', { body: answer('OK') }, false],
    ['a numeric status', { status: 401 }, false],
    ['a numeric status.code', answer(401), false],
    ['data with an unrelated code', { data: { code: 'INVALID_TOKEN' } }, false],
    ['a plain Error', new Error('INVALID_TOKEN'), false],
    ['a non-JSON string', 'INVALID_TOKEN', false],
    ['null', null, false],
    ['undefined', undefined, false],
    ['an array', [answer('INVALID_TOKEN')], false],
    [
      'a fetch Response',
      new Response(JSON.stringify(answer('INVALID_TOKEN')), { status: 401 }),
      false,
    ],
    [
      'nesting past three levels',
      { body: { body: { body: { body: answer('INVALID_TOKEN') } } } },
      false,
    ],
  ])('%s → %s', (_label, value, expected) => {
    // Act & Assess
    expect(isTokenRejected(value)).toBe(expected);
  });

  it('never throws, on hostile objects either', () => {
    // Prepare
    const throwing = Object.defineProperty({}, 'status', {
      get() {
        throw new Error('boom');
      },
    });
    const proxy = new Proxy(
      {},
      {
        get() {
          throw new Error('boom');
        },
        has() {
          throw new Error('boom');
        },
      },
    );
    const cyclic: Record<string, unknown> = {};
    cyclic.body = cyclic;

    // Act & Assess
    expect(isTokenRejected(throwing)).toBe(false);
    expect(isTokenRejected(proxy)).toBe(false);
    expect(isTokenRejected(cyclic)).toBe(false);
  });

  it('never throws on random junk', () => {
    // Act & Assess
    fc.assert(
      fc.property(fc.anything({ withObjectString: true, withNullPrototype: true }), (value) => {
        expect(typeof isTokenRejected(value)).toBe('boolean');
      }),
      { numRuns: 500 },
    );
  });

  it('never calls an OK answer a rejection, whatever else it holds', () => {
    // Act & Assess
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (rest) => {
        expect(isTokenRejected({ ...rest, status: { code: 'OK', message: 'token expired' } })).toBe(
          false,
        );
      }),
      { numRuns: 300 },
    );
  });

  it('recognises rejections in random JSON text and wrappers', () => {
    // Act & Assess
    fc.assert(
      fc.property(
        fc.constantFrom('INVALID_TOKEN', 'EXPIRED_TOKEN', 'TOKEN_EXPIRED', 'SESSION_EXPIRED'),
        fc.option(fc.string(), { nil: null }),
        fc.constantFrom('plain', 'text', 'crmAnswer', 'body'),
        (code, message, wrap) => {
          const base = answer(code, message);
          const value =
            wrap === 'plain'
              ? base
              : wrap === 'text'
                ? JSON.stringify(base)
                : wrap === 'crmAnswer'
                  ? { crmAnswer: base }
                  : { body: JSON.stringify(base) };
          expect(isTokenRejected(value)).toBe(true);
        },
      ),
    );
  });
});

describe('CrmAnswerError', () => {
  it('names the status code only', () => {
    // Act
    const error = new CrmAnswerError({
      status: { code: 'INVALID_TOKEN', message: 'token abc123' },
    });

    // Assess
    expect(error.message).toBe('CRM.COM answered INVALID_TOKEN');
  });
});
