/**
 * Error codes the vendor answers with (CONTRACT §4), and the HTTP status of each. Kept here
 * rather than imported from the service so the client ships without the service's code; a unit
 * test keeps the two tables in step.
 */
export const VENDOR_ERROR_STATUS = {
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  PAYLOAD_TOO_LARGE: 413,
  INVALID_REQUEST: 400,
  FORBIDDEN_PROFILE: 403,
  UNKNOWN_PROFILE: 404,
  CRM_AUTH_FAILED: 502,
  CRM_UNAVAILABLE: 503,
  MISCONFIGURED: 500,
  INTERNAL: 500,
  FORBIDDEN: 403,
  THROTTLED: 429,
} as const;

export type TokenVendorErrorCode = keyof typeof VENDOR_ERROR_STATUS;

export function isTokenVendorErrorCode(value: unknown): value is TokenVendorErrorCode {
  return typeof value === 'string' && Object.hasOwn(VENDOR_ERROR_STATUS, value);
}

export interface TokenVendorErrorOptions {
  readonly retryable?: boolean;
  readonly retryAfterSeconds?: number | undefined;
  /** HTTP status of the answer; defaults to the status the code maps to. */
  readonly status?: number | undefined;
  readonly cause?: unknown;
}

/**
 * The vendor could not give a token: it answered an error, failed, or could not be reached.
 * The message never holds a token.
 */
export class TokenVendorError extends Error {
  readonly code: TokenVendorErrorCode;
  readonly retryable: boolean;
  /** Whole seconds to wait before trying again, when the vendor said so. */
  readonly retryAfterSeconds: number | undefined;
  /** HTTP status: the real one over HTTP, the one the code maps to (§4) for a direct invoke. */
  readonly status: number;

  constructor(code: TokenVendorErrorCode, message: string, options: TokenVendorErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TokenVendorError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.status = options.status ?? VENDOR_ERROR_STATUS[code];
  }

  /** Whether this error has one of `codes`. */
  is(...codes: readonly TokenVendorErrorCode[]): boolean {
    return codes.includes(this.code);
  }
}

/** Whether `error` is a TokenVendorError, optionally with one of `codes`. */
export function isTokenVendorError(
  error: unknown,
  ...codes: readonly TokenVendorErrorCode[]
): error is TokenVendorError {
  return error instanceof TokenVendorError && (codes.length === 0 || codes.includes(error.code));
}

/** Parses a `Retry-After` value in whole seconds (the vendor never sends an HTTP date). */
export function parseRetryAfter(value: string | null | undefined): number | undefined {
  if (value === null || value === undefined) return undefined;
  const trimmed = value.trim();
  if (!/^\d{1,9}$/.test(trimmed)) return undefined;
  return Number(trimmed);
}

/**
 * Turns the vendor's `{"error":{...}}` answer into a TokenVendorError; undefined when `body` is
 * not that shape. An unknown code (a newer vendor) becomes INTERNAL.
 */
export function errorFromAnswer(
  body: unknown,
  fallback: { status?: number; retryAfterSeconds?: number | undefined } = {},
): TokenVendorError | undefined {
  if (!isRecord(body) || !isRecord(body.error)) return undefined;
  const { code, message, retryable, retryAfterSeconds } = body.error;
  if (typeof code !== 'string') return undefined;
  const known = isTokenVendorErrorCode(code);
  const text = typeof message === 'string' && message !== '' ? message : 'The vendor failed';
  return new TokenVendorError(known ? code : 'INTERNAL', known ? text : `${code}: ${text}`, {
    retryable: typeof retryable === 'boolean' ? retryable : false,
    retryAfterSeconds:
      typeof retryAfterSeconds === 'number' && Number.isFinite(retryAfterSeconds)
        ? retryAfterSeconds
        : fallback.retryAfterSeconds,
    status: fallback.status,
  });
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
