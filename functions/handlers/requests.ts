import { isProfileName } from '../core/credentials.js';
import { VendorError } from '../core/errors.js';
import type { Settings } from '../core/settings.js';

/** A request the vend function serves, whichever entry point it came through. */
export type VendRequest =
  | { readonly action: 'health' }
  | { readonly action: 'getToken'; readonly profile: string; readonly minValiditySeconds?: number }
  | { readonly action: 'invalidate'; readonly profile: string; readonly token: string };

/** CONTRACT §4: bodies over 8 KiB are refused. */
export const MAX_BODY_BYTES = 8 * 1024;

/** The subset of an API Gateway REST proxy event the router reads. */
export interface RestEvent {
  readonly httpMethod: string;
  readonly path: string;
  readonly body?: string | null;
  readonly isBase64Encoded?: boolean;
  readonly queryStringParameters?: Record<string, string | undefined> | null;
  readonly multiValueQueryStringParameters?: Record<string, string[] | undefined> | null;
  /** The API Gateway resource that matched, e.g. `/v1/tokens/{profile}` or `/{proxy+}`. */
  readonly resource?: string;
  readonly pathParameters?: Record<string, string | undefined> | null;
}

type Route = 'health' | 'token' | 'invalidate';

const ROUTE_METHODS: Record<Route, readonly string[]> = {
  health: ['GET'],
  token: ['GET'],
  invalidate: ['POST'],
};

function invalid(message: string): VendorError {
  return new VendorError('INVALID_REQUEST', message);
}

/**
 * The path to route on. Behind a custom domain with a base path mapping, API Gateway puts the
 * base path into `event.path`; the matched resource with its path parameters does not carry
 * it, so the path is rebuilt from them (a single parameter re-encoded, as it is in a path).
 * Events without a resource (or with parameters that do not fill it) fall back to `path`.
 */
export function routePath(event: RestEvent): string {
  const path = typeof event.path === 'string' ? event.path : '';
  const { resource, pathParameters } = event;
  if (typeof resource !== 'string' || !resource.startsWith('/')) return path;
  let complete = true;
  const rebuilt = resource.replace(
    /\{([^{}/]+?)(\+?)\}/g,
    (_whole, name: string, greedy: string) => {
      const value =
        typeof pathParameters === 'object' &&
        pathParameters !== null &&
        Object.hasOwn(pathParameters, name)
          ? pathParameters[name]
          : undefined;
      if (typeof value !== 'string' || value === '') {
        complete = false;
        return '';
      }
      return greedy ? value : encodeURIComponent(value);
    },
  );
  return complete ? rebuilt : path;
}

/** Matches a path to a route; the profile segment stays raw (percent-encoded) here. */
function matchRoute(path: string): { route: Route; profile?: string } | undefined {
  const parts = path.split('/');
  if (parts[0] !== '' || parts[1] !== 'v1') return undefined;
  if (parts.length === 3 && parts[2] === 'health') return { route: 'health' };
  if (parts[2] !== 'tokens' || !parts[3]) return undefined;
  if (parts.length === 4) return { route: 'token', profile: parts[3] };
  if (parts.length === 5 && parts[4] === 'invalidate')
    return { route: 'invalidate', profile: parts[3] };
  return undefined;
}

function profileFromSegment(segment: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    throw invalid('The profile name is invalid');
  }
  if (!isProfileName(decoded)) {
    throw invalid('The profile name must be 1–64 characters of A-Z, a-z, 0-9, _ and -');
  }
  return decoded;
}

/** Parses `minValiditySeconds`: decimal digits only, from 0 to REFRESH_AHEAD_SECONDS. */
export function parseMinValidity(raw: unknown, settings: Settings): number | undefined {
  if (raw === undefined) return undefined;
  const text = typeof raw === 'number' && Number.isSafeInteger(raw) ? String(raw) : raw;
  // Any number of digits (leading zeros are fine); a huge value fails the range check below.
  if (typeof text !== 'string' || !/^[0-9]+$/.test(text)) {
    throw invalid('minValiditySeconds must be a whole number of seconds');
  }
  const value = Number(text);
  if (value > settings.refreshAheadSeconds) {
    throw invalid(`minValiditySeconds must be between 0 and ${settings.refreshAheadSeconds}`);
  }
  return value;
}

function decodeBody(event: RestEvent): Buffer {
  const body = typeof event.body === 'string' ? event.body : '';
  return event.isBase64Encoded === true ? Buffer.from(body, 'base64') : Buffer.from(body, 'utf8');
}

function queryValue(event: RestEvent, name: string): string | undefined {
  const multi = ownField(event.multiValueQueryStringParameters, name);
  if (Array.isArray(multi) && multi.length > 1) {
    throw invalid(`${name} must be given once`);
  }
  const single =
    ownField(event.queryStringParameters, name) ?? (Array.isArray(multi) ? multi[0] : undefined);
  if (single === undefined || single === null) return undefined;
  // A value of another type is no API Gateway event: refuse it rather than ignore it.
  if (typeof single !== 'string') throw invalid(`${name} must be a whole number of seconds`);
  return single;
}

/**
 * A field of a parsed payload, own properties only: an inherited `action` or `token` (a payload
 * built with `__proto__`) must not count as given.
 */
function ownField(obj: unknown, name: string): unknown {
  if (typeof obj !== 'object' || obj === null || !Object.hasOwn(obj, name)) return undefined;
  return (obj as Record<string, unknown>)[name];
}

function parseTokenBody(text: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalid('The body must be a JSON object');
  }
  return tokenField(parsed);
}

function tokenField(parsed: unknown): string {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw invalid('The body must be a JSON object');
  }
  const token = ownField(parsed, 'token');
  if (typeof token !== 'string' || token.length === 0) {
    throw invalid('token must be a non-empty string');
  }
  return token;
}

/**
 * Routes and validates an API Gateway REST event, in the check order of CONTRACT §4:
 * 404, 405, 413, then 400. Throws VendorError.
 */
export function parseRestEvent(event: RestEvent, settings: Settings): VendRequest {
  const match = matchRoute(routePath(event));
  if (!match) throw new VendorError('NOT_FOUND', 'No such route');
  const allowed = ROUTE_METHODS[match.route];
  if (!allowed.includes(event.httpMethod)) {
    throw new VendorError('METHOD_NOT_ALLOWED', 'Method not allowed on this route', {
      allow: allowed,
    });
  }
  const body = decodeBody(event);
  if (body.length > MAX_BODY_BYTES) {
    throw new VendorError('PAYLOAD_TOO_LARGE', `The body must not exceed ${MAX_BODY_BYTES} bytes`);
  }
  if (match.route === 'health') return { action: 'health' };
  const profile = profileFromSegment(match.profile ?? '');
  if (match.route === 'token') {
    const minValiditySeconds = parseMinValidity(queryValue(event, 'minValiditySeconds'), settings);
    return minValiditySeconds === undefined
      ? { action: 'getToken', profile }
      : { action: 'getToken', profile, minValiditySeconds };
  }
  return { action: 'invalidate', profile, token: parseTokenBody(body.toString('utf8')) };
}

/** Validates a direct-invoke payload (CONTRACT §5). Throws VendorError. */
export function parseInvokePayload(payload: unknown, settings: Settings): VendRequest {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    throw invalid('The payload must be a JSON object');
  }
  if (payloadBytes(payload) > MAX_BODY_BYTES) {
    throw new VendorError(
      'PAYLOAD_TOO_LARGE',
      `The payload must not exceed ${MAX_BODY_BYTES} bytes`,
    );
  }
  const action = ownField(payload, 'action');
  if (action !== 'getToken' && action !== 'invalidate') {
    throw invalid('action must be "getToken" or "invalidate"');
  }
  const profile = ownField(payload, 'profile');
  if (!isProfileName(profile)) {
    throw invalid('profile must be 1–64 characters of A-Z, a-z, 0-9, _ and -');
  }
  if (action === 'getToken') {
    const minValiditySeconds = parseMinValidity(ownField(payload, 'minValiditySeconds'), settings);
    return minValiditySeconds === undefined
      ? { action, profile }
      : { action, profile, minValiditySeconds };
  }
  return { action, profile, token: tokenField(payload) };
}

/**
 * The payload's size as JSON. A payload too deeply nested to serialise (a RangeError) is far
 * over the limit anyway: each level takes several bytes.
 */
function payloadBytes(payload: object): number {
  try {
    return Buffer.byteLength(JSON.stringify(payload) ?? '');
  } catch (error) {
    if (error instanceof RangeError) return Number.POSITIVE_INFINITY;
    throw invalid('The payload must be a JSON object');
  }
}

/** Whether an event is an API Gateway REST proxy event rather than a direct-invoke payload. */
export function isRestEvent(event: unknown): event is RestEvent {
  if (typeof event !== 'object' || event === null) return false;
  const e = event as Record<string, unknown>;
  return (
    typeof e.httpMethod === 'string' &&
    typeof e.path === 'string' &&
    typeof e.requestContext === 'object' &&
    e.requestContext !== null
  );
}

/** The profile an alias `profile-<name>` restricts the function to, from the invoked ARN. */
export function aliasProfile(invokedFunctionArn: string | undefined): string | undefined {
  if (!invokedFunctionArn) return undefined;
  const parts = invokedFunctionArn.split(':');
  // arn:aws:lambda:region:account:function:name[:qualifier]
  const qualifier = parts.length === 8 ? parts[7] : undefined;
  return qualifier?.startsWith('profile-') ? qualifier.slice('profile-'.length) : undefined;
}
