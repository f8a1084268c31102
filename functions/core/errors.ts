/** Error codes of the public API (CONTRACT §4), with the HTTP status each one answers. */
export const ERROR_STATUS = {
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
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/**
 * Base of every error the vendor answers with. `message` is safe to show a caller: it never
 * holds a secret, a token or CRM.COM's own text. Anything sensitive goes to `cause` (logged only).
 */
export class VendorError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly retryAfterSeconds: number | undefined;
  /** Allowed methods, for METHOD_NOT_ALLOWED. */
  readonly allow: readonly string[] | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: {
      retryable?: boolean;
      retryAfterSeconds?: number;
      allow?: readonly string[];
      cause?: unknown;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VendorError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.allow = options.allow;
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

/** A setting has a bad value or violates a constraint; the message names the variable. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** CRM.COM answered, and refused the credentials (or the token, for a release). */
export class CrmRejectedError extends Error {
  /** CRM.COM's `status.code`, for logs only. */
  readonly crmCode: string;
  readonly httpStatus: number;
  constructor(crmCode: string, httpStatus: number) {
    // CRM.COM's own message/description never goes in: it is logged by code only.
    super(`CRM.COM rejected the request (HTTP ${httpStatus}, ${crmCode})`);
    this.name = 'CrmRejectedError';
    this.crmCode = crmCode;
    this.httpStatus = httpStatus;
  }
}

/** Why CRM.COM could not give an answer. */
export type UnavailableReason =
  | 'timeout'
  | 'network'
  | 'throttled'
  | 'server-error'
  | 'bad-response';

/** CRM.COM timed out, reset, throttled, failed or answered something that is not its JSON. */
export class CrmUnavailableError extends Error {
  readonly reason: UnavailableReason;
  readonly httpStatus: number | undefined;
  constructor(reason: UnavailableReason, message: string, httpStatus?: number, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'CrmUnavailableError';
    this.reason = reason;
    this.httpStatus = httpStatus;
  }
}

/** A profile's secret is missing, unreadable or invalid. The message never echoes the value. */
export class SecretError extends Error {
  readonly retryable: boolean;
  constructor(message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SecretError';
    this.retryable = options.retryable ?? false;
  }
}

/** The token store failed (throttled, unreachable); never a lost condition, which is a result. */
export class StoreError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'StoreError';
  }
}

/** Maps any error to the one the API answers with; unknown errors become INTERNAL. */
export function toVendorError(error: unknown): VendorError {
  if (error instanceof VendorError) return error;
  if (error instanceof SecretError) {
    return new VendorError('MISCONFIGURED', 'The profile is misconfigured', {
      retryable: error.retryable,
      cause: error,
    });
  }
  if (error instanceof StoreError) {
    return new VendorError('INTERNAL', 'Internal error', { retryable: true, cause: error });
  }
  return new VendorError('INTERNAL', 'Internal error', { retryable: true, cause: error });
}

/** Whole seconds until `until`, at least 1, for `Retry-After`. */
export function secondsUntil(until: number, now: number): number {
  return Math.max(1, Math.ceil((until - now) / 1000));
}
