import { isProfileName } from '../core/credentials.js';
import { ConfigError } from '../core/errors.js';
import { parseSettings, type Settings, type SettingsMode } from '../core/settings.js';

/** Everything a handler reads from its environment, parsed and validated once at cold start. */
export interface DeployedEnvironment {
  readonly settings: Settings;
  readonly tableName: string;
  readonly defaultBaseUrl: string | undefined;
  readonly profileSecrets: Readonly<Record<string, string>>;
  readonly dynamoDbEndpoint: string | undefined;
}

type Env = Readonly<Record<string, string | undefined>>;

// Replaced at bundling time by the CDK construct with the profile → secret ARN map, so that
// hundreds of profiles fit (Lambda's environment is limited to 4 KB).
declare const __PROFILE_SECRETS__: string | undefined;

function bundledProfileSecrets(): string | undefined {
  return typeof __PROFILE_SECRETS__ === 'string' ? __PROFILE_SECRETS__ : undefined;
}

/** Parses a JSON object of profile name → secret ARN; the message names the variable. */
export function parseProfileSecrets(raw: string | undefined, name: string): Record<string, string> {
  if (raw === undefined || raw.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError(`${name} must be a JSON object of profile name to secret ARN`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`${name} must be a JSON object of profile name to secret ARN`);
  }
  const map: Record<string, string> = {};
  for (const [profile, arn] of Object.entries(parsed)) {
    if (!isProfileName(profile)) {
      throw new ConfigError(`${name} has an invalid profile name (1–64 of A-Z a-z 0-9 _ -)`);
    }
    if (typeof arn !== 'string' || !arn.startsWith('arn:')) {
      throw new ConfigError(`${name} must map profile "${profile}" to a secret ARN`);
    }
    map[profile] = arn;
  }
  return map;
}

export function optionalUrl(env: Env, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name} must be an absolute http(s) URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`${name} must be an absolute http(s) URL`);
  }
  return raw.replace(/\/+$/, '');
}

/** Reads the settings of CONTRACT §3 (the one place that turns env into settings). */
export function readSettings(env: Env = process.env, mode: SettingsMode = 'deployed'): Settings {
  return parseSettings(env, mode);
}

/** The deployed vend/release functions' environment. */
export function readDeployedEnvironment(env: Env = process.env): DeployedEnvironment {
  const tableName = env.TABLE_NAME;
  if (!tableName) throw new ConfigError('TABLE_NAME must be set');
  return Object.freeze({
    settings: readSettings(env, 'deployed'),
    tableName,
    defaultBaseUrl: optionalUrl(env, 'CRM_BASE_URL'),
    profileSecrets: Object.freeze({
      ...parseProfileSecrets(bundledProfileSecrets(), 'the bundled profile map'),
      ...parseProfileSecrets(env.PROFILE_SECRETS, 'PROFILE_SECRETS'),
    }),
    dynamoDbEndpoint: optionalUrl(env, 'DYNAMODB_ENDPOINT'),
  });
}
