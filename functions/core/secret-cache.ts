import { parseCredentials } from './credentials.js';
import { SecretError } from './errors.js';
import type { Clock, ProfileSecret, SecretSource } from './types.js';

/** Where raw secret values come from: Secrets Manager deployed, env and file locally. */
export interface SecretFetcher {
  has(profile: string): boolean;
  /** The current value (AWSCURRENT) and its version; throws SecretError. */
  fetch(profile: string): Promise<{ version: string; value: string }>;
}

interface Entry {
  readonly at: number;
  readonly result: ProfileSecret | SecretError;
}

/** How long a failed read is remembered, so a missing secret cannot cause a read per request. */
const FAILURE_CACHE_MS = 5000;

/**
 * Caches validated secrets for SECRET_CACHE_SECONDS, de-duplicates concurrent reads, and
 * rereads at once on `refresh` or after `invalidate` (a rejected login, CONTRACT §2).
 */
export class CachedSecretSource implements SecretSource {
  private readonly entries = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Promise<ProfileSecret>>();

  constructor(
    private readonly fetcher: SecretFetcher,
    private readonly clock: Clock,
    private readonly ttlSeconds: number,
  ) {}

  has(profile: string): boolean {
    return this.fetcher.has(profile);
  }

  invalidate(profile: string): void {
    this.entries.delete(profile);
  }

  async get(profile: string, options: { refresh?: boolean } = {}): Promise<ProfileSecret> {
    const entry = this.entries.get(profile);
    if (entry && !options.refresh) {
      const age = this.clock.now() - entry.at;
      const ttl =
        entry.result instanceof SecretError
          ? Math.min(FAILURE_CACHE_MS, this.ttlSeconds * 1000)
          : this.ttlSeconds * 1000;
      if (age < ttl) {
        if (entry.result instanceof SecretError) throw entry.result;
        return entry.result;
      }
    }
    const pending = this.inFlight.get(profile);
    if (pending) return pending;
    const read = this.read(profile).finally(() => this.inFlight.delete(profile));
    this.inFlight.set(profile, read);
    return read;
  }

  private async read(profile: string): Promise<ProfileSecret> {
    let result: ProfileSecret | SecretError;
    try {
      const raw = await this.fetcher.fetch(profile);
      result = { version: raw.version, credentials: parseCredentials(raw.value) };
    } catch (error) {
      result =
        error instanceof SecretError
          ? error
          : new SecretError('The secret could not be read', { retryable: true, cause: error });
    }
    this.entries.set(profile, { at: this.clock.now(), result });
    if (result instanceof SecretError) throw result;
    return result;
  }
}
