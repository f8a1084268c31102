import { newId, shortFingerprint } from './fingerprint.js';
import { releaseClaimMillis, type Settings } from './settings.js';
import type {
  Clock,
  CrmClient,
  ReleaseOutcome,
  Telemetry,
  TokenRecord,
  TokenStore,
} from './types.js';
import { silentTelemetry } from './types.js';

/** Counts a release run answers with (CONTRACT §5). */
export interface ReleaseSummary {
  /** OK, or CRM.COM said the token was already invalid. */
  released: number;
  /** Retryable failures, and tokens abandoned past their real expiry. */
  failed: number;
  /** Release unsupported, release disabled, or claimed by another run. */
  skipped: number;
}

export interface ReleaseRunReport extends ReleaseSummary {
  /** Due tokens the run saw. */
  readonly due: number;
  /** Items the store read (cost: grows with due tokens, not with the table). */
  readonly itemsRead: number;
  /** True when the time budget ran out before every due token was handled. */
  readonly incomplete: boolean;
}

export interface ReleaseServiceDeps {
  readonly store: TokenStore;
  readonly crm: CrmClient;
  readonly clock: Clock;
  readonly settings: Settings;
  readonly telemetry?: Telemetry;
  /**
   * Told when a profile was revoked: local mode runs vend in the same process and drops its
   * memory cache at once (deployed instances serve it for at most MEMORY_CACHE_SECONDS).
   */
  readonly onRevoked?: (profile: string) => void;
}

type Verdict = 'released' | 'failed' | 'skipped';

type Reason = NonNullable<TokenRecord['dueReason']>;

const PAGE_SIZE = 100;

/** Writes of a release outcome before giving up (the claim then expires and a later run retries). */
const FINISH_ATTEMPTS = 3;
const FINISH_RETRY_MS = 100;

/**
 * The release job (invariants 3, 4, 8, 9): claims each due token with a conditional write,
 * releases it at most once, and records the outcome. Runs may overlap or crash safely.
 */
export class ReleaseService {
  private readonly store: TokenStore;
  private readonly crm: CrmClient;
  private readonly clock: Clock;
  private readonly settings: Settings;
  private readonly telemetry: Telemetry;
  private readonly onRevoked: ((profile: string) => void) | undefined;

  constructor(deps: ReleaseServiceDeps) {
    this.store = deps.store;
    this.crm = deps.crm;
    this.clock = deps.clock;
    this.settings = deps.settings;
    this.telemetry = deps.telemetry ?? silentTelemetry;
    this.onRevoked = deps.onRevoked;
  }

  /** One pass over the tokens due now; stops claiming new work before `deadline`. */
  async runOnce(options: { deadline?: number } = {}): Promise<ReleaseRunReport> {
    const report = await this.sweep({ dueBy: this.clock.now(), reason: undefined, ...options });
    this.telemetry.count('DueTokens', report.due);
    this.telemetry.count('ReleaseRunItemsRead', report.itemsRead);
    this.telemetry.log(report.due > 0 ? 'info' : 'debug', 'release run finished', { ...report });
    return report;
  }

  /**
   * Releases every live token of `profile` now and clears its current token, so that the next
   * vend logs in (a compromised or rotated account).
   */
  async revokeProfile(
    profile: string,
    options: { deadline?: number } = {},
  ): Promise<ReleaseRunReport & { clearedCurrent: boolean }> {
    // A token issued after this point was obtained after the current one was cleared: it is
    // (or is about to become) current, and releasing it would hand consumers a dead token.
    const startedAt = this.clock.now();
    const clearedCurrent = await this.clearCurrent(profile);
    this.onRevoked?.(profile);
    const report = await this.sweep({
      profile,
      reason: 'revoked',
      issuedBefore: startedAt,
      ...options,
    });
    this.telemetry.log('warn', 'profile revoked', { profile, clearedCurrent, ...report });
    return { ...report, clearedCurrent };
  }

  /**
   * Releases every live token in the store (local mode's shutdown with the embedded store). It
   * claims until just before `deadline`: at shutdown a release call started late still beats
   * leaving the token unreleased.
   */
  releaseAll(options: { deadline?: number } = {}): Promise<ReleaseRunReport> {
    return this.sweep({ reason: 'shutdown', claimMarginMs: 500, ...options });
  }

  /**
   * Drops the current token. The write also bumps `gen` while a login is in flight, so that login
   * loses its compare-and-swap and a token obtained before the revocation never becomes current;
   * its lease stays, so no second login overlaps it (invariant 1).
   */
  private async clearCurrent(profile: string): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const state = await this.store.getState(profile);
      if (!state?.current && !state?.lease) return false;
      const { current, ...rest } = state;
      if (await this.store.putState({ ...rest, gen: state.gen + 1 }, state.gen)) {
        return current !== undefined;
      }
    }
    return false;
  }

  private async sweep(options: {
    dueBy?: number;
    profile?: string;
    reason: Reason | undefined;
    deadline?: number;
    /** Only tokens issued before this (epoch ms). */
    issuedBefore?: number;
    /** How long before `deadline` claiming stops; default: one CRM.COM call plus 1 s. */
    claimMarginMs?: number;
  }): Promise<ReleaseRunReport> {
    const summary: ReleaseSummary = { released: 0, failed: 0, skipped: 0 };
    let due = 0;
    let itemsRead = 0;
    let incomplete = false;
    let cursor: string | undefined;
    // Stop claiming once a release call could no longer finish inside the budget.
    const lastStart =
      (options.deadline ?? Number.POSITIVE_INFINITY) -
      (options.claimMarginMs ?? this.settings.crmTimeoutMs + 1000);
    do {
      if (this.clock.now() >= lastStart) {
        incomplete = true;
        break;
      }
      const page = await this.store.queryPending({
        now: this.clock.now(),
        limit: PAGE_SIZE,
        ...(options.dueBy === undefined ? {} : { dueBy: options.dueBy }),
        ...(options.profile === undefined ? {} : { profile: options.profile }),
        ...(cursor === undefined ? {} : { cursor }),
      });
      itemsRead += page.itemsRead;
      const { issuedBefore } = options;
      const records =
        issuedBefore === undefined
          ? page.records
          : page.records.filter((record) => record.issuedAt < issuedBefore);
      due += records.length;
      const verdicts = await mapPooled(records, this.settings.releaseConcurrency, (record) =>
        this.clock.now() >= lastStart
          ? Promise.resolve<Verdict | 'deferred'>('deferred')
          : this.handle(record, options.reason),
      );
      for (const verdict of verdicts) {
        if (verdict === 'deferred') incomplete = true;
        else summary[verdict] += 1;
      }
      cursor = page.cursor;
    } while (cursor !== undefined);
    return { ...summary, due, itemsRead, incomplete };
  }

  /** Claims, releases and records one token. */
  private async handle(record: TokenRecord, reason: Reason | undefined): Promise<Verdict> {
    const now = this.clock.now();
    const fields = {
      profile: record.profile,
      tokenFp: shortFingerprint(record.fingerprint, true),
    };
    if (record.status === 'claimed' && record.claim && record.claim.until > now) {
      return 'skipped';
    }
    if (record.token === undefined) {
      await this.finish(record, { status: 'released', outcome: 'no-token-value' });
      return 'skipped';
    }
    if (!this.settings.releaseEnabled) {
      await this.finish(record, { status: 'not-released', outcome: 'release-disabled' });
      this.telemetry.count('ReleasesSkippedDisabled');
      return 'skipped';
    }
    if (record.realExpiresAt <= now) return this.abandon(record, fields);

    const claimId = newId();
    const claimed: TokenRecord = {
      ...record,
      rev: record.rev + 1,
      status: 'claimed',
      claim: { id: claimId, until: now + releaseClaimMillis(this.settings) },
      ...(reason ? { dueAt: Math.min(record.dueAt ?? now, now), dueReason: reason } : {}),
    };
    let won: boolean;
    try {
      won = await this.store.putToken(claimed, record.rev);
    } catch (error) {
      this.telemetry.log('warn', 'could not claim a token; leaving it for the next run', {
        ...fields,
        error: error instanceof Error ? error.name : 'unknown',
      });
      return 'failed';
    }
    if (!won) return 'skipped';

    const outcome: ReleaseOutcome = await this.crm
      .release(record.baseUrl, record.token)
      .catch(() => ({ kind: 'retry' as const, reason: 'release call failed' }));
    switch (outcome.kind) {
      case 'released':
      case 'already-invalid':
        await this.finish(claimed, { status: 'released', outcome: outcome.kind });
        this.telemetry.count(
          outcome.kind === 'released' ? 'ReleasesReleased' : 'ReleasesAlreadyInvalid',
        );
        this.telemetry.log('info', 'token released', { ...fields, outcome: outcome.kind });
        return 'released';
      case 'unsupported':
        await this.finish(claimed, {
          status: 'unsupported',
          outcome: `http-${outcome.httpStatus}`,
        });
        this.telemetry.count('ReleasesUnsupported');
        this.telemetry.log(
          'warn',
          'CRM.COM does not support token release; set RELEASE_ENABLED=false',
          {
            ...fields,
            httpStatus: outcome.httpStatus,
          },
        );
        return 'skipped';
      case 'retry': {
        this.telemetry.count('ReleasesRetry');
        this.telemetry.count('ReleaseFailures');
        if (record.realExpiresAt <= this.clock.now()) return this.abandon(claimed, fields);
        const { claim: _claim, ...rest } = claimed;
        const retry: TokenRecord = {
          ...rest,
          rev: claimed.rev + 1,
          status: 'live',
          attempts: claimed.attempts + 1,
          outcome: outcome.reason,
        };
        await this.store.putToken(retry, claimed.rev).catch(() => false);
        this.telemetry.log('warn', 'release failed; will retry on the next run', {
          ...fields,
          reason: outcome.reason,
          attempts: retry.attempts,
        });
        return 'failed';
      }
    }
  }

  private async abandon(record: TokenRecord, fields: Record<string, unknown>): Promise<Verdict> {
    await this.finish(record, { status: 'abandoned', outcome: 'expired-before-release' });
    this.telemetry.count('ReleasesAbandoned');
    this.telemetry.log('error', 'token expired before it could be released', {
      ...fields,
      attempts: record.attempts,
    });
    return 'failed';
  }

  /** Takes a record out of the release index for good; its token value goes, the fingerprint stays. */
  private async finish(
    record: TokenRecord,
    result: { status: TokenRecord['status']; outcome: string },
  ): Promise<void> {
    const { token: _token, dueAt: _dueAt, claim: _claim, ...rest } = record;
    const done: TokenRecord = {
      ...rest,
      rev: record.rev + 1,
      status: result.status,
      outcome: result.outcome,
      releasedAt: this.clock.now(),
    };
    const fields = { profile: record.profile, tokenFp: shortFingerprint(record.fingerprint, true) };
    // After a successful release call, a lost write would leave the token value stored and the
    // record claimed, so a later run would call CRM.COM for it again: retry transient failures.
    for (let attempt = 1; ; attempt++) {
      try {
        if (await this.store.putToken(done, record.rev)) return;
        // A failed attempt may have been written after all: then the record is already ours.
        const stored =
          attempt > 1 ? await this.store.getToken(record.tokenId, this.clock.now()) : undefined;
        if (stored?.rev === done.rev && stored.status === done.status) return;
        this.telemetry.log('warn', 'token record changed while it was being released', fields);
        return;
      } catch (error) {
        if (attempt >= FINISH_ATTEMPTS) {
          this.telemetry.count('ReleaseRecordFailures');
          this.telemetry.log('error', 'could not record a release outcome', {
            ...fields,
            outcome: result.outcome,
            error: error instanceof Error ? error.name : 'unknown',
          });
          return;
        }
        await this.clock.sleep(FINISH_RETRY_MS * attempt);
      }
    }
  }
}

/** Maps with at most `limit` calls in flight, keeping order. */
export async function mapPooled<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
