import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * What the proxy does with a matching request:
 * - `throttle`: answers HTTP 400 `ProvisionedThroughputExceededException`, as DynamoDB does;
 * - `drop`: closes the connection without forwarding (the write does not happen);
 * - `drop-after`: forwards, lets DynamoDB apply it, then closes the connection without the
 *   answer (the write happened; the SDK retries and its condition now fails);
 * - `blackhole`: never answers (the client's timeout decides).
 */
export type ProxyFault = 'throttle' | 'drop' | 'drop-after' | 'blackhole';

export interface ProxyRule {
  readonly fault: ProxyFault;
  /** Only these operations (the `X-Amz-Target` suffix: `GetItem`, `PutItem`, `Query`…). */
  readonly operations?: readonly string[];
  /** Only requests whose JSON body passes this test. */
  readonly match?: (body: string) => boolean;
  /** Faults left; the rule is dropped at zero. @default unlimited */
  count?: number;
}

export interface ProxyStats {
  readonly requests: number;
  readonly forwarded: number;
  /** Faulted requests by fault. */
  readonly faulted: Readonly<Record<ProxyFault, number>>;
  /** Requests by operation. */
  readonly operations: Readonly<Record<string, number>>;
}

export interface FaultyDynamoDbProxy {
  /** `http://127.0.0.1:PORT`, to use as DYNAMODB_ENDPOINT. */
  readonly url: string;
  /** Adds a rule; the first matching rule applies. */
  add(rule: ProxyRule): void;
  /** Drops every rule: requests pass again. */
  heal(): void;
  stats(): ProxyStats;
  close(): Promise<void>;
}

const THROTTLED = JSON.stringify({
  __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
  message:
    'The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.',
});

/**
 * An HTTP proxy on 127.0.0.1 in front of a DynamoDB endpoint (dynalite) that throttles, drops
 * or swallows requests matching its rules, so tests can see what the real adapter and the
 * service above it do when the table misbehaves.
 */
export async function startFaultyDynamoDbProxy(target: string): Promise<FaultyDynamoDbProxy> {
  const upstream = new URL(target);
  const rules: ProxyRule[] = [];
  const sockets = new Set<Socket>();
  const hanging = new Set<ServerResponse>();
  let requests = 0;
  let forwarded = 0;
  const faulted: Record<ProxyFault, number> = {
    throttle: 0,
    drop: 0,
    'drop-after': 0,
    blackhole: 0,
  };
  const operations: Record<string, number> = {};

  const pick = (operation: string, body: string): ProxyRule | undefined => {
    const index = rules.findIndex(
      (r) =>
        (r.operations === undefined || r.operations.includes(operation)) &&
        (r.match === undefined || r.match(body)),
    );
    if (index < 0) return undefined;
    const rule = rules[index]!;
    if (rule.count !== undefined) {
      rule.count -= 1;
      if (rule.count <= 0) rules.splice(index, 1);
    }
    return rule;
  };

  const forward = (
    req: IncomingMessage,
    body: Buffer,
    onAnswer: (status: number, headers: IncomingMessage['headers'], answer: Buffer) => void,
    onError: () => void,
  ): void => {
    forwarded += 1;
    const out = httpRequest(
      {
        host: upstream.hostname,
        port: Number(upstream.port),
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
        agent: false,
      },
      (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (c: Buffer) => chunks.push(c));
        answer.on('end', () =>
          onAnswer(answer.statusCode ?? 502, answer.headers, Buffer.concat(chunks)),
        );
        answer.on('error', onError);
      },
    );
    out.on('error', onError);
    out.end(body);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests += 1;
      const body = Buffer.concat(chunks);
      const target = String(req.headers['x-amz-target'] ?? '');
      const operation = target.slice(target.lastIndexOf('.') + 1);
      operations[operation] = (operations[operation] ?? 0) + 1;
      const rule = pick(operation, body.toString('utf8'));
      if (rule) faulted[rule.fault] += 1;
      switch (rule?.fault) {
        case 'throttle':
          res.writeHead(400, {
            'Content-Type': 'application/x-amz-json-1.0',
            'Content-Length': Buffer.byteLength(THROTTLED),
          });
          res.end(THROTTLED);
          return;
        case 'drop':
          req.socket.destroy();
          return;
        case 'blackhole':
          hanging.add(res);
          res.on('close', () => hanging.delete(res));
          return;
        case 'drop-after':
          forward(
            req,
            body,
            () => req.socket.destroy(),
            () => req.socket.destroy(),
          );
          return;
        default:
          forward(
            req,
            body,
            (status, headers, answer) => {
              if (res.destroyed) return;
              const { connection: _c, 'transfer-encoding': _t, ...rest } = headers;
              res.writeHead(status, { ...rest, 'content-length': answer.length });
              res.end(answer);
            },
            () => req.socket.destroy(),
          );
      }
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    add: (rule) => {
      rules.push({ ...rule });
    },
    heal: () => {
      rules.length = 0;
    },
    stats: () => ({
      requests,
      forwarded,
      faulted: { ...faulted },
      operations: { ...operations },
    }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
