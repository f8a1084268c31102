import type { Settings } from './settings.js';
import type { CurrentToken, ProfileState, VendErrorCode } from './types.js';

/** What one request needs from the token it is handed. */
export interface Need {
  /** Minimum remaining validity before `expiresAt`, in ms. */
  readonly minValidityMs: number;
  /** The secret version a token must have been obtained with to be current. */
  readonly secretVersion: string;
}

/** What to do for a request, decided from the shared state alone (pure). */
export type Decision =
  | { readonly kind: 'serve'; readonly token: CurrentToken }
  | { readonly kind: 'login'; readonly fallback?: CurrentToken }
  | { readonly kind: 'wait'; readonly leaseId: string; readonly leaseUntil: number }
  | {
      readonly kind: 'fail';
      readonly code: VendErrorCode;
      readonly until: number;
    };

/** Whether `token` still has `minValidityMs` before its advertised expiry at `now`. */
export function canServe(token: CurrentToken | undefined, now: number, minValidityMs: number) {
  if (!token) return false;
  const remaining = token.expiresAt - now;
  return remaining > 0 && remaining >= minValidityMs;
}

/**
 * Refresh-ahead: remaining validity under REFRESH_AHEAD_SECONDS, and the token older than a
 * quarter of its advertised validity, which bounds logins when CRM.COM issues shorter tokens.
 */
export function isDueForRefresh(token: CurrentToken, now: number, settings: Settings): boolean {
  const remaining = token.expiresAt - now;
  const age = now - token.issuedAt;
  const validity = token.expiresAt - token.issuedAt;
  return remaining < settings.refreshAheadSeconds * 1000 && age > validity / 4;
}

function leaseActive(state: ProfileState | undefined, now: number): boolean {
  return state?.lease !== undefined && state.lease.until > now;
}

/** The backoff that forbids a login now, if any (invariants 5 and 6). */
export function loginBlockedBy(
  state: ProfileState | undefined,
  now: number,
  secretVersion: string,
): { code: VendErrorCode; until: number } | undefined {
  const auth = state?.authFailure;
  if (auth && auth.until > now && auth.version === secretVersion) {
    return { code: 'CRM_AUTH_FAILED', until: auth.until };
  }
  const unavailable = state?.unavailable;
  if (unavailable && unavailable.until > now) {
    return { code: 'CRM_UNAVAILABLE', until: unavailable.until };
  }
  return undefined;
}

/** Decides a vend: serve the current token, log in, wait for the lease holder, or fail. */
export function decideVend(
  state: ProfileState | undefined,
  now: number,
  need: Need,
  settings: Settings,
): Decision {
  const current = state?.current;
  const servable = canServe(current, now, need.minValidityMs) ? current : undefined;
  const stale =
    !servable ||
    servable.secretVersion !== need.secretVersion ||
    isDueForRefresh(servable, now, settings);
  if (servable && !stale) return { kind: 'serve', token: servable };
  // A refresh is wanted. While someone else logs in, or a backoff holds, the current token
  // still serves every request it can (stale-if-error, invariant 5).
  if (leaseActive(state, now)) {
    return servable
      ? { kind: 'serve', token: servable }
      : { kind: 'wait', leaseId: state!.lease!.id, leaseUntil: state!.lease!.until };
  }
  const blocked = loginBlockedBy(state, now, need.secretVersion);
  if (blocked) return servable ? { kind: 'serve', token: servable } : { kind: 'fail', ...blocked };
  return servable ? { kind: 'login', fallback: servable } : { kind: 'login' };
}

/**
 * Decides an invalidation (invariant 7): when `fingerprint` is the current token, a forced
 * login that the backoffs still bound; otherwise it answers like a vend.
 */
export function decideInvalidate(
  state: ProfileState | undefined,
  now: number,
  fingerprint: string,
  need: Need,
  settings: Settings,
): Decision & { readonly replaces?: CurrentToken } {
  const current = state?.current;
  if (!current || current.fingerprint !== fingerprint) {
    return decideVend(state, now, need, settings);
  }
  if (leaseActive(state, now)) {
    return { kind: 'wait', leaseId: state!.lease!.id, leaseUntil: state!.lease!.until };
  }
  const blocked = loginBlockedBy(state, now, need.secretVersion);
  if (blocked) return { kind: 'fail', ...blocked };
  return { kind: 'login', replaces: current };
}

/** Next unavailability backoff: UNAVAILABLE_BACKOFF_SECONDS doubling per failure, up to 30 s. */
export function unavailableBackoffMs(failures: number, settings: Settings): number {
  const base = settings.unavailableBackoffSeconds * 1000;
  const cap = Math.max(30_000, base);
  return Math.min(cap, base * 2 ** Math.max(0, Math.min(failures - 1, 20)));
}
