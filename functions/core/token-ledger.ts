import { shortFingerprint } from './fingerprint.js';
import type { Settings } from './settings.js';
import type {
  Clock,
  CrmClient,
  CurrentToken,
  Telemetry,
  TokenRecord,
  TokenStore,
} from './types.js';

/** How long a record outlives the token's real expiry before TTL deletes it (audit trail). */
export const RECORD_RETENTION_SECONDS = 86_400;

/** The record of a token just obtained: live, and due for release at its advertised expiry. */
export function newTokenRecord(
  profile: string,
  current: CurrentToken,
  baseUrl: string,
  settings: Settings,
  now: number,
): TokenRecord {
  return {
    tokenId: current.tokenId,
    rev: 1,
    profile,
    token: current.token,
    fingerprint: current.fingerprint,
    baseUrl,
    issuedAt: current.issuedAt,
    expiresAt: current.expiresAt,
    realExpiresAt: current.realExpiresAt,
    secretVersion: current.secretVersion,
    status: 'live',
    // With release disabled (CRM.COM R12+) records never enter the release index: they expire.
    ...(settings.releaseEnabled
      ? { dueAt: Math.max(now, current.expiresAt), dueReason: 'expiry' as const }
      : {}),
    attempts: 0,
    ttl: Math.ceil(current.realExpiresAt / 1000) + RECORD_RETENTION_SECONDS,
  };
}

/** Releases a token that could not be recorded (invariant 8); never throws. */
export async function releaseLeakedToken(
  crm: CrmClient,
  baseUrl: string,
  token: string,
  telemetry: Telemetry,
  fields: Record<string, unknown>,
): Promise<void> {
  const outcome = await crm.release(baseUrl, token).catch(() => ({ kind: 'retry' as const }));
  telemetry.count('LeakedTokenReleases');
  telemetry.log(
    outcome.kind === 'retry' ? 'error' : 'warn',
    'released a token that was not stored',
    {
      ...fields,
      outcome: outcome.kind,
    },
  );
}

/** Record transitions shared by the vend path and the release job (single-item CAS writes). */
export class TokenLedger {
  constructor(
    private readonly store: TokenStore,
    private readonly clock: Clock,
    private readonly telemetry: Telemetry,
  ) {}

  /**
   * Makes a live token due now (invalidated, revoked, superseded before anyone was handed it).
   * A token not in the release index (release disabled, already released) is left alone.
   */
  async markDue(tokenId: string, reason: NonNullable<TokenRecord['dueReason']>): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const now = this.clock.now();
      let record: TokenRecord | undefined;
      try {
        record = await this.store.getToken(tokenId, now);
      } catch {
        return false;
      }
      if (!record || record.dueAt === undefined || record.token === undefined) return false;
      // Already due, or being released by a run right now: nothing to change.
      if (record.dueAt <= now || record.status === 'claimed') return true;
      const next: TokenRecord = { ...record, rev: record.rev + 1, dueAt: now, dueReason: reason };
      try {
        if (await this.store.putToken(next, record.rev)) {
          this.telemetry.log('info', 'token due for release now', {
            profile: record.profile,
            tokenFp: shortFingerprint(record.fingerprint, true),
            reason,
          });
          return true;
        }
      } catch {
        return false;
      }
    }
    return false;
  }
}
