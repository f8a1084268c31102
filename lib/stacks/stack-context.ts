import { SETTING_VARIABLES, type SettingsInput } from '../../functions/core/settings.js';
import type { TokenVendorLogLevel } from '../constructs/token-vendor.js';

/**
 * Profiles used when the `profiles` context is absent, so that a fresh clone synthesizes. The ARN
 * is a documented fake: deploy with real `-c profiles=...` (docs/deploy.md).
 */
export const PLACEHOLDER_PROFILES: Readonly<Record<string, string>> = {
  default: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:crm-token-vendor/default-AbCdEf',
};

const SETTING_NAMES: readonly string[] = Object.values(SETTING_VARIABLES);
const LOG_LEVELS: readonly TokenVendorLogLevel[] = ['DEBUG', 'INFO', 'WARN', 'ERROR'];

/** Reads a context value given either as an object (cdk.json) or as JSON text (`-c key=...`). */
function objectContext(key: string, raw: unknown): Record<string, unknown> | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  let value = raw;
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw);
    } catch {
      throw new Error(`context ${key} must be a JSON object, got text that does not parse`);
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`context ${key} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** `profiles` context: profile name → complete secret ARN. */
export function profilesFromContext(raw: unknown): Record<string, string> {
  const value = objectContext('profiles', raw);
  if (value === undefined) return { ...PLACEHOLDER_PROFILES };
  const profiles: Record<string, string> = {};
  for (const [name, arn] of Object.entries(value)) {
    if (typeof arn !== 'string') {
      throw new Error(`context profiles.${name} must be a secret ARN string`);
    }
    profiles[name] = arn;
  }
  return profiles;
}

/**
 * Settings of CONTRACT §3 by their environment names: the `settings` context object, overridden
 * by individual context keys (`-c RELEASE_INTERVAL_SECONDS=120`). Unknown names fail, so that a
 * typo does not silently leave a default in place.
 */
export function settingsFromContext(
  settingsRaw: unknown,
  lookup: (name: string) => unknown,
): SettingsInput {
  const input: SettingsInput = {};
  const fromObject = objectContext('settings', settingsRaw) ?? {};
  for (const [name, value] of Object.entries(fromObject)) {
    if (!SETTING_NAMES.includes(name)) {
      throw new Error(
        `context settings.${name} is not a setting; known settings: ${SETTING_NAMES.join(', ')}`,
      );
    }
    input[name] = scalar(`settings.${name}`, value);
  }
  for (const name of SETTING_NAMES) {
    const value = lookup(name);
    if (value !== undefined) input[name] = scalar(name, value);
  }
  return input;
}

function scalar(key: string, value: unknown): string | number | boolean {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    return value;
  }
  throw new Error(`context ${key} must be a number, a boolean or a string`);
}

/** A boolean context flag (`-c flag=true` arrives as text). */
export function booleanFromContext(key: string, raw: unknown): boolean {
  if (raw === undefined || raw === null || raw === '') return false;
  if (raw === true || raw === 'true') return true;
  if (raw === false || raw === 'false') return false;
  throw new Error(`context ${key} must be true or false`);
}

/** An optional string context value. */
export function stringFromContext(key: string, raw: unknown): string | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  if (typeof raw !== 'string') throw new Error(`context ${key} must be a string`);
  return raw;
}

/** `logLevel` context (or `LOG_LEVEL`). */
export function logLevelFromContext(raw: unknown): TokenVendorLogLevel | undefined {
  const text = stringFromContext('logLevel', raw);
  if (text === undefined) return undefined;
  const level = text.toUpperCase() as TokenVendorLogLevel;
  if (!LOG_LEVELS.includes(level)) {
    throw new Error(`context logLevel must be one of ${LOG_LEVELS.join(', ')}`);
  }
  return level;
}
