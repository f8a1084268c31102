import { fingerprint } from '../../functions/core/fingerprint.js';
import type { Settings } from '../../functions/core/settings.js';
import { newTokenRecord } from '../../functions/core/token-ledger.js';
import type {
  Clock,
  CurrentToken,
  ReleaseOutcome,
  TokenRecord,
  TokenStore,
} from '../../functions/core/types.js';
import { FakeCrm } from './fakes.js';

export const TEST_BASE_URL = 'http://crm.test/crmapi/rest/v2';

/**
 * A token record exactly as the vend path writes it: obtained at `issuedAt`, advertised until
 * `issuedAt + lifetime − lead`, due for release then. `token` defaults to `TOKEN-<tokenId>`.
 */
export function obtainedRecord(options: {
  readonly tokenId: string;
  readonly issuedAt: number;
  readonly settings: Settings;
  readonly profile?: string;
  readonly token?: string;
  readonly baseUrl?: string;
}): TokenRecord {
  const { tokenId, issuedAt, settings } = options;
  const token = options.token ?? `TOKEN-${tokenId}`;
  const realExpiresAt = issuedAt + settings.tokenLifetimeSeconds * 1000;
  const current: CurrentToken = {
    tokenId,
    token,
    fingerprint: fingerprint(token),
    issuedAt,
    expiresAt: realExpiresAt - settings.releaseLeadSeconds * 1000,
    realExpiresAt,
    secretVersion: 'v1',
  };
  return newTokenRecord(
    options.profile ?? 'default',
    current,
    options.baseUrl ?? TEST_BASE_URL,
    settings,
    issuedAt,
  );
}

/** `issuedAt` such that the token's advertised expiry (its release due time) is `dueAt`. */
export function issuedForDueAt(dueAt: number, settings: Settings): number {
  return dueAt - (settings.tokenLifetimeSeconds - settings.releaseLeadSeconds) * 1000;
}

/** What the fake answers one release call with; `hang` never answers (a crashed run). */
export type ReleaseBehaviour = ReleaseOutcome | { readonly kind: 'hang' };

/**
 * A CRM.COM double for the release job, on the fake clock: logins as FakeCrm, and every release
 * call counted per token, with its time, the outcome chosen per token, and the calls in flight.
 */
export class ReleaseCrm extends FakeCrm {
  /** Release calls per token, whatever they answered. */
  readonly callsByToken = new Map<string, number>();
  /** Calls answered `released` per token (a successful release). */
  readonly successesByToken = new Map<string, number>();
  /** Clock time of every release call's start. */
  readonly callTimes: { readonly token: string; readonly at: number }[] = [];
  releaseLatencyMs = 50;
  inFlight = 0;
  maxInFlight = 0;
  /** Outcome per token; `releaseOutcome` applies to the others. */
  readonly outcomes = new Map<string, ReleaseBehaviour[] | ReleaseBehaviour>();

  constructor(
    private readonly releaseClock: Clock,
    timeoutMs = 1000,
  ) {
    super(releaseClock, timeoutMs);
  }

  get releaseCalls(): number {
    return this.callTimes.length;
  }

  override async release(_baseUrl: string, token: string): Promise<ReleaseOutcome> {
    this.callsByToken.set(token, (this.callsByToken.get(token) ?? 0) + 1);
    this.callTimes.push({ token, at: this.releaseClock.now() });
    const planned = this.outcomes.get(token);
    const behaviour: ReleaseBehaviour =
      (Array.isArray(planned) ? planned.shift() : planned) ?? this.releaseOutcome;
    if (behaviour.kind === 'hang') return new Promise<ReleaseOutcome>(() => {});
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await this.releaseClock.sleep(this.releaseLatencyMs);
    } finally {
      this.inFlight -= 1;
    }
    if (behaviour.kind === 'released') {
      this.successesByToken.set(token, (this.successesByToken.get(token) ?? 0) + 1);
    }
    return behaviour;
  }
}

/** Writes new records fast: parallel conditional creates. */
export async function seed(store: TokenStore, records: readonly TokenRecord[]): Promise<void> {
  const results = await Promise.all(records.map((r) => store.putToken(r, 0)));
  if (results.some((ok) => !ok)) throw new Error('seeding found an existing record');
}

/** Every record still pending release, all pages, due or not. */
export async function pendingIds(store: TokenStore, now: number): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.queryPending(cursor === undefined ? { now } : { now, cursor });
    ids.push(...page.records.map((r) => r.tokenId));
    cursor = page.cursor;
  } while (cursor !== undefined);
  return ids;
}
