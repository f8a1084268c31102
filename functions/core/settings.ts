import { ConfigError } from './errors.js';

/** Token lifecycle and runtime settings (CONTRACT §3), all durations in the unit their name says. */
export interface Settings {
  readonly tokenLifetimeSeconds: number;
  readonly releaseLeadSeconds: number;
  readonly refreshAheadSeconds: number;
  readonly minValiditySeconds: number;
  readonly authFailureBackoffSeconds: number;
  readonly unavailableBackoffSeconds: number;
  readonly releaseIntervalSeconds: number;
  readonly releaseEnabled: boolean;
  readonly crmTimeoutMs: number;
  readonly memoryCacheSeconds: number;
  readonly secretCacheSeconds: number;
  readonly releaseConcurrency: number;
}

export type SettingsMode = 'local' | 'deployed';

/** Environment variable name of each setting; the names are part of the contract. */
export const SETTING_VARIABLES = {
  tokenLifetimeSeconds: 'TOKEN_LIFETIME_SECONDS',
  releaseLeadSeconds: 'RELEASE_LEAD_SECONDS',
  refreshAheadSeconds: 'REFRESH_AHEAD_SECONDS',
  minValiditySeconds: 'MIN_VALIDITY_SECONDS',
  authFailureBackoffSeconds: 'AUTH_FAILURE_BACKOFF_SECONDS',
  unavailableBackoffSeconds: 'UNAVAILABLE_BACKOFF_SECONDS',
  releaseIntervalSeconds: 'RELEASE_INTERVAL_SECONDS',
  releaseEnabled: 'RELEASE_ENABLED',
  crmTimeoutMs: 'CRM_TIMEOUT_MS',
  memoryCacheSeconds: 'MEMORY_CACHE_SECONDS',
  secretCacheSeconds: 'SECRET_CACHE_SECONDS',
  releaseConcurrency: 'RELEASE_CONCURRENCY',
} as const satisfies Record<keyof Settings, string>;

type IntegerSetting = Exclude<keyof Settings, 'releaseEnabled' | 'releaseIntervalSeconds'>;

interface IntegerRule {
  readonly fallback: number;
  readonly min: number;
  readonly max: number;
}

const DAY = 86_400;

const INTEGER_RULES: Record<IntegerSetting, IntegerRule> = {
  tokenLifetimeSeconds: { fallback: 3600, min: 1, max: DAY },
  releaseLeadSeconds: { fallback: 600, min: 0, max: DAY },
  refreshAheadSeconds: { fallback: 600, min: 0, max: DAY },
  minValiditySeconds: { fallback: 300, min: 0, max: DAY },
  authFailureBackoffSeconds: { fallback: 60, min: 0, max: DAY },
  unavailableBackoffSeconds: { fallback: 1, min: 0, max: 30 },
  crmTimeoutMs: { fallback: 5000, min: 100, max: 10_000 },
  memoryCacheSeconds: { fallback: 5, min: 0, max: 3600 },
  secretCacheSeconds: { fallback: 300, min: 0, max: DAY },
  releaseConcurrency: { fallback: 10, min: 1, max: 100 },
};

/** Settings given as already-typed values (the CDK construct's props) or as environment strings. */
export type SettingsInput = Partial<Record<string, string | number | boolean | undefined>>;

function parseInteger(name: string, raw: string | number, rule: IntegerRule): number {
  const text = typeof raw === 'number' ? String(raw) : raw.trim();
  if (!/^\d+$/.test(text)) {
    throw new ConfigError(`${name} must be a whole number of decimal digits, got ${describe(raw)}`);
  }
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < rule.min || value > rule.max) {
    throw new ConfigError(`${name} must be between ${rule.min} and ${rule.max}, got ${text}`);
  }
  return value;
}

function parseBoolean(name: string, raw: string | boolean): boolean {
  if (typeof raw === 'boolean') return raw;
  const text = raw.trim().toLowerCase();
  if (text === 'true' || text === '1') return true;
  if (text === 'false' || text === '0') return false;
  throw new ConfigError(`${name} must be true or false, got ${describe(raw)}`);
}

/** Shows a bad value without letting a long or multi-line value flood the message. */
function describe(raw: unknown): string {
  const text = JSON.stringify(String(raw));
  return text.length > 40 ? `${text.slice(0, 37)}…"` : text;
}

function lookup(input: SettingsInput, name: string): string | number | boolean | undefined {
  const raw = input[name];
  // An empty variable is treated as unset, as shells and container runtimes often pass them.
  return raw === '' ? undefined : raw;
}

/**
 * Parses and validates every setting of CONTRACT §3 from environment-style input.
 * Throws a {@link ConfigError} naming the variable on the first bad value or violated constraint.
 */
export function parseSettings(input: SettingsInput, mode: SettingsMode = 'deployed'): Settings {
  const values: Partial<Record<keyof Settings, number | boolean>> = {};
  for (const key of Object.keys(INTEGER_RULES) as IntegerSetting[]) {
    const name = SETTING_VARIABLES[key];
    const raw = lookup(input, name);
    const rule = INTEGER_RULES[key];
    values[key] =
      raw === undefined
        ? rule.fallback
        : parseInteger(name, typeof raw === 'boolean' ? String(raw) : raw, rule);
  }
  const intervalRaw = lookup(input, SETTING_VARIABLES.releaseIntervalSeconds);
  const intervalRule: IntegerRule = { fallback: mode === 'local' ? 60 : 300, min: 1, max: DAY };
  values.releaseIntervalSeconds =
    intervalRaw === undefined
      ? intervalRule.fallback
      : parseInteger(
          SETTING_VARIABLES.releaseIntervalSeconds,
          typeof intervalRaw === 'boolean' ? String(intervalRaw) : intervalRaw,
          intervalRule,
        );
  const enabledRaw = lookup(input, SETTING_VARIABLES.releaseEnabled);
  values.releaseEnabled =
    enabledRaw === undefined
      ? true
      : parseBoolean(
          SETTING_VARIABLES.releaseEnabled,
          typeof enabledRaw === 'number' ? String(enabledRaw) : enabledRaw,
        );

  const settings = Object.freeze(values as unknown as Settings);
  checkConstraints(settings, mode);
  return settings;
}

function checkConstraints(s: Settings, mode: SettingsMode): void {
  const v = SETTING_VARIABLES;
  if (s.minValiditySeconds > s.refreshAheadSeconds) {
    throw new ConfigError(
      `${v.minValiditySeconds} (${s.minValiditySeconds}) must not exceed ${v.refreshAheadSeconds} (${s.refreshAheadSeconds})`,
    );
  }
  const advertised = s.tokenLifetimeSeconds - s.releaseLeadSeconds;
  if (s.refreshAheadSeconds >= advertised) {
    throw new ConfigError(
      `${v.refreshAheadSeconds} (${s.refreshAheadSeconds}) must be less than ${v.tokenLifetimeSeconds} − ${v.releaseLeadSeconds} (${advertised})`,
    );
  }
  if (s.releaseEnabled && s.releaseIntervalSeconds >= s.releaseLeadSeconds) {
    throw new ConfigError(
      `${v.releaseIntervalSeconds} (${s.releaseIntervalSeconds}) must be less than ${v.releaseLeadSeconds} (${s.releaseLeadSeconds}) while ${v.releaseEnabled} is true`,
    );
  }
  if (mode === 'deployed' && s.releaseIntervalSeconds % 60 !== 0) {
    throw new ConfigError(
      `${v.releaseIntervalSeconds} (${s.releaseIntervalSeconds}) must be a multiple of 60 when deployed (EventBridge schedules run at minute granularity)`,
    );
  }
}

/** How long a login lease lasts: it must outlast one CRM.COM call plus the store writes after it. */
export function leaseMillis(s: Settings): number {
  return s.crmTimeoutMs + 3000;
}

/** How long a release run's claim on one token lasts before another run may retry it. */
export function releaseClaimMillis(s: Settings): number {
  return s.crmTimeoutMs + 5000;
}

/** API Gateway REST APIs give up on an integration after 29 s. */
export const API_GATEWAY_TIMEOUT_SECONDS = 29;

/**
 * Timeout of the vend function. The worst case of one request: it waits out the lease of a holder
 * that died mid-login, takes the lease over and logs in itself (one CRM.COM call plus the store
 * writes, which the lease covers), plus a little time to answer. Capped below API Gateway's limit.
 */
export function vendTimeoutSeconds(s: Settings): number {
  const lease = leaseMillis(s);
  const timeout = Math.min(
    Math.ceil((2 * lease + s.crmTimeoutMs) / 1000) + 2,
    API_GATEWAY_TIMEOUT_SECONDS - 1,
  );
  if (timeout * 1000 <= lease) {
    throw new ConfigError(
      `CRM_TIMEOUT_MS (${s.crmTimeoutMs}) makes the login lease ${lease} ms, which leaves no vend timeout above it and below API Gateway's ${API_GATEWAY_TIMEOUT_SECONDS} s`,
    );
  }
  return timeout;
}

/** The release function's timeout, which is also a run's time budget. */
export const RELEASE_TIMEOUT_SECONDS = 60;
