import type { JwtTimes } from './types.js';

/** Longer "tokens" are not worth decoding: no CRM.COM token comes near this. */
const MAX_TOKEN_LENGTH = 16 * 1024;
const SEGMENT = /^[A-Za-z0-9_-]+={0,2}$/;
const SIGNATURE = /^[A-Za-z0-9_-]*={0,2}$/;
const NUMERIC_STRING = /^[+-]?\d{1,20}(\.\d{1,20})?$/;

/**
 * Reads the `exp`/`iat` claims of a JWT token, in epoch seconds. Undefined for an opaque token,
 * anything that does not decode to a JSON header and payload, or a JWT with neither claim
 * usable. Claims may be numbers or numeric strings (R12+ sends either). Never throws.
 */
export function readJwtTimes(token: string): JwtTimes | undefined {
  try {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return undefined;
    const parts = token.split('.');
    if (parts.length !== 3) return undefined;
    const [header, payload, signature] = parts as [string, string, string];
    if (!SEGMENT.test(header) || !SEGMENT.test(payload) || !SIGNATURE.test(signature)) {
      return undefined;
    }
    if (decodeObject(header) === undefined) return undefined;
    const claims = decodeObject(payload);
    if (claims === undefined) return undefined;
    const exp = numericClaim(claims.exp);
    const iat = numericClaim(claims.iat);
    if (exp === undefined && iat === undefined) return undefined;
    return {
      ...(exp === undefined ? {} : { exp }),
      ...(iat === undefined ? {} : { iat }),
    };
  } catch {
    return undefined;
  }
}

/** Inputs of {@link computeExpiry}: durations in seconds, instants in epoch ms. */
export interface ExpiryInput {
  /** When the login request was sent. */
  readonly sentAt: number;
  readonly lifetimeSeconds: number;
  readonly leadSeconds: number;
  readonly jwt?: JwtTimes;
}

/** A token's real expiry (CRM.COM stops accepting it) and advertised expiry, epoch ms. */
export interface Expiry {
  readonly realExpiresAt: number;
  readonly expiresAt: number;
}

/**
 * CONTRACT §3: the assumed lifetime counts from the moment the login request was sent; a JWT's
 * `exp − iat` wins when shorter (measured from `sentAt`, so a skewed CRM.COM clock cannot
 * stretch it); with `exp` but no `iat`, `exp` is read on the local clock.
 */
export function computeExpiry(input: ExpiryInput): Expiry {
  const { sentAt, lifetimeSeconds, leadSeconds, jwt } = input;
  let realExpiresAt = sentAt + lifetimeSeconds * 1000;
  if (jwt?.exp !== undefined) {
    if (jwt.iat !== undefined) {
      const span = Math.max(0, jwt.exp - jwt.iat);
      if (span < lifetimeSeconds) realExpiresAt = sentAt + span * 1000;
    } else {
      realExpiresAt = Math.min(realExpiresAt, jwt.exp * 1000);
    }
  }
  // Fractional claims would give fractional ms; rounding down never overstates validity.
  realExpiresAt = Math.floor(realExpiresAt);
  return { realExpiresAt, expiresAt: realExpiresAt - leadSeconds * 1000 };
}

function decodeObject(segment: string): Record<string, unknown> | undefined {
  const text = Buffer.from(segment, 'base64url').toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  return value as Record<string, unknown>;
}

function numericClaim(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  if (!NUMERIC_STRING.test(trimmed)) return undefined;
  const parsed = Number(trimmed);
  return Number.isFinite(parsed) ? parsed : undefined;
}
