/** Ports of the core: everything it needs from the outside world, and the shapes it stores. */

import type { MetricName } from './metric-names.js';

/** Wall-clock time in epoch milliseconds; injected so tests run on a fake clock. */
export interface Clock {
  now(): number;
  /** Resolves after `ms`; the fake clock resolves when time is advanced past it. */
  sleep(ms: number): Promise<void>;
}

/** A profile's CRM.COM credentials, the validated value of its secret (CONTRACT §2). */
export type Credentials =
  | {
      readonly kind: 'password';
      readonly username: string;
      readonly password: string;
      readonly organisation: string;
      readonly unit?: string;
      readonly baseUrl?: string;
    }
  | {
      readonly kind: 'webApiKey';
      readonly webApiKey: string;
      readonly unit?: string;
      readonly baseUrl?: string;
    };

export interface ProfileSecret {
  /** Secrets Manager `VersionId`, or a hash of the value in local mode. */
  readonly version: string;
  readonly credentials: Credentials;
}

export interface SecretSource {
  /** Whether the profile is configured at all (no secret read). */
  has(profile: string): boolean;
  /** The profile's current secret; `refresh` bypasses the cache and reads `AWSCURRENT`. */
  get(profile: string, options?: { refresh?: boolean }): Promise<ProfileSecret>;
  /** Forgets the cached value so the next `get` reads it again. */
  invalidate(profile: string): void;
}

/** Claims of a JWT token that bound its lifetime, in epoch seconds. */
export interface JwtTimes {
  readonly exp?: number;
  readonly iat?: number;
}

export interface LoginResult {
  readonly token: string;
  /** Present when the token is a JWT with usable `exp`/`iat` claims. */
  readonly jwt?: JwtTimes;
}

/** What a release call achieved, per invariant 4. */
export type ReleaseOutcome =
  | { readonly kind: 'released' }
  | { readonly kind: 'already-invalid'; readonly crmCode: string }
  | { readonly kind: 'unsupported'; readonly httpStatus: number }
  | { readonly kind: 'retry'; readonly reason: string };

export interface CrmClient {
  /** Logs in; throws CrmRejectedError or CrmUnavailableError. */
  login(baseUrl: string, credentials: Credentials): Promise<LoginResult>;
  /** Releases a token; never throws for CRM.COM's answers, only reports them. */
  release(baseUrl: string, token: string): Promise<ReleaseOutcome>;
}

/** The token a profile currently vends, as kept on its state item. */
export interface CurrentToken {
  readonly tokenId: string;
  readonly token: string;
  readonly fingerprint: string;
  /** When the login request was sent (epoch ms). */
  readonly issuedAt: number;
  /** Advertised expiry: real expiry − lead (epoch ms). */
  readonly expiresAt: number;
  /** When CRM.COM will stop accepting it (epoch ms). */
  readonly realExpiresAt: number;
  readonly secretVersion: string;
}

export type VendErrorCode = 'CRM_AUTH_FAILED' | 'CRM_UNAVAILABLE' | 'MISCONFIGURED' | 'INTERNAL';

/**
 * Everything one profile shares across instances, on one item so that every change is a
 * single conditional write (`gen` is the compare-and-swap version).
 */
export interface ProfileState {
  readonly profile: string;
  readonly gen: number;
  readonly current?: CurrentToken;
  /** Login lease: only its holder calls CRM.COM. */
  readonly lease?: { readonly id: string; readonly until: number; readonly owner: string };
  /** After a rejection: no login before `until` with the same secret version. */
  readonly authFailure?: { readonly until: number; readonly version: string };
  /** After CRM.COM was unavailable: exponential backoff state. */
  readonly unavailable?: { readonly until: number; readonly failures: number };
  /** Outcome of the latest login attempt, so waiters share the holder's error. */
  readonly lastAttempt?: {
    readonly id: string;
    readonly at: number;
    readonly error?: { readonly code: VendErrorCode; readonly retryAfterSeconds?: number };
  };
  /** Sessions possibly leaked by lease holders that died mid-login (counted, invariant 1). */
  readonly takeovers?: number;
}

export type TokenStatus =
  | 'live'
  | 'claimed'
  | 'released'
  | 'unsupported'
  | 'abandoned'
  | 'not-released';

/** One token the service obtained: the release job's unit of work. */
export interface TokenRecord {
  readonly tokenId: string;
  readonly rev: number;
  readonly profile: string;
  /** The token itself; removed once released (the fingerprint stays). */
  readonly token?: string;
  readonly fingerprint: string;
  readonly baseUrl: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly realExpiresAt: number;
  readonly secretVersion: string;
  readonly status: TokenStatus;
  /** Present while a release is pending: the sparse index key (epoch ms). */
  readonly dueAt?: number;
  /** Why it became due before its expiry. */
  readonly dueReason?: 'expiry' | 'invalidated' | 'revoked' | 'superseded' | 'shutdown';
  readonly claim?: { readonly id: string; readonly until: number };
  readonly attempts: number;
  readonly releasedAt?: number;
  readonly outcome?: string;
  /** DynamoDB TTL backstop, epoch seconds, after the real expiry. */
  readonly ttl: number;
}

/** A page request of records pending release (`TokenStore.queryPending`). */
export interface PendingQuery {
  readonly now: number;
  readonly dueBy?: number;
  readonly profile?: string;
  readonly limit?: number;
  readonly cursor?: string;
}

/** Whether a record is past its TTL: absent to every reader, even before DynamoDB deletes it. */
export function isPastTtl(record: { readonly ttl: number }, now: number): boolean {
  return record.ttl * 1000 <= now;
}

export interface DuePage {
  readonly records: readonly TokenRecord[];
  /** Items the store read to produce this page (for cost accounting). */
  readonly itemsRead: number;
  readonly cursor?: string;
}

/**
 * Storage calls only; every rule lives in the core. Conditional writes return false when the
 * condition failed and throw StoreError for anything else.
 */
export interface TokenStore {
  /** Strongly consistent read of a profile's state. */
  getState(profile: string): Promise<ProfileState | undefined>;
  /** Writes `state` if the stored one has `gen === expectedGen` (0: none stored yet). */
  putState(state: ProfileState, expectedGen: number): Promise<boolean>;
  /** Strongly consistent read of a token record; ignores records past their TTL. */
  getToken(tokenId: string, now: number): Promise<TokenRecord | undefined>;
  /** Writes `record` if the stored one has `rev === expectedRev` (0: none stored yet). */
  putToken(record: TokenRecord, expectedRev: number): Promise<boolean>;
  /**
   * Records pending release, oldest due first, through the sparse index. `dueBy` limits the
   * query to records due by then; records past their TTL are left out.
   */
  queryPending(options: PendingQuery): Promise<DuePage>;
}

/** Counters and timings the core reports; adapters turn them into logs and EMF metrics. */
export interface Telemetry {
  count(name: MetricName, value?: number, dimensions?: Record<string, string>): void;
  timing(name: MetricName, ms: number, dimensions?: Record<string, string>): void;
  log(
    level: 'debug' | 'info' | 'warn' | 'error',
    message: string,
    fields?: Record<string, unknown>,
  ): void;
}

export const silentTelemetry: Telemetry = {
  count() {},
  timing() {},
  log() {},
};
