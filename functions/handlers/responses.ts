import type { VendorError } from '../core/errors.js';
import type { VendResult } from '../core/vend-service.js';

/** The token body of CONTRACT §4 and §5. */
export interface TokenBody {
  readonly token: string;
  readonly profile: string;
  readonly issuedAt: string;
  readonly expiresAt: string;
  readonly expiresInSeconds: number;
}

export interface ErrorBody {
  readonly error: {
    readonly code: string;
    readonly message: string;
    readonly retryable: boolean;
    readonly retryAfterSeconds?: number;
  };
}

export interface RestResult {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/**
 * ISO-8601 of an epoch-ms instant. Every vend of a token formats the same two instants, so the
 * last few are kept (formatting a Date is a measurable part of a warm vend).
 */
const isoCache = new Map<number, string>();
const ISO_CACHE_SIZE = 8;

function iso(ms: number): string {
  let text = isoCache.get(ms);
  if (text === undefined) {
    text = new Date(ms).toISOString();
    if (isoCache.size >= ISO_CACHE_SIZE) isoCache.clear();
    isoCache.set(ms, text);
  }
  return text;
}

export function tokenBody(result: VendResult, now: number): TokenBody {
  return {
    token: result.token.token,
    profile: result.profile,
    issuedAt: iso(result.token.issuedAt),
    expiresAt: iso(result.token.expiresAt),
    // Rounded down, so a consumer never counts on a second that is not there (invariant 2).
    expiresInSeconds: Math.max(0, Math.floor((result.token.expiresAt - now) / 1000)),
  };
}

/** The one mapping from an error to the body callers see: code, safe message, retry hints. */
export function errorBody(error: VendorError): ErrorBody {
  return {
    error: {
      code: error.code,
      message: error.message,
      retryable: error.retryable,
      ...(error.retryAfterSeconds === undefined
        ? {}
        : { retryAfterSeconds: error.retryAfterSeconds }),
    },
  };
}

const BASE_HEADERS = {
  'Content-Type': 'application/json',
  'Cache-Control': 'no-store',
} as const;

export function restOk(body: unknown): RestResult {
  return { statusCode: 200, headers: { ...BASE_HEADERS }, body: JSON.stringify(body) };
}

export function restError(error: VendorError): RestResult {
  const headers: Record<string, string> = { ...BASE_HEADERS };
  if (error.retryAfterSeconds !== undefined)
    headers['Retry-After'] = String(error.retryAfterSeconds);
  if (error.allow) headers.Allow = error.allow.join(', ');
  return { statusCode: error.status, headers, body: JSON.stringify(errorBody(error)) };
}
