import { isTokenRejected } from './crm-answers.js';
import { isTokenVendorError, TokenVendorError } from './errors.js';
import type {
  GetTokenOptions,
  MonotonicClock,
  TokenClient,
  TokenClientOptions,
  TokenTransport,
  VendedToken,
} from './types.js';

export const DEFAULT_REFRESH_AHEAD_SECONDS = 60;

const performanceClock: MonotonicClock = { now: () => performance.now() };

/** A cached answer, timed on the client's own monotonic clock (never the vendor's `expiresAt`). */
interface Entry {
  readonly vended: VendedToken;
  /** Local ms at which the token's validity runs out: request sent + expiresInSeconds. */
  readonly expiresAt: number;
  /** Local ms from which a call fetches a fresh token instead of serving this one. */
  readonly refreshAt: number;
  /** Order in which the request was sent: an older answer never replaces a newer one. */
  readonly seq: number;
  /** The token this one replaced through `invalidate`. */
  readonly replaces: string | undefined;
}

interface Flight {
  readonly minValiditySeconds: number | undefined;
  readonly promise: Promise<Entry>;
}

/**
 * The logic both clients share, over a transport that only talks to the vendor: the cache with
 * refresh-ahead and stale-if-error, in-process single flight, and invalidate-and-retry-once.
 */
export function createCachedTokenClient(
  profile: string,
  transport: TokenTransport,
  options: TokenClientOptions = {},
): TokenClient {
  const refreshAheadSeconds = options.refreshAheadSeconds ?? DEFAULT_REFRESH_AHEAD_SECONDS;
  if (!Number.isFinite(refreshAheadSeconds) || refreshAheadSeconds < 0) {
    throw new TokenVendorError('INVALID_REQUEST', 'refreshAheadSeconds must be a number ≥ 0');
  }
  const refreshAheadMs = refreshAheadSeconds * 1000;
  const clock = options.clock ?? performanceClock;

  let current: Entry | undefined;
  let sequence = 0;
  /** After a failed refresh, a cached token that still serves is used without asking until then. */
  let staleUntil = Number.NEGATIVE_INFINITY;
  const flights = new Set<Flight>();
  const invalidations = new Map<string, Promise<Entry>>();

  const makeEntry = (vended: VendedToken, sentAt: number, seq: number, replaces?: string) => {
    const lifetime = vended.expiresInSeconds * 1000;
    return {
      vended,
      expiresAt: sentAt + lifetime,
      // Not before a quarter of the lifetime: a token vended already inside the refresh-ahead
      // window is still served for a while instead of causing a fetch per call.
      refreshAt: sentAt + Math.max(lifetime - refreshAheadMs, lifetime / 4),
      seq,
      replaces,
    };
  };

  const keep = (entry: Entry): Entry => {
    if (!current || entry.seq > current.seq) {
      current = entry;
      staleUntil = Number.NEGATIVE_INFINITY;
    }
    return entry;
  };

  const serves = (entry: Entry | undefined, now: number, min: number | undefined) =>
    entry !== undefined && entry.expiresAt - now > 0 && entry.expiresAt - now >= (min ?? 0) * 1000;

  const view = (entry: Entry, now: number): VendedToken => ({
    ...entry.vended,
    expiresInSeconds: Math.max(0, Math.floor((entry.expiresAt - now) / 1000)),
  });

  const fetchToken = (min: number | undefined): Promise<Entry> => {
    for (const flight of flights) {
      // A fetch asking for at least as much validity serves this call too.
      const joinable =
        min === undefined ||
        (flight.minValiditySeconds !== undefined && flight.minValiditySeconds >= min);
      if (joinable) return flight.promise;
    }
    const seq = ++sequence;
    const sentAt = clock.now();
    const promise = transport.getToken(min).then((vended) => keep(makeEntry(vended, sentAt, seq)));
    const flight: Flight = { minValiditySeconds: min, promise };
    flights.add(flight);
    const forget = () => flights.delete(flight);
    promise.then(forget, forget);
    return promise;
  };

  const getToken = async (request: GetTokenOptions = {}): Promise<VendedToken> => {
    const min = checkMinValidity(request.minValiditySeconds);
    const now = clock.now();
    const cached = current;
    if (cached && serves(cached, now, min) && (now < cached.refreshAt || now < staleUntil)) {
      return view(cached, now);
    }
    try {
      const entry = await fetchToken(min);
      return view(entry, clock.now());
    } catch (error) {
      const later = clock.now();
      const fallback = current;
      if (fallback && serves(fallback, later, min)) {
        const wait = isTokenVendorError(error) ? (error.retryAfterSeconds ?? 1) : 1;
        staleUntil = Math.max(staleUntil, later + Math.max(1, wait) * 1000);
        return view(fallback, later);
      }
      throw error;
    }
  };

  const invalidate = async (token: string): Promise<VendedToken> => {
    if (typeof token !== 'string' || token === '') {
      throw new TokenVendorError('INVALID_REQUEST', 'invalidate needs the rejected token');
    }
    const now = clock.now();
    if (current && current.replaces === token && serves(current, now, undefined)) {
      // Someone here already invalidated it: the vendor would answer with this very token.
      return view(current, now);
    }
    if (current && current.vended.token === token) {
      current = undefined;
      staleUntil = Number.NEGATIVE_INFINITY;
    }
    let pending = invalidations.get(token);
    if (!pending) {
      const seq = ++sequence;
      pending = transport
        .invalidate(token)
        .then((vended) => keep(makeEntry(vended, now, seq, token)));
      invalidations.set(token, pending);
      const forget = () => invalidations.delete(token);
      pending.then(forget, forget);
    }
    return view(await pending, clock.now());
  };

  const withToken = async <T>(
    fn: (token: string, vended: VendedToken) => T | Promise<T>,
    request?: GetTokenOptions,
  ): Promise<T> => {
    const first = await getToken(request);
    let outcome: { readonly value: T } | { readonly error: unknown };
    try {
      outcome = { value: await fn(first.token, first) };
    } catch (error) {
      outcome = { error };
    }
    if (!isTokenRejected('error' in outcome ? outcome.error : outcome.value)) {
      if ('error' in outcome) throw outcome.error;
      return outcome.value;
    }
    const next = await invalidate(first.token);
    // The second answer goes back as it is, rejected or not: one retry, never a storm.
    return fn(next.token, next);
  };

  return {
    profile,
    getToken,
    invalidate,
    withToken,
    clear() {
      current = undefined;
      staleUntil = Number.NEGATIVE_INFINITY;
    },
  };
}

function checkMinValidity(value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new TokenVendorError('INVALID_REQUEST', 'minValiditySeconds must be an integer ≥ 0');
  }
  return value;
}
