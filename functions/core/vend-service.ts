import {
  CrmRejectedError,
  CrmUnavailableError,
  secondsUntil,
  toVendorError,
  VendorError,
} from './errors.js';
import { fingerprint, newId, shortFingerprint } from './fingerprint.js';
import { computeExpiry } from './jwt.js';
import { METRIC, type MetricName } from './metric-names.js';
import { leaseMillis, type Settings } from './settings.js';
import { newTokenRecord, releaseLeakedToken, TokenLedger } from './token-ledger.js';
import {
  canServe,
  type Decision,
  decideInvalidate,
  decideVend,
  type Need,
  unavailableBackoffMs,
} from './token-policy.js';
import type {
  Clock,
  CrmClient,
  CurrentToken,
  ProfileSecret,
  ProfileState,
  SecretSource,
  Telemetry,
  TokenStore,
  VendErrorCode,
} from './types.js';
import { silentTelemetry } from './types.js';

/** Where a vended token came from, for metrics (memory / table / login). */
export type VendSource = 'memory' | 'table' | 'login';

export interface VendResult {
  readonly profile: string;
  readonly token: CurrentToken;
  readonly source: VendSource;
}

export interface VendServiceDeps {
  readonly store: TokenStore;
  readonly secrets: SecretSource;
  readonly crm: CrmClient;
  readonly clock: Clock;
  readonly settings: Settings;
  readonly telemetry?: Telemetry;
  /** REST root used when a profile's secret has no `baseUrl`. */
  readonly defaultBaseUrl?: string;
  /** Names this instance in leases, for operators reading the table. */
  readonly instanceId?: string;
  /** Jitter source in [0, 1). */
  readonly random?: () => number;
}

export interface VendOptions {
  readonly minValiditySeconds?: number;
  /** Epoch ms by which the request must be answered (the Lambda's remaining time). */
  readonly deadline?: number;
}

/** Result of one login flight, shared by every caller in this instance that joined it. */
type LoginOutcome =
  | { readonly kind: 'ok'; readonly state: ProfileState }
  | { readonly kind: 'ok-unstored'; readonly token: CurrentToken }
  | { readonly kind: 'lost' };

interface LoginFlight {
  readonly promise: Promise<LoginOutcome>;
  /** Token ids that callers asked to invalidate while the flight ran. */
  readonly invalidations: Set<string>;
}

const MAX_ROUNDS = 12;

/** Vends by cache layer (memory / table / login). */
const SOURCE_METRIC = {
  memory: METRIC.vendMemoryHit,
  table: METRIC.vendTableHit,
  login: METRIC.vendLogin,
} as const satisfies Record<VendSource, MetricName>;

/**
 * The vend use case (invariants 1, 2, 5–9): serve the current token, log in once across all
 * instances when a new one is needed, share the result with every waiter.
 */
export class VendService {
  private readonly store: TokenStore;
  private readonly secrets: SecretSource;
  private readonly crm: CrmClient;
  private readonly clock: Clock;
  private readonly settings: Settings;
  private readonly telemetry: Telemetry;
  private readonly ledger: TokenLedger;
  private readonly defaultBaseUrl: string | undefined;
  private readonly instanceId: string;
  private readonly random: () => number;
  private readonly leaseMs: number;

  private readonly memory = new Map<string, { state: ProfileState; readAt: number }>();
  private readonly reads = new Map<string, Promise<ProfileState | undefined>>();
  private readonly logins = new Map<string, LoginFlight>();
  private readonly waits = new Map<string, Promise<ProfileState | undefined>>();
  /** Per profile: when this instance last forced a secret refresh, and that refresh. */
  private readonly forcedSecretRefresh = new Map<
    string,
    { readonly at: number; readonly done: Promise<unknown> }
  >();

  constructor(deps: VendServiceDeps) {
    this.store = deps.store;
    this.secrets = deps.secrets;
    this.crm = deps.crm;
    this.clock = deps.clock;
    this.settings = deps.settings;
    this.telemetry = deps.telemetry ?? silentTelemetry;
    this.defaultBaseUrl = deps.defaultBaseUrl;
    this.instanceId = deps.instanceId ?? newId();
    this.random = deps.random ?? Math.random;
    this.leaseMs = leaseMillis(deps.settings);
    this.ledger = new TokenLedger(deps.store, deps.clock, this.telemetry);
  }

  /** Whether the profile is configured (no secret read). */
  hasProfile(profile: string): boolean {
    return this.secrets.has(profile);
  }

  /** Drops what this instance remembers of a profile's token (after a revocation). */
  forget(profile: string): void {
    this.memory.delete(profile);
  }

  /** Returns a token with at least the requested validity, logging in only when needed. */
  async getToken(profile: string, options: VendOptions = {}): Promise<VendResult> {
    this.assertKnown(profile);
    const minValidityMs = (options.minValiditySeconds ?? this.settings.minValiditySeconds) * 1000;
    const fromMemory = await this.fromMemory(profile, minValidityMs);
    if (fromMemory) return this.served(profile, fromMemory, 'memory');
    return this.resolve(profile, minValidityMs, undefined, options.deadline);
  }

  /**
   * Compare-and-swap invalidation (invariant 7): replaces `token` when it is current, otherwise
   * answers like a vend. Always reads the table.
   */
  async invalidate(profile: string, token: string, options: VendOptions = {}): Promise<VendResult> {
    this.assertKnown(profile);
    const minValidityMs = this.settings.minValiditySeconds * 1000;
    return this.resolve(profile, minValidityMs, fingerprint(token), options.deadline);
  }

  private assertKnown(profile: string): void {
    if (!this.secrets.has(profile)) {
      throw new VendorError('UNKNOWN_PROFILE', 'The profile is not configured');
    }
  }

  private async fromMemory(
    profile: string,
    minValidityMs: number,
  ): Promise<CurrentToken | undefined> {
    const cached = this.memory.get(profile);
    const now = this.clock.now();
    if (!cached || now - cached.readAt >= this.settings.memoryCacheSeconds * 1000) return undefined;
    const secret = await this.secretFor(profile, cached.state).catch(() => undefined);
    if (!secret) return undefined;
    const decision = decideVend(
      cached.state,
      now,
      { minValidityMs, secretVersion: secret.version },
      this.settings,
    );
    return decision.kind === 'serve' ? decision.token : undefined;
  }

  /** The decision loop shared by vend and invalidate. */
  private async resolve(
    profile: string,
    minValidityMs: number,
    invalidateFingerprint: string | undefined,
    deadline: number | undefined,
  ): Promise<VendResult> {
    const until = deadline ?? this.clock.now() + 2 * this.leaseMs + this.settings.crmTimeoutMs;
    let state = await this.readState(profile);
    let source: VendSource = 'table';
    let waitedOn: string | undefined;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const now = this.clock.now();
      if (now >= until) break;
      const secretOrError = await this.secretFor(profile, state).then(
        (s) => s,
        (error: unknown) => error,
      );
      const secret = isSecret(secretOrError) ? secretOrError : undefined;
      const need: Need = {
        minValidityMs,
        secretVersion: secret?.version ?? state?.current?.secretVersion ?? '',
      };
      const decision: Decision & { replaces?: CurrentToken } = invalidateFingerprint
        ? decideInvalidate(state, now, invalidateFingerprint, need, this.settings)
        : decideVend(state, now, need, this.settings);

      if (waitedOn && decision.kind !== 'serve') {
        // The lease we waited on ended in an error: share it rather than log in again.
        const shared = sharedError(state, waitedOn, now);
        if (shared) throw shared;
      }
      switch (decision.kind) {
        case 'serve':
          return this.served(profile, decision.token, source);
        case 'fail':
          throw backoffError(decision.code, decision.until, now);
        case 'wait': {
          waitedOn = decision.leaseId;
          state = await this.waitForLease(profile, decision.leaseId, decision.leaseUntil, until);
          continue;
        }
        case 'login': {
          if (!secret) {
            // The secret cannot be read: serve what still can be served, else MISCONFIGURED.
            if (decision.fallback) return this.served(profile, decision.fallback, source);
            throw toVendorError(secretOrError);
          }
          waitedOn = undefined;
          let outcome: LoginOutcome;
          try {
            outcome = await this.login(profile, state, secret, decision.replaces?.tokenId);
          } catch (error) {
            const fallback = decision.fallback;
            if (fallback && canServe(fallback, this.clock.now(), minValidityMs)) {
              this.telemetry.log('warn', 'refresh-ahead login failed; serving the current token', {
                profile,
                code: error instanceof VendorError ? error.code : 'INTERNAL',
              });
              return this.served(profile, fallback, source);
            }
            if (error instanceof VendorError && error.code === 'CRM_AUTH_FAILED') {
              // A rotation may have happened mid-flight: the next round sees AWSCURRENT.
              const fresh = await this.refreshSecret(profile).catch(() => undefined);
              if (fresh && fresh.version !== secret.version) {
                state = await this.readState(profile);
                continue;
              }
            }
            throw error;
          }
          // A flight this request joined may have begun before the token being invalidated
          // became current, and produced that very token: log in again for it (invariant 7).
          const joinedStale =
            invalidateFingerprint !== undefined &&
            (outcome.kind === 'ok-unstored'
              ? outcome.token.fingerprint
              : outcome.kind === 'ok'
                ? outcome.state.current?.fingerprint
                : undefined) === invalidateFingerprint;
          if (outcome.kind === 'lost' || joinedStale) {
            state = await this.readState(profile);
            continue;
          }
          if (outcome.kind === 'ok-unstored') {
            return this.tooShortOr(profile, outcome.token, minValidityMs, 'login');
          }
          state = outcome.state;
          source = 'login';
          if (state.current && !canServe(state.current, this.clock.now(), minValidityMs)) {
            return this.tooShortOr(profile, state.current, minValidityMs, 'login');
          }
          invalidateFingerprint = undefined;
          continue;
        }
      }
    }
    // Out of time or rounds (lost races, a slow table) while refreshing: the current token
    // still serves what it can (invariant 5), unless it is the one being invalidated.
    const current = state?.current;
    if (
      current &&
      current.fingerprint !== invalidateFingerprint &&
      canServe(current, this.clock.now(), minValidityMs)
    ) {
      return this.served(profile, current, source);
    }
    throw new VendorError('CRM_UNAVAILABLE', 'No token could be obtained in time', {
      retryable: true,
      retryAfterSeconds: 1,
    });
  }

  private tooShortOr(
    profile: string,
    token: CurrentToken,
    minValidityMs: number,
    source: VendSource,
  ): VendResult {
    if (canServe(token, this.clock.now(), minValidityMs))
      return this.served(profile, token, source);
    throw new VendorError(
      'MISCONFIGURED',
      'A fresh token is too short for the requested validity; check TOKEN_LIFETIME_SECONDS and RELEASE_LEAD_SECONDS against CRM.COM',
    );
  }

  private served(profile: string, token: CurrentToken, source: VendSource): VendResult {
    this.telemetry.count(SOURCE_METRIC[source]);
    return { profile, token, source };
  }

  /**
   * The profile's secret; refetched (AWSCURRENT) when the table shows a version this instance
   * has not got: the current token's, or the one a rejection was recorded with. Another
   * instance may have seen a newer secret, and deciding with an older cached one would log in
   * with a password already rejected or replaced (invariant 6, CONTRACT §2).
   */
  private async secretFor(profile: string, state?: ProfileState): Promise<ProfileSecret> {
    const secret = await this.secrets.get(profile);
    const now = this.clock.now();
    const current = state?.current;
    const auth = state?.authFailure;
    let seenAt = Number.NEGATIVE_INFINITY;
    if (current && current.secretVersion !== secret.version) seenAt = current.issuedAt;
    // A rejection on the table: with another version, ours may be outdated; with ours, the
    // secret may have been rotated since. Either way AWSCURRENT decides, once per rejection.
    if (auth && auth.until > now) {
      seenAt = Math.max(seenAt, auth.until - this.settings.authFailureBackoffSeconds * 1000);
    }
    if (seenAt === Number.NEGATIVE_INFINITY) return secret;
    const forced = this.forcedSecretRefresh.get(profile);
    if (forced && forced.at > seenAt) {
      // Refreshed since that version was recorded: wait for that refresh (concurrent callers
      // must not decide with the older cached value meanwhile), then use what it cached.
      await forced.done;
      return this.secrets.get(profile);
    }
    return this.refreshSecret(profile);
  }

  /** Reads AWSCURRENT now, remembering the refresh so that concurrent callers share it. */
  private refreshSecret(profile: string): Promise<ProfileSecret> {
    const refresh = this.secrets.get(profile, { refresh: true });
    this.forcedSecretRefresh.set(profile, {
      at: this.clock.now(),
      done: refresh.catch(() => undefined),
    });
    return refresh;
  }

  /** One strongly consistent read per profile in flight; concurrent callers share it. */
  private readState(profile: string): Promise<ProfileState | undefined> {
    const inFlight = this.reads.get(profile);
    if (inFlight) return inFlight;
    const read = this.store
      .getState(profile)
      .then((state) => {
        this.remember(profile, state);
        return state;
      })
      .finally(() => this.reads.delete(profile));
    this.reads.set(profile, read);
    return read;
  }

  private remember(profile: string, state: ProfileState | undefined): void {
    if (state?.current && this.settings.memoryCacheSeconds > 0) {
      this.memory.set(profile, { state, readAt: this.clock.now() });
    } else {
      this.memory.delete(profile);
    }
  }

  /** Polls the state with jitter until the lease changes hands or lapses (invariant 1). */
  private waitForLease(
    profile: string,
    leaseId: string,
    leaseUntil: number,
    deadline: number,
  ): Promise<ProfileState | undefined> {
    const key = `${profile}\u0000${leaseId}`;
    const inFlight = this.waits.get(key);
    if (inFlight) return inFlight;
    this.telemetry.count('LeaseWaits');
    const pollMs = Math.min(250, Math.max(20, this.leaseMs / 40));
    const wait = (async () => {
      for (;;) {
        const now = this.clock.now();
        const remaining = Math.min(leaseUntil, deadline) - now;
        await this.clock.sleep(Math.max(1, Math.min(remaining, pollMs * (0.5 + this.random()))));
        const state = await this.store.getState(profile);
        const lease = state?.lease;
        if (!lease || lease.id !== leaseId || lease.until <= this.clock.now()) {
          this.remember(profile, state);
          return state;
        }
        if (this.clock.now() >= deadline) return state;
      }
    })().finally(() => this.waits.delete(key));
    this.waits.set(key, wait);
    return wait;
  }

  /** Joins or starts this instance's login flight for the profile. */
  private login(
    profile: string,
    observed: ProfileState | undefined,
    secret: ProfileSecret,
    invalidateTokenId: string | undefined,
  ): Promise<LoginOutcome> {
    const existing = this.logins.get(profile);
    if (existing) {
      if (invalidateTokenId) existing.invalidations.add(invalidateTokenId);
      return existing.promise;
    }
    const invalidations = new Set<string>(invalidateTokenId ? [invalidateTokenId] : []);
    const promise = this.runLogin(profile, observed, secret, invalidations).finally(() =>
      this.logins.delete(profile),
    );
    this.logins.set(profile, { promise, invalidations });
    return promise;
  }

  private async runLogin(
    profile: string,
    observed: ProfileState | undefined,
    secret: ProfileSecret,
    invalidations: Set<string>,
  ): Promise<LoginOutcome> {
    const baseUrl = secret.credentials.baseUrl ?? this.defaultBaseUrl;
    if (!baseUrl) {
      throw new VendorError('MISCONFIGURED', 'The profile has no CRM.COM base URL');
    }
    const now = this.clock.now();
    const leaseId = newId();
    const takeover = observed?.lease !== undefined;
    const leased: ProfileState = {
      ...(observed ?? { profile }),
      profile,
      gen: (observed?.gen ?? 0) + 1,
      lease: { id: leaseId, until: now + this.leaseMs, owner: this.instanceId },
      ...(takeover ? { takeovers: (observed?.takeovers ?? 0) + 1 } : {}),
    };
    if (!(await this.store.putState(leased, observed?.gen ?? 0))) {
      // An SDK retry of a write that did land reports a lost condition: check it is not ours.
      if (!(await this.holds(profile, (s) => s.lease?.id === leaseId))) return { kind: 'lost' };
    }
    if (takeover) {
      this.telemetry.count('LeaseTakeovers');
      this.telemetry.log(
        'warn',
        'took over a lapsed login lease; its holder may have leaked one session',
        {
          profile,
          previousOwner: observed?.lease?.owner,
        },
      );
    }

    const sentAt = this.clock.now();
    let token: string;
    let jwt: { exp?: number; iat?: number } | undefined;
    try {
      const result = await this.crm.login(baseUrl, secret.credentials);
      token = result.token;
      jwt = result.jwt;
    } catch (error) {
      this.telemetry.timing('LoginLatency', this.clock.now() - sentAt);
      throw await this.loginFailed(profile, leased, leaseId, secret, error);
    }
    this.telemetry.timing('LoginLatency', this.clock.now() - sentAt);
    this.telemetry.count('Logins');

    const expiry = computeExpiry({
      sentAt,
      lifetimeSeconds: this.settings.tokenLifetimeSeconds,
      leadSeconds: this.settings.releaseLeadSeconds,
      jwt,
    });
    const current: CurrentToken = {
      tokenId: newId(),
      token,
      fingerprint: fingerprint(token),
      issuedAt: sentAt,
      expiresAt: expiry.expiresAt,
      realExpiresAt: expiry.realExpiresAt,
      secretVersion: secret.version,
    };
    const record = newTokenRecord(profile, current, baseUrl, this.settings, this.clock.now());
    const fp = shortFingerprint(current.fingerprint, true);
    let stored = false;
    try {
      stored = await this.store.putToken(record, 0);
    } catch (error) {
      this.telemetry.log('error', 'could not record a new token; releasing it', {
        profile,
        tokenFp: fp,
        error: describeError(error),
      });
    }
    if (!stored) {
      // Invariant 8: a token obtained and not stored is released at once.
      if (this.settings.releaseEnabled) {
        await releaseLeakedToken(this.crm, baseUrl, token, this.telemetry, {
          profile,
          tokenFp: fp,
        });
      }
      await this.clearLease(leased, leaseId);
      throw new VendorError('INTERNAL', 'The token store is unavailable', { retryable: true });
    }
    this.telemetry.log('info', 'logged in to CRM.COM', {
      profile,
      tokenFp: fp,
      expiresAt: new Date(current.expiresAt).toISOString(),
      secretVersion: secret.version,
    });

    if (current.expiresAt <= sentAt) {
      // CRM.COM's token is shorter than RELEASE_LEAD_SECONDS: it can never be vended. Release
      // it now and back off so that such tokens cannot cause a login storm.
      await this.ledger.markDue(current.tokenId, 'superseded');
      await this.recordFailure(leased, leaseId, 'MISCONFIGURED', (s, at) =>
        unavailableNext(s, at, this.settings),
      );
      throw new VendorError(
        'MISCONFIGURED',
        'CRM.COM issued a token shorter than RELEASE_LEAD_SECONDS; check the lifetime settings',
      );
    }

    const success: ProfileState = {
      profile,
      gen: leased.gen + 1,
      current,
      lastAttempt: { id: leaseId, at: this.clock.now() },
      ...(leased.takeovers ? { takeovers: leased.takeovers } : {}),
      // A rejection of another secret version stays: instances still caching that version
      // must not try it again before its backoff ends (invariant 6).
      ...(leased.authFailure &&
      leased.authFailure.version !== secret.version &&
      leased.authFailure.until > this.clock.now()
        ? { authFailure: leased.authFailure }
        : {}),
    };
    let saved: boolean;
    try {
      saved = await this.store.putState(success, leased.gen);
    } catch (error) {
      // A write that timed out may have landed: then it is current, and what it replaced
      // must be handled as after any success (an invalidated token becomes due, invariant 7).
      if (!(await this.holds(profile, (s) => s.current?.tokenId === current.tokenId))) {
        // Recorded but not current: it is released when due. Hand it to this instance's callers.
        this.telemetry.log('warn', 'could not make the new token current', {
          profile,
          tokenFp: fp,
          error: describeError(error),
        });
        return { kind: 'ok-unstored', token: current };
      }
      saved = true;
    }
    if (!saved) {
      const ours = await this.holds(profile, (s) => s.current?.tokenId === current.tokenId);
      if (ours === undefined) {
        // Unknown whether it became current: releasing it now could end the token everyone is
        // being handed (invariant 3). Recorded, it is released when due; our callers get it.
        this.telemetry.log('warn', 'could not tell whether the new token became current', {
          profile,
          tokenFp: fp,
        });
        return { kind: 'ok-unstored', token: current };
      }
      saved = ours;
    }
    if (!saved) {
      // Our lease lapsed and another instance took over: nobody was handed this token.
      await this.ledger.markDue(current.tokenId, 'superseded');
      return { kind: 'lost' };
    }
    this.remember(profile, success);
    const replaced = observed?.current;
    if (replaced && invalidations.has(replaced.tokenId)) {
      await this.ledger.markDue(replaced.tokenId, 'invalidated');
    }
    return { kind: 'ok', state: success };
  }

  /**
   * Re-reads the state after a lost condition and tells whether our own write is what is
   * there; undefined when the state cannot be read.
   */
  private async holds(
    profile: string,
    ours: (state: ProfileState) => boolean,
  ): Promise<boolean | undefined> {
    let state: ProfileState | undefined;
    try {
      state = await this.store.getState(profile);
    } catch {
      return undefined;
    }
    return state !== undefined && ours(state);
  }

  /** Records a failed login on the state (backoffs, shared error) and returns the error to throw. */
  private async loginFailed(
    profile: string,
    leased: ProfileState,
    leaseId: string,
    secret: ProfileSecret,
    error: unknown,
  ): Promise<VendorError> {
    if (error instanceof CrmRejectedError) {
      this.telemetry.count('LoginFailuresRejected');
      this.telemetry.log('warn', 'CRM.COM rejected the credentials', {
        profile,
        crmCode: error.crmCode,
        httpStatus: error.httpStatus,
        secretVersion: secret.version,
      });
      this.secrets.invalidate(profile);
      const until = await this.recordFailure(leased, leaseId, 'CRM_AUTH_FAILED', (s, at) => ({
        ...s,
        authFailure: {
          until: at + this.settings.authFailureBackoffSeconds * 1000,
          version: secret.version,
        },
      }));
      return backoffError('CRM_AUTH_FAILED', until, this.clock.now());
    }
    if (error instanceof CrmUnavailableError) {
      this.telemetry.count('LoginFailuresUnavailable');
      this.telemetry.log('warn', 'CRM.COM is unavailable', {
        profile,
        reason: error.reason,
        httpStatus: error.httpStatus,
      });
      const until = await this.recordFailure(leased, leaseId, 'CRM_UNAVAILABLE', (s, at) =>
        unavailableNext(s, at, this.settings),
      );
      return backoffError('CRM_UNAVAILABLE', until, this.clock.now());
    }
    this.telemetry.log('error', 'login failed unexpectedly', {
      profile,
      error: describeError(error),
    });
    await this.clearLease(leased, leaseId);
    return new VendorError('INTERNAL', 'Internal error', { retryable: true, cause: error });
  }

  /** Ends our lease with a failure marker; returns when the resulting backoff ends. */
  private async recordFailure(
    leased: ProfileState,
    leaseId: string,
    code: VendErrorCode,
    apply: (state: ProfileState, at: number) => ProfileState,
  ): Promise<number> {
    const at = this.clock.now();
    const { lease: _lease, ...rest } = apply(leased, at);
    const until = Math.max(rest.authFailure?.until ?? 0, rest.unavailable?.until ?? 0, at);
    const next: ProfileState = {
      ...rest,
      gen: leased.gen + 1,
      lastAttempt: {
        id: leaseId,
        at,
        error: { code, retryAfterSeconds: secondsUntil(until, at) },
      },
    };
    try {
      // The memory cache must not keep showing our lease: it would serve as if a login ran.
      if (await this.store.putState(next, leased.gen)) this.remember(leased.profile, next);
    } catch (error) {
      this.telemetry.log('warn', 'could not record the login failure; the lease will lapse', {
        profile: leased.profile,
        error: describeError(error),
      });
    }
    return until;
  }

  /** Ends our lease after an unexpected failure, so waiters share INTERNAL instead of waiting. */
  private async clearLease(leased: ProfileState, leaseId: string): Promise<void> {
    const { lease: _lease, ...rest } = leased;
    const at = this.clock.now();
    const next: ProfileState = {
      ...rest,
      gen: leased.gen + 1,
      lastAttempt: { id: leaseId, at, error: { code: 'INTERNAL' } },
    };
    if (await this.store.putState(next, leased.gen).catch(() => false)) {
      this.remember(leased.profile, next);
    }
  }
}

function unavailableNext(state: ProfileState, at: number, settings: Settings): ProfileState {
  const failures = (state.unavailable?.failures ?? 0) + 1;
  return {
    ...state,
    unavailable: { failures, until: at + unavailableBackoffMs(failures, settings) },
  };
}

function isSecret(value: unknown): value is ProfileSecret {
  return (
    typeof value === 'object' && value !== null && 'version' in value && 'credentials' in value
  );
}

const ERROR_MESSAGES: Record<VendErrorCode, string> = {
  CRM_AUTH_FAILED: 'CRM.COM rejected the credentials of this profile',
  CRM_UNAVAILABLE: 'CRM.COM is unavailable',
  MISCONFIGURED: 'The profile is misconfigured',
  INTERNAL: 'Internal error',
};

function backoffError(code: VendErrorCode, until: number, now: number): VendorError {
  const retryable = code !== 'CRM_AUTH_FAILED' && code !== 'MISCONFIGURED';
  const withRetryAfter = code === 'CRM_AUTH_FAILED' || code === 'CRM_UNAVAILABLE';
  return new VendorError(code, ERROR_MESSAGES[code], {
    retryable,
    ...(withRetryAfter ? { retryAfterSeconds: secondsUntil(until, now) } : {}),
  });
}

/** The error of the login attempt we waited on, if it failed (shared with waiters). */
function sharedError(
  state: ProfileState | undefined,
  leaseId: string,
  now: number,
): VendorError | undefined {
  const attempt = state?.lastAttempt;
  if (!attempt || attempt.id !== leaseId || !attempt.error) return undefined;
  const until = Math.max(
    state?.authFailure?.until ?? 0,
    state?.unavailable?.until ?? 0,
    attempt.at + (attempt.error.retryAfterSeconds ?? 1) * 1000,
  );
  return backoffError(attempt.error.code, until, now);
}

/** Error text for logs: names and messages of our own errors, never request data. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`.slice(0, 300);
  return 'non-error thrown';
}
