import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { computeExpiry, readJwtTimes } from '../../../functions/core/jwt.js';

const b64 = (value: unknown): string =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

function jwt(
  payload: unknown,
  header: unknown = { alg: 'HS256', typ: 'JWT' },
  sig = 'c2ln',
): string {
  return `${b64(header)}.${b64(payload)}.${sig}`;
}

const SENT_AT = Date.parse('2026-01-01T00:00:00Z');

describe('readJwtTimes', () => {
  it('reads numeric exp and iat', () => {
    // Prepare
    const token = jwt({ sub: 'u', iat: 1_700_000_000, exp: 1_700_007_200 });

    // Act
    const times = readJwtTimes(token);

    // Assess
    expect(times).toEqual({ iat: 1_700_000_000, exp: 1_700_007_200 });
  });

  it('reads claims given as numeric strings', () => {
    // Prepare
    const token = jwt({ iat: '1700000000', exp: ' 1700007200 ' });

    // Act
    const times = readJwtTimes(token);

    // Assess
    expect(times).toEqual({ iat: 1_700_000_000, exp: 1_700_007_200 });
  });

  it('keeps only the usable claim when the other is not numeric', () => {
    // Prepare
    const tokens = [
      jwt({ iat: 'yesterday', exp: 1_700_007_200 }),
      jwt({ iat: true, exp: '1700007200' }),
      jwt({ iat: null, exp: 1_700_007_200 }),
      jwt({ iat: '1e9', exp: 1_700_007_200 }),
    ];

    // Act
    const results = tokens.map(readJwtTimes);

    // Assess
    for (const times of results) expect(times).toEqual({ exp: 1_700_007_200 });
  });

  it('ignores claims that overflow to Infinity', () => {
    // Prepare
    const token = `${b64({ alg: 'none' })}.${b64('{"exp":1e400,"iat":5}')}.`;

    // Act
    const times = readJwtTimes(token);

    // Assess
    expect(times).toEqual({ iat: 5 });
  });

  it('accepts an unsigned JWT (empty signature)', () => {
    // Prepare
    const token = `${b64({ alg: 'none' })}.${b64({ exp: 10 })}.`;

    // Act
    const times = readJwtTimes(token);

    // Assess
    expect(times).toEqual({ exp: 10 });
  });

  it.each([
    ['an opaque CRM.COM token', '4AD9C84FA60F9FE407140E20F707726A'],
    ['an empty string', ''],
    ['two segments', `${b64({ alg: 'HS256' })}.${b64({ exp: 1 })}`],
    ['four segments', `${jwt({ exp: 1 })}.x`],
    ['a payload that is not JSON', `${b64({ alg: 'HS256' })}.${b64('not json')}.sig`],
    ['a payload that is a JSON array', jwt([1, 2])],
    ['a payload that is JSON null', jwt(null)],
    ['a header that is not JSON', `${b64('nope')}.${b64({ exp: 1 })}.sig`],
    ['characters outside base64url', `${b64({ alg: 'HS256' })}.${b64({ exp: 1 })}+/.sig`],
    ['a JWT without exp or iat', jwt({ sub: 'u' })],
  ])('returns undefined for %s', (_name, token) => {
    // Act
    const times = readJwtTimes(token);

    // Assess
    expect(times).toBeUndefined();
  });

  it('never throws and returns only finite numbers, whatever the input', () => {
    // Prepare
    const segment = fc.oneof(
      fc.string(),
      fc.stringMatching(/^[A-Za-z0-9_-]{0,40}$/),
      fc.jsonValue().map((value) => b64(JSON.stringify(value) ?? 'null')),
      fc
        .record({
          exp: fc.oneof(fc.double(), fc.string(), fc.integer(), fc.constant(null)),
          iat: fc.oneof(fc.double(), fc.string(), fc.integer(), fc.boolean()),
        })
        .map((value) => b64(value)),
    );
    const token = fc.oneof(
      fc.string(),
      fc.tuple(segment, segment, segment).map((parts) => parts.join('.')),
      fc.array(segment, { maxLength: 5 }).map((parts) => parts.join('.')),
    );

    // Act & Assess
    fc.assert(
      fc.property(token, (input) => {
        const times = readJwtTimes(input);
        if (times === undefined) return;
        expect(times.exp !== undefined || times.iat !== undefined).toBe(true);
        for (const value of [times.exp, times.iat]) {
          if (value !== undefined) expect(Number.isFinite(value)).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws for values that are not strings at all', () => {
    // Prepare
    const inputs: unknown[] = [undefined, null, 42, {}, [], Symbol('x')];

    // Act & Assess
    for (const input of inputs) expect(readJwtTimes(input as string)).toBeUndefined();
  });
});

describe('computeExpiry', () => {
  const base = { sentAt: SENT_AT, lifetimeSeconds: 3600, leadSeconds: 600 };

  it('uses the configured lifetime from the moment the request was sent', () => {
    // Act
    const expiry = computeExpiry(base);

    // Assess
    expect(expiry).toEqual({
      realExpiresAt: SENT_AT + 3_600_000,
      expiresAt: SENT_AT + 3_000_000,
    });
  });

  it('uses a shorter exp − iat, counted from the moment the request was sent', () => {
    // Prepare: CRM.COM's clock is a day ahead; only the span counts.
    const iat = SENT_AT / 1000 + 86_400;

    // Act
    const expiry = computeExpiry({ ...base, jwt: { iat, exp: iat + 1800 } });

    // Assess
    expect(expiry.realExpiresAt).toBe(SENT_AT + 1_800_000);
    expect(expiry.expiresAt).toBe(SENT_AT + 1_200_000);
  });

  it('keeps the configured lifetime when exp − iat is longer (R12+: 2 h)', () => {
    // Prepare
    const iat = SENT_AT / 1000 - 86_400;

    // Act
    const expiry = computeExpiry({ ...base, jwt: { iat, exp: iat + 7200 } });

    // Assess
    expect(expiry.realExpiresAt).toBe(SENT_AT + 3_600_000);
  });

  it('gives a zero lifetime when exp is not after iat', () => {
    // Act
    const equal = computeExpiry({ ...base, jwt: { iat: 100, exp: 100 } });
    const before = computeExpiry({ ...base, jwt: { iat: 100, exp: 50 } });

    // Assess
    expect(equal.realExpiresAt).toBe(SENT_AT);
    expect(before.realExpiresAt).toBe(SENT_AT);
    expect(before.expiresAt).toBe(SENT_AT - 600_000);
  });

  it('reads exp on the local clock when there is no iat', () => {
    // Prepare
    const exp = SENT_AT / 1000 + 900;

    // Act
    const shorter = computeExpiry({ ...base, jwt: { exp } });
    const longer = computeExpiry({ ...base, jwt: { exp: exp + 86_400 } });

    // Assess
    expect(shorter.realExpiresAt).toBe(SENT_AT + 900_000);
    expect(longer.realExpiresAt).toBe(SENT_AT + 3_600_000);
  });

  it('ignores an iat without exp', () => {
    // Act
    const expiry = computeExpiry({ ...base, jwt: { iat: 1 } });

    // Assess
    expect(expiry.realExpiresAt).toBe(SENT_AT + 3_600_000);
  });

  it('never stretches past the configured lifetime and always subtracts the lead', () => {
    // Prepare
    const claim = fc.option(fc.integer({ min: -4_000_000_000, max: 4_000_000_000 }), {
      nil: undefined,
    });
    const input = fc.record({
      sentAt: fc.integer({ min: 0, max: 4_000_000_000_000 }),
      lifetimeSeconds: fc.integer({ min: 1, max: 86_400 }),
      leadSeconds: fc.integer({ min: 0, max: 3600 }),
      exp: claim,
      iat: claim,
    });

    // Act & Assess
    fc.assert(
      fc.property(input, ({ exp, iat, ...rest }) => {
        const jwtTimes = {
          ...(exp === undefined ? {} : { exp }),
          ...(iat === undefined ? {} : { iat }),
        };
        const expiry = computeExpiry({ ...rest, jwt: jwtTimes });
        expect(expiry.realExpiresAt).toBeLessThanOrEqual(rest.sentAt + rest.lifetimeSeconds * 1000);
        if (exp !== undefined && iat !== undefined) {
          expect(expiry.realExpiresAt).toBeGreaterThanOrEqual(rest.sentAt);
        }
        expect(expiry.expiresAt).toBe(expiry.realExpiresAt - rest.leadSeconds * 1000);
      }),
    );
  });
});
