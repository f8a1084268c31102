import { CrmRejectedError, CrmUnavailableError, type UnavailableReason } from '../core/errors.js';
import { readJwtTimes } from '../core/jwt.js';
import type { Credentials, CrmClient, LoginResult, ReleaseOutcome } from '../core/types.js';

/** CRM.COM's answers are a few hundred bytes; anything far larger is not one of them. */
const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

export interface HttpCrmClientOptions {
  /** Timeout of one call, reading the answer included (`CRM_TIMEOUT_MS`). */
  readonly timeoutMs: number;
  /** @default the global (undici) fetch, which keeps connections alive between calls */
  readonly fetch?: typeof fetch;
  /** @default 65536 */
  readonly maxBodyBytes?: number;
}

/** What CRM.COM answered: the HTTP status and the body, parsed when it is JSON. */
interface Answer {
  readonly httpStatus: number;
  /** The parsed JSON body; undefined when the body is not JSON. */
  readonly body: unknown;
}

class BodyTooLargeError extends Error {}

/**
 * The CRM.COM Web API over HTTP. Error messages, causes and release reasons never hold the
 * password, key or token, nor CRM.COM's own `message`/`description`.
 */
export class HttpCrmClient implements CrmClient {
  private readonly timeoutMs: number;
  private readonly maxBodyBytes: number;
  private readonly fetchImpl: typeof fetch | undefined;

  constructor(options: HttpCrmClientOptions) {
    if (!Number.isFinite(options.timeoutMs) || options.timeoutMs <= 0) {
      throw new RangeError('timeoutMs must be a positive number');
    }
    this.timeoutMs = Math.ceil(options.timeoutMs);
    this.maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.fetchImpl = options.fetch;
  }

  async login(baseUrl: string, credentials: Credentials): Promise<LoginResult> {
    const root = stripTrailingSlash(baseUrl);
    const answer =
      credentials.kind === 'password'
        ? await this.post(`${root}/authentication/token`, {
            username: credentials.username,
            password: credentials.password,
            organisation: credentials.organisation,
            ...(credentials.unit ? { unit: credentials.unit } : {}),
          })
        : await this.post(
            `${root}/authentication/web_api_key/token`,
            credentials.unit ? { unit: credentials.unit } : {},
            { Authorization: basicAuth(credentials.webApiKey) },
          );
    return classifyLogin(answer);
  }

  async release(baseUrl: string, token: string): Promise<ReleaseOutcome> {
    try {
      const answer = await this.post(
        `${stripTrailingSlash(baseUrl)}/authentication/token/release`,
        {
          token,
        },
      );
      return classifyRelease(answer);
    } catch (error) {
      return {
        kind: 'retry',
        reason: error instanceof CrmUnavailableError ? error.reason : 'error',
      };
    }
  }

  /** One POST, bounded in time (answer included) and in the size of the answer. */
  private async post(
    url: string,
    body: Record<string, string>,
    extraHeaders: Record<string, string> = {},
  ): Promise<Answer> {
    const signal = AbortSignal.timeout(this.timeoutMs);
    const fetchImpl = this.fetchImpl ?? globalThis.fetch;
    let response: Response;
    try {
      response = await abortable(
        fetchImpl(url, {
          method: 'POST',
          headers: {
            'Content-Type': 'application/json',
            Accept: 'application/json',
            ...extraHeaders,
          },
          body: JSON.stringify(body),
          // A redirect is not CRM.COM's answer, and following one could carry the key elsewhere.
          redirect: 'manual',
          signal,
        }),
        signal,
      );
    } catch (error) {
      throw transportError(error, signal);
    }
    let text: string;
    try {
      text = await readCapped(response, this.maxBodyBytes, signal);
    } catch (error) {
      if (error instanceof BodyTooLargeError) {
        throw new CrmUnavailableError(
          'bad-response',
          'CRM.COM answered with an oversized body',
          response.status,
        );
      }
      throw transportError(error, signal);
    }
    // undici hands the connection back to its pool on a later tick; without this, a call made
    // right after this one would find it busy and open a second connection.
    await new Promise((resolve) => setImmediate(resolve));
    return { httpStatus: response.status, body: parseJson(text) };
  }
}

function classifyLogin({ httpStatus, body }: Answer): LoginResult {
  if (httpStatus === 429) {
    throw new CrmUnavailableError('throttled', 'CRM.COM throttled the login', httpStatus);
  }
  if (httpStatus >= 500) {
    throw new CrmUnavailableError('server-error', 'CRM.COM failed to answer the login', httpStatus);
  }
  const code = statusCode(body);
  if (code === undefined) {
    throw new CrmUnavailableError(
      'bad-response',
      'CRM.COM answered the login with something other than its JSON',
      httpStatus,
    );
  }
  if (code === 'OK' && isSuccess(httpStatus)) {
    const token = tokenOf(body);
    if (token === undefined) {
      throw new CrmUnavailableError(
        'bad-response',
        'CRM.COM answered the login without a token',
        httpStatus,
      );
    }
    const jwt = readJwtTimes(token);
    return jwt === undefined ? { token } : { token, jwt };
  }
  if (code !== 'OK' && (isSuccess(httpStatus) || isClientError(httpStatus))) {
    throw new CrmRejectedError(safeCode(code), httpStatus);
  }
  throw new CrmUnavailableError(
    'bad-response',
    'CRM.COM answered the login with an unexpected status',
    httpStatus,
  );
}

function classifyRelease({ httpStatus, body }: Answer): ReleaseOutcome {
  if (httpStatus === 404 || httpStatus === 405) return { kind: 'unsupported', httpStatus };
  if (httpStatus === 429) return { kind: 'retry', reason: 'throttled (HTTP 429)' };
  if (httpStatus >= 500) return { kind: 'retry', reason: `server-error (HTTP ${httpStatus})` };
  const code = statusCode(body);
  if (code === undefined) return { kind: 'retry', reason: `bad-response (HTTP ${httpStatus})` };
  if (code === 'OK' && isSuccess(httpStatus)) return { kind: 'released' };
  // CRM.COM refusing a release means the token is gone (invalid, expired, already released).
  if (code !== 'OK' && (isSuccess(httpStatus) || isClientError(httpStatus))) {
    return { kind: 'already-invalid', crmCode: safeCode(code) };
  }
  return { kind: 'retry', reason: `bad-response (HTTP ${httpStatus})` };
}

function isSuccess(httpStatus: number): boolean {
  return httpStatus >= 200 && httpStatus < 300;
}

function isClientError(httpStatus: number): boolean {
  return httpStatus >= 400 && httpStatus < 500 && httpStatus !== 429;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** `status.code` of a CRM.COM answer, or undefined when the body is not one. */
function statusCode(body: unknown): string | undefined {
  if (!isObject(body)) return undefined;
  const status = body.status;
  if (!isObject(status) || typeof status.code !== 'string') return undefined;
  return status.code;
}

function tokenOf(body: unknown): string | undefined {
  if (!isObject(body) || !isObject(body.data)) return undefined;
  const token = body.data.token;
  return typeof token === 'string' && token.trim() !== '' ? token : undefined;
}

/** CRM.COM's code goes into messages and logs: bound it and keep it to a code's alphabet. */
function safeCode(code: string): string {
  return code.slice(0, 64).replace(/[^A-Za-z0-9_.:-]/g, '_') || 'EMPTY';
}

function stripTrailingSlash(baseUrl: string): string {
  return baseUrl.replace(/\/+$/, '');
}

function basicAuth(webApiKey: string): string {
  return `Basic ${Buffer.from(`${webApiKey}:`, 'utf8').toString('base64')}`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch {
    return undefined;
  }
}

/** Rejects as soon as `signal` aborts, even if `work` ignores it (an injected fetch may). */
function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** Reads the whole body (so the connection can be reused), at most `maxBytes` of it. */
async function readCapped(
  response: Response,
  maxBytes: number,
  signal: AbortSignal,
): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel().catch(() => {});
    throw new BodyTooLargeError();
  }
  const stream = response.body;
  if (!stream) return '';
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await abortable(reader.read(), signal);
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) throw new BodyTooLargeError();
      chunks.push(value);
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    throw error;
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

/**
 * A timeout or a network failure. The cause keeps only the error's name and code: fetch errors
 * can reference the request, whose headers and body hold the secret.
 */
function transportError(error: unknown, signal: AbortSignal): CrmUnavailableError {
  const timedOut = signal.aborted;
  const reason: UnavailableReason = timedOut ? 'timeout' : 'network';
  const message = timedOut ? 'CRM.COM did not answer in time' : 'CRM.COM could not be reached';
  return new CrmUnavailableError(reason, message, undefined, safeCause(error));
}

function safeCause(error: unknown): Error {
  const name = error instanceof Error ? error.name : typeof error;
  const inner = error instanceof Error ? error.cause : undefined;
  const code = errorCode(inner) ?? errorCode(error);
  const cause = new Error(code ? `${name} (${code})` : name);
  if (code) Object.assign(cause, { code });
  return cause;
}

function errorCode(error: unknown): string | undefined {
  if (!isObject(error) && !(error instanceof Error)) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && /^[A-Z0-9_]{1,40}$/.test(code) ? code : undefined;
}
