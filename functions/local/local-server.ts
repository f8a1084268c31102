import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type LocalFunction,
  lambdaContext,
  parseFunctionTarget,
  qualifierExists,
  restEvent,
} from './lambda-emulation.js';

/** Bodies are read up to Lambda's 6 MB invoke limit; the handlers apply their own 8 KiB limit. */
const MAX_READ_BYTES = 6 * 1024 * 1024;
const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;

/** `head`: what was read of a too-large body, already over any handler's own limit. */
type Read =
  | { kind: 'ok'; body: Buffer }
  | { kind: 'too-large'; head: Buffer }
  | { kind: 'aborted' };

function readBody(req: IncomingMessage): Promise<Read> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (read: Read) => {
      if (!done) {
        done = true;
        resolve(read);
      }
    };
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      chunks.push(chunk);
      if (size > MAX_READ_BYTES) {
        finish({ kind: 'too-large', head: Buffer.concat(chunks) });
        req.resume();
      }
    });
    req.on('end', () => finish({ kind: 'ok', body: Buffer.concat(chunks) }));
    req.on('error', () => finish({ kind: 'aborted' }));
    req.on('close', () => finish({ kind: 'aborted' }));
  });
}

function send(
  res: ServerResponse,
  status: number,
  headers: Record<string, string>,
  body: string | undefined,
): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, {
    ...headers,
    ...(body === undefined ? {} : { 'Content-Length': String(Buffer.byteLength(body)) }),
  });
  res.end(body);
}

function awsError(res: ServerResponse, status: number, type: string, message: string): void {
  send(
    res,
    status,
    { 'Content-Type': 'application/json', 'x-amzn-ErrorType': type },
    JSON.stringify({ Type: 'User', message, Message: message }),
  );
}

function contractError(res: ServerResponse, status: number, code: string, message: string): void {
  send(
    res,
    status,
    { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' },
    JSON.stringify({ error: { code, message, retryable: false } }),
  );
}

export interface LocalServerOptions {
  readonly vend: LocalFunction;
  readonly release: LocalFunction;
  /** Called with anything a handler threw (already sanitised for the caller). */
  readonly onHandlerError?: (error: unknown) => void;
}

/**
 * The local HTTP front: API Gateway REST events for every path (CONTRACT §4) and the Lambda
 * Invoke API (§6), both running the real handlers in process.
 */
export class LocalServer {
  private readonly server: Server;
  private readonly functions: ReadonlyMap<string, LocalFunction>;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(private readonly options: LocalServerOptions) {
    this.functions = new Map([
      ['vend', options.vend],
      ['release', options.release],
    ]);
    this.server = createServer((req, res) => {
      const work = this.route(req, res).catch(() => {
        contractError(res, 500, 'INTERNAL', 'Internal error');
      });
      this.inFlight.add(work);
      void work.finally(() => this.inFlight.delete(work));
    });
    // Requests Node's HTTP parser refuses (malformed, or a method it does not know) get the
    // contract's error shape too. Node's own answers stay for a request that timed out (408)
    // and for a request line and headers over its 16 KiB limit (431), which API Gateway refuses
    // before any function too.
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
      if (error.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy();
        return;
      }
      if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
        socket.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
        return;
      }
      if (error.code === 'HPE_HEADER_OVERFLOW') {
        socket.end('HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n');
        return;
      }
      const body = JSON.stringify({
        error: { code: 'INVALID_REQUEST', message: 'Malformed HTTP request', retryable: false },
      });
      socket.end(
        'HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n' +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    });
    this.server.keepAliveTimeout = 5000;
    // A client that never finishes its request must not hold a socket forever.
    this.server.requestTimeout = 30_000;
    this.server.headersTimeout = 10_000;
  }

  listen(port: number, host = '127.0.0.1'): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  /** Stops accepting connections and waits (bounded) for requests in flight. */
  async close(graceMs = 3000): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    await Promise.race([
      Promise.allSettled([...this.inFlight]),
      new Promise((r) => setTimeout(r, graceMs).unref()),
    ]);
    this.server.closeAllConnections();
    await closed;
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL;
    try {
      // Origin-form targets are appended to the origin, not resolved against it: `//x/v1/health`
      // is a path of its own, not host `x` with path `/v1/health`.
      const target = req.url ?? '/';
      url = target.startsWith('/') ? new URL(`http://127.0.0.1${target}`) : new URL(target);
    } catch {
      contractError(res, 400, 'INVALID_REQUEST', 'The request target is invalid');
      return;
    }
    const read = await readBody(req);
    if (read.kind === 'aborted') return;
    const invoke = INVOKE_PATH.exec(url.pathname);
    if (invoke) {
      await this.invoke(req, res, url, invoke[1] as string, read);
      return;
    }
    // A body over the read limit still goes to the handler (cut short, yet far over its 8 KiB),
    // so that 404 and 405 keep answering before 413 (CONTRACT §4).
    const body = read.kind === 'ok' ? read.body : read.head;
    const fn = this.options.vend;
    const result = (await fn.handler(restEvent(req, url, body), lambdaContext(fn))) as {
      statusCode: number;
      headers?: Record<string, string>;
      body?: string;
    };
    send(res, result.statusCode, result.headers ?? {}, result.body ?? '');
  }

  /** The Lambda Invoke API: `POST /2015-03-31/functions/{name}/invocations`. */
  private async invoke(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    rawName: string,
    read: Read,
  ): Promise<void> {
    const target = parseFunctionTarget(rawName, url.searchParams.get('Qualifier'));
    const fn = target ? this.functions.get(target.name) : undefined;
    if (!target || !fn || !qualifierExists(fn, target.qualifier)) {
      awsError(
        res,
        404,
        'ResourceNotFoundException',
        `Function not found: ${functionLabel(rawName)}`,
      );
      return;
    }
    if (req.method !== 'POST') {
      awsError(res, 405, 'MethodNotAllowedException', 'Invoke takes POST');
      return;
    }
    if (read.kind === 'too-large') {
      awsError(res, 413, 'RequestTooLargeException', 'Request must be smaller than 6291456 bytes');
      return;
    }
    let payload: unknown = {};
    const text = read.kind === 'ok' ? read.body.toString('utf8') : '';
    if (text.trim() !== '') {
      try {
        payload = JSON.parse(text);
      } catch {
        awsError(
          res,
          400,
          'InvalidRequestContentException',
          'Could not parse request body into json',
        );
        return;
      }
    }
    const invocationType = String(req.headers['x-amz-invocation-type'] ?? 'RequestResponse');
    if (invocationType === 'DryRun') {
      send(res, 204, {}, undefined);
      return;
    }
    const run = () => fn.handler(payload, lambdaContext(fn, target.qualifier));
    const headers = { 'Content-Type': 'application/json', 'X-Amz-Executed-Version': '$LATEST' };
    if (invocationType === 'Event') {
      void run().catch((error: unknown) => this.options.onHandlerError?.(error));
      send(res, 202, headers, '');
      return;
    }
    try {
      const result = await run();
      send(res, 200, headers, JSON.stringify(result ?? null));
    } catch (error) {
      this.options.onHandlerError?.(error);
      // As Lambda does, but without the stack trace.
      const errorType = error instanceof Error ? error.name : 'Error';
      send(
        res,
        200,
        { ...headers, 'X-Amz-Function-Error': 'Unhandled' },
        JSON.stringify({ errorType, errorMessage: 'The function failed; see its logs' }),
      );
    }
  }
}

/** The function name as a caller gave it, cut short and stripped of anything odd, for messages. */
function functionLabel(rawName: string): string {
  return rawName.replace(/[^\w:%$.-]/g, '').slice(0, 140);
}
