import { scryptSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isProfileName } from '../core/credentials.js';
import { ConfigError, SecretError } from '../core/errors.js';
import type { SecretFetcher } from '../core/secret-cache.js';
import type { Clock } from '../core/types.js';

type Env = Readonly<Record<string, string | undefined>>;

const VERSION_SALT = 'crm-token-vendor/local-profile-version';

/** Versions already derived in this process (scrypt costs tens of ms, once per value). */
const VERSIONS = new Map<string, string>();

/** The `default` profile from `CRM_*` variables (CONTRACT §6), or undefined when none is set. */
export function defaultProfileFromEnv(env: Env): Record<string, string> | undefined {
  const pick = (name: string) =>
    env[name] === undefined || env[name] === '' ? undefined : env[name];
  const fields = {
    username: pick('CRM_USERNAME'),
    password: pick('CRM_PASSWORD'),
    organisation: pick('CRM_ORGANISATION'),
    unit: pick('CRM_UNIT'),
    webApiKey: pick('CRM_WEB_API_KEY'),
  };
  if (!fields.username && !fields.password && !fields.organisation && !fields.webApiKey) {
    return undefined;
  }
  const value: Record<string, string> = {};
  for (const [key, v] of Object.entries(fields)) if (v !== undefined) value[key] = v;
  return value;
}

/** Reads and checks PROFILES_FILE: a JSON object of profile name → secret value (§2). */
export function readProfilesFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new ConfigError('PROFILES_FILE cannot be read');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError('PROFILES_FILE must hold a JSON object of profile name to secret value');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError('PROFILES_FILE must hold a JSON object of profile name to secret value');
  }
  const profiles: Record<string, unknown> = Object.create(null);
  for (const [name, value] of Object.entries(parsed)) {
    if (!isProfileName(name)) {
      throw new ConfigError('PROFILES_FILE has an invalid profile name (1–64 of A-Z a-z 0-9 _ -)');
    }
    profiles[name] = value;
  }
  return profiles;
}

/**
 * Local mode's secrets: `default` from `CRM_*` (or the simulator's demo user) and more from
 * PROFILES_FILE, re-read every SECRET_CACHE_SECONDS. A profile's version is a hash of its value.
 */
export class LocalProfileFetcher implements SecretFetcher {
  private profiles: Record<string, unknown>;
  private readAt: number;

  constructor(
    private readonly options: {
      readonly defaultProfile: Record<string, string> | undefined;
      readonly profilesFile: string | undefined;
      readonly clock: Clock;
      readonly ttlSeconds: number;
      readonly onReloadError?: (error: unknown) => void;
    },
  ) {
    // Fails fast at start on a missing or malformed file; later re-reads keep the last good copy.
    this.profiles = this.load();
    this.readAt = options.clock.now();
  }

  has(profile: string): boolean {
    return Object.hasOwn(this.current(), profile);
  }

  async fetch(profile: string): Promise<{ version: string; value: string }> {
    // The secret cache calls this only when its entry expired or must be refreshed (a rejected
    // login, a newer version on the table): read the file now, so that a rotation takes effect
    // at once after a rejection (CONTRACT §2) instead of after another SECRET_CACHE_SECONDS.
    const value = this.reload()[profile];
    if (value === undefined) throw new SecretError('The profile has no secret');
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    return { version: this.versionOf(text), value: text };
  }

  /**
   * The version of a value, the same in every local instance (they may share one table). The
   * value holds the password and the version is logged and stored, so it is a slow, salted hash
   * (scrypt) rather than a plain one that a weak password could be guessed back from.
   */
  private versionOf(text: string): string {
    let version = VERSIONS.get(text);
    if (version === undefined) {
      version = scryptSync(text, VERSION_SALT, 12, { N: 2 ** 14 }).toString('hex');
      if (VERSIONS.size > 1000) VERSIONS.clear();
      VERSIONS.set(text, version);
    }
    return version;
  }

  private current(): Record<string, unknown> {
    const now = this.options.clock.now();
    if (this.options.profilesFile && now - this.readAt >= this.options.ttlSeconds * 1000) {
      return this.reload();
    }
    return this.profiles;
  }

  /** Re-reads PROFILES_FILE; a file that cannot be read or parsed keeps the last good copy. */
  private reload(): Record<string, unknown> {
    if (!this.options.profilesFile) return this.profiles;
    this.readAt = this.options.clock.now();
    try {
      this.profiles = this.load();
    } catch (error) {
      this.options.onReloadError?.(error);
    }
    return this.profiles;
  }

  private load(): Record<string, unknown> {
    const fromFile = this.options.profilesFile ? readProfilesFile(this.options.profilesFile) : {};
    const profiles: Record<string, unknown> = Object.assign(Object.create(null), fromFile);
    if (this.options.defaultProfile) profiles.default = this.options.defaultProfile;
    return profiles;
  }
}
