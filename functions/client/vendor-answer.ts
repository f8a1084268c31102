import { errorFromAnswer, isRecord, TokenVendorError } from './errors.js';
import type { VendedToken } from './types.js';

/** The vendor's success body, checked field by field; undefined when it is not that shape. */
export function parseVendedToken(body: unknown): VendedToken | undefined {
  if (!isRecord(body)) return undefined;
  const { token, profile, issuedAt, expiresAt, expiresInSeconds } = body;
  if (typeof token !== 'string' || token === '') return undefined;
  if (typeof profile !== 'string' || typeof issuedAt !== 'string') return undefined;
  if (typeof expiresAt !== 'string') return undefined;
  if (typeof expiresInSeconds !== 'number' || !Number.isInteger(expiresInSeconds)) return undefined;
  if (expiresInSeconds < 0) return undefined;
  return { token, profile, issuedAt, expiresAt, expiresInSeconds };
}

/**
 * Reads a vendor answer (a direct-invoke result or an HTTP body): the token, or the typed error
 * it describes. Anything else is an INTERNAL error that does not echo the body (it could hold a
 * token).
 */
export function readVendorAnswer(
  body: unknown,
  context: { status?: number; retryAfterSeconds?: number | undefined } = {},
): VendedToken {
  const error = errorFromAnswer(body, context);
  if (error) throw error;
  const vended = parseVendedToken(body);
  if (vended) return vended;
  throw new TokenVendorError('INTERNAL', 'The vendor answered in an unexpected shape', {
    retryable: true,
    status: context.status,
  });
}
