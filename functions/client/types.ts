/** A token as the vendor hands it out (CONTRACT §4). */
export interface VendedToken {
  readonly token: string;
  readonly profile: string;
  /** ISO-8601 UTC, on the vendor's clock: informative only. */
  readonly issuedAt: string;
  /** ISO-8601 UTC, on the vendor's clock: informative only, never used for caching. */
  readonly expiresAt: string;
  /**
   * Whole seconds of validity left. From `getToken` this is counted on the client's own clock
   * since the vendor answered, so it stays right on a consumer with a skewed clock.
   */
  readonly expiresInSeconds: number;
}

export interface GetTokenOptions {
  /**
   * Least remaining validity, in whole seconds (0 up to the vendor's REFRESH_AHEAD_SECONDS).
   * Omitted: the vendor's MIN_VALIDITY_SECONDS applies to fetched tokens.
   */
  readonly minValiditySeconds?: number;
}

/** Milliseconds on a clock that never goes back; `performance.now()` by default. */
export interface MonotonicClock {
  now(): number;
}

/** The vendor's two operations; each resolves to a token or throws a TokenVendorError. */
export interface TokenTransport {
  getToken(minValiditySeconds: number | undefined): Promise<VendedToken>;
  invalidate(token: string): Promise<VendedToken>;
}

export interface TokenClient {
  readonly profile: string;
  /** A token with at least the requested validity, from memory when it can be. */
  getToken(options?: GetTokenOptions): Promise<VendedToken>;
  /** Tells the vendor `token` was rejected; resolves to (and caches) its replacement. */
  invalidate(token: string): Promise<VendedToken>;
  /**
   * Runs `fn` with a token; when its result or thrown error shows CRM.COM rejected the token
   * (see `isTokenRejected`), invalidates it and runs `fn` once more with the new token.
   */
  withToken<T>(
    fn: (token: string, vended: VendedToken) => T | Promise<T>,
    options?: GetTokenOptions,
  ): Promise<T>;
  /** Forgets the cached token (the vendor keeps it). */
  clear(): void;
}

/** Options both clients share. */
export interface TokenClientOptions {
  /**
   * Refresh a cached token when fewer than this many seconds are left (but not before a quarter
   * of its lifetime has passed, so a short-lived token does not cause a fetch per call).
   * @default 60
   */
  readonly refreshAheadSeconds?: number;
  /** @default performance.now() */
  readonly clock?: MonotonicClock;
}
