import { SecretError } from './errors.js';
import type { Credentials } from './types.js';

/** Profile names (CONTRACT §2): 1–64 characters of [A-Za-z0-9_-]. */
export const PROFILE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export function isProfileName(value: unknown): value is string {
  return typeof value === 'string' && PROFILE_NAME.test(value);
}

const MAX_FIELD_LENGTH = 4096;

function field(obj: Record<string, unknown>, name: string, mandatory: boolean): string | undefined {
  const value = obj[name];
  if (value === undefined || value === null) {
    if (mandatory) throw new SecretError(`The secret lacks the mandatory field "${name}"`);
    return undefined;
  }
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_FIELD_LENGTH) {
    throw new SecretError(`The secret's field "${name}" must be a non-empty string`);
  }
  return value;
}

/** Checks a REST root is an absolute http(s) URL; the message never shows the value. */
export function checkBaseUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new SecretError('The base URL is not a valid URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new SecretError('The base URL must use http or https');
  }
  if (url.username || url.password) {
    throw new SecretError('The base URL must not carry credentials');
  }
  return value.replace(/\/+$/, '');
}

/**
 * Validates a profile's secret value (CONTRACT §2). Throws SecretError, whose message names
 * the field at fault and never echoes any part of the value.
 */
export function parseCredentials(value: unknown): Credentials {
  let parsed: unknown = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new SecretError('The secret is not valid JSON');
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new SecretError('The secret must be a JSON object');
  }
  const obj = parsed as Record<string, unknown>;
  const hasPassword = obj.password !== undefined && obj.password !== null;
  const hasKey = obj.webApiKey !== undefined && obj.webApiKey !== null;
  if (hasPassword && hasKey) {
    throw new SecretError('The secret must have either "password" or "webApiKey", not both');
  }
  const unit = field(obj, 'unit', false);
  const rawBaseUrl = field(obj, 'baseUrl', false);
  const baseUrl = rawBaseUrl === undefined ? undefined : checkBaseUrl(rawBaseUrl);
  const common = {
    ...(unit === undefined ? {} : { unit }),
    ...(baseUrl === undefined ? {} : { baseUrl }),
  };
  if (hasKey) {
    return { kind: 'webApiKey', webApiKey: field(obj, 'webApiKey', true)!, ...common };
  }
  return {
    kind: 'password',
    username: field(obj, 'username', true)!,
    password: field(obj, 'password', true)!,
    organisation: field(obj, 'organisation', true)!,
    ...common,
  };
}
