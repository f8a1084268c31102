import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { createCachedTokenClient } from './cache.js';
import {
  errorFromAnswer,
  parseRetryAfter,
  TokenVendorError,
  type TokenVendorErrorCode,
} from './errors.js';
import { checkProfileName } from './profile-name.js';
import type { TokenClient, TokenClientOptions, TokenTransport, VendedToken } from './types.js';
import { readVendorAnswer } from './vendor-answer.js';

/** Static credentials or a provider of them, as `SignatureV4` takes them. */
export type SigningCredentials = ConstructorParameters<typeof SignatureV4>[0]['credentials'];

export interface HttpTokenClientOptions extends TokenClientOptions {
  /**
   * The API's root, stage included: `https://{id}.execute-api.{region}.amazonaws.com/{stage}`,
   * or `http://127.0.0.1:3000` in local mode.
   */
  readonly baseUrl: string;
  readonly profile: string;
  /** Region the API is in, for the signature. */
  readonly region: string;
  /**
   * @default the Node.js default chain (`defaultProvider()` of `@aws-sdk/credential-provider-node`,
   * which `fromNodeProviderChain()` wraps): environment, SSO, ini files, web identity, ECS, IMDS
   */
  readonly credentials?: SigningCredentials;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
  /**
   * Time limit of one request; API Gateway itself gives up after 29 s.
   * @default 30000
   */
  readonly timeoutMs?: number;
}

/** A token client over the REST API (CONTRACT §4), each request signed with SigV4. */
export function createHttpTokenClient(options: HttpTokenClientOptions): TokenClient {
  return createCachedTokenClient(options.profile, createHttpTransport(options), options);
}

/** The REST transport alone, for callers that bring their own caching. */
export function createHttpTransport(options: HttpTokenClientOptions): TokenTransport {
  const profile = checkProfileName(options.profile);
  const base = parseBaseUrl(options.baseUrl);
  if (typeof options.region !== 'string' || options.region === '') {
    throw new TokenVendorError('INVALID_REQUEST', 'region is required to sign requests');
  }
  const signer = new SignatureV4({
    service: 'execute-api',
    region: options.region,
    credentials: options.credentials ?? defaultCredentials(),
    sha256: Sha256,
  });
  const fetchFn = options.fetch ?? globalThis.fetch;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const prefix = base.pathname.replace(/\/+$/, '');
  const tokenPath = `${prefix}/v1/tokens/${encodeURIComponent(profile)}`;

  const send = async (
    method: 'GET' | 'POST',
    path: string,
    query: Record<string, string>,
    body?: string,
  ): Promise<VendedToken> => {
    const headers: Record<string, string> = { host: base.host, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const signed = await signer.sign({
      method,
      protocol: base.protocol,
      hostname: base.hostname,
      port: base.port === '' ? undefined : Number(base.port),
      path,
      query,
      headers,
      body,
    });
    const url = new URL(path, base.origin);
    for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
    // fetch derives Host from the URL, as signed; it must not be set by hand.
    const { host: _host, ...sent } = signed.headers;

    let response: Response;
    let text: string;
    try {
      response = await fetchFn(url, {
        method,
        headers: sent,
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
      text = await response.text();
    } catch (error) {
      const timedOut = error instanceof Error && error.name === 'TimeoutError';
      throw new TokenVendorError(
        'INTERNAL',
        timedOut
          ? `The vendor did not answer within ${timeoutMs} ms`
          : 'Could not reach the vendor',
        { retryable: true, cause: error },
      );
    }
    const answer = parseJson(text);
    const retryAfterSeconds = parseRetryAfter(response.headers.get('retry-after'));
    const context = { status: response.status, retryAfterSeconds };
    if (response.ok) return readVendorAnswer(answer, context);
    throw errorFromAnswer(answer, context) ?? fromHttpStatus(response.status, retryAfterSeconds);
  };

  return {
    getToken: (minValiditySeconds) =>
      send(
        'GET',
        tokenPath,
        minValiditySeconds === undefined ? {} : { minValiditySeconds: String(minValiditySeconds) },
      ),
    invalidate: (token) => send('POST', `${tokenPath}/invalidate`, {}, JSON.stringify({ token })),
  };
}

/** The default chain, loaded on first use so a client given credentials never loads it. */
function defaultCredentials(): SigningCredentials {
  let provider: ReturnType<typeof import('@aws-sdk/credential-provider-node').defaultProvider>;
  return async () => {
    provider ??= (await import('@aws-sdk/credential-provider-node')).defaultProvider();
    return provider();
  };
}

function parseBaseUrl(baseUrl: string): URL {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new TokenVendorError('INVALID_REQUEST', 'baseUrl is not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TokenVendorError('INVALID_REQUEST', 'baseUrl must be http(s)');
  }
  if (url.search !== '' || url.hash !== '') {
    throw new TokenVendorError('INVALID_REQUEST', 'baseUrl must not have a query or fragment');
  }
  return url;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * An error answer not in the vendor's shape (API Gateway's own HTML or `{"message"}`, a proxy),
 * by status alone. Its text is not echoed: a signature mismatch answer quotes signed headers.
 */
export function fromHttpStatus(status: number, retryAfterSeconds?: number): TokenVendorError {
  const known: Record<number, TokenVendorErrorCode> = {
    400: 'INVALID_REQUEST',
    401: 'FORBIDDEN',
    403: 'FORBIDDEN',
    404: 'NOT_FOUND',
    405: 'METHOD_NOT_ALLOWED',
    413: 'PAYLOAD_TOO_LARGE',
    429: 'THROTTLED',
  };
  const code = known[status] ?? (status >= 400 && status < 500 ? 'INVALID_REQUEST' : 'INTERNAL');
  const retryable = code === 'THROTTLED' || code === 'INTERNAL';
  return new TokenVendorError(code, `The vendor API answered HTTP ${status}`, {
    retryable,
    retryAfterSeconds,
    status,
  });
}
