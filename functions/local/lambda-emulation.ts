import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Context } from 'aws-lambda';
import { isProfileName } from '../core/credentials.js';

/** A Lambda handler as the local server runs it. */
export type LocalHandler = (event: unknown, context: Context) => Promise<unknown>;

export interface LocalFunction {
  readonly name: 'vend' | 'release';
  readonly handler: LocalHandler;
  readonly timeoutMs: number;
}

const REGION = 'us-east-1';
const ACCOUNT = '000000000000';

export function functionArn(name: string, qualifier?: string): string {
  return `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}${qualifier ? `:${qualifier}` : ''}`;
}

/** The context's legacy callbacks: shared, so that a request does not create three closures. */
const ignoreCallback = (): void => {};

/** A Lambda context as the runtime gives it, with the remaining time counting down. */
export function lambdaContext(fn: LocalFunction, qualifier?: string): Context {
  const deadline = Date.now() + fn.timeoutMs;
  const requestId = randomUUID();
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: fn.name,
    functionVersion: '$LATEST',
    invokedFunctionArn: functionArn(fn.name, qualifier),
    memoryLimitInMB: '256',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${fn.name}`,
    logStreamName: `local/${requestId}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: ignoreCallback,
    fail: ignoreCallback,
    succeed: ignoreCallback,
  };
}

function localName(arnName: string | undefined): string | undefined {
  if (arnName === undefined) return undefined;
  if (arnName.endsWith('vend')) return 'vend';
  if (arnName.endsWith('release')) return 'release';
  return arnName;
}

/** Parses `{name}` of the Invoke path (a name, `name:qualifier` or an ARN) plus `?Qualifier`. */
export function parseFunctionTarget(
  rawName: string,
  queryQualifier: string | null,
): { name: string; qualifier: string | undefined } | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawName);
  } catch {
    return undefined;
  }
  let name: string | undefined;
  let qualifier: string | undefined;
  if (decoded.startsWith('arn:')) {
    const parts = decoded.split(':');
    if (parts.length < 7 || parts.length > 8 || parts[2] !== 'lambda' || parts[5] !== 'function') {
      return undefined;
    }
    // A deployed-style ARN names the function `<stack>-vend` and the like: it ends in the name.
    name = localName(parts[6]);
    qualifier = parts[7];
  } else {
    const parts = decoded.split(':');
    if (parts.length > 2) return undefined;
    name = parts[0];
    qualifier = parts[1];
  }
  if (queryQualifier !== null) {
    if (qualifier !== undefined && qualifier !== queryQualifier) return undefined;
    qualifier = queryQualifier;
  }
  return name ? { name, qualifier } : undefined;
}

/** Whether a qualifier names something that exists here: `$LATEST` or a `profile-<name>` alias. */
export function qualifierExists(fn: LocalFunction, qualifier: string | undefined): boolean {
  if (qualifier === undefined || qualifier === '$LATEST') return true;
  return (
    fn.name === 'vend' &&
    qualifier.startsWith('profile-') &&
    isProfileName(qualifier.slice('profile-'.length))
  );
}

/** A REST API proxy event as API Gateway builds it, from a local HTTP request. */
export function restEvent(req: IncomingMessage, url: URL, body: Buffer): Record<string, unknown> {
  // Maps, then Object.fromEntries: a header or query key such as `__proto__`, `constructor` or
  // `toString` must become an own property, not clash with Object.prototype.
  const headerValues = new Map<string, string[]>();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const key = req.rawHeaders[i] as string;
    headerValues.set(key, [...(headerValues.get(key) ?? []), req.rawHeaders[i + 1] as string]);
  }
  const queryValues = new Map<string, string[]>();
  for (const [key, value] of url.searchParams) {
    queryValues.set(key, [...(queryValues.get(key) ?? []), value]);
  }
  const last = (values: string[]) => values[values.length - 1] as string;
  const headers = Object.fromEntries([...headerValues].map(([k, v]) => [k, last(v)]));
  const multiValueHeaders = Object.fromEntries(headerValues);
  const query = Object.fromEntries([...queryValues].map(([k, v]) => [k, last(v)]));
  const multiQuery = Object.fromEntries(queryValues);
  const hasQuery = queryValues.size > 0;
  const text = body.toString('utf8');
  // API Gateway passes text bodies as they are and binary ones base64-encoded.
  const binary = body.length > 0 && !Buffer.from(text, 'utf8').equals(body);
  const path = url.pathname;
  return {
    resource: '/{proxy+}',
    path,
    httpMethod: req.method ?? 'GET',
    headers,
    multiValueHeaders,
    queryStringParameters: hasQuery ? query : null,
    multiValueQueryStringParameters: hasQuery ? multiQuery : null,
    pathParameters: { proxy: path.slice(1) },
    stageVariables: null,
    requestContext: {
      accountId: ACCOUNT,
      apiId: 'local',
      resourcePath: '/{proxy+}',
      httpMethod: req.method ?? 'GET',
      path: `/local${path}`,
      stage: 'local',
      protocol: `HTTP/${req.httpVersion}`,
      requestId: randomUUID(),
      requestTimeEpoch: Date.now(),
      identity: { sourceIp: req.socket.remoteAddress ?? '127.0.0.1' },
    },
    body: body.length === 0 ? null : binary ? body.toString('base64') : text,
    isBase64Encoded: binary,
  };
}
