/**
 * A server for the HTTP benchmark, run in its own process (`node --import tsx`), so that the
 * load generator and the server each have a core.
 * - `local`: the product's local mode (startLocalService: embedded DynamoDB, simulator, INFO).
 * - `bare`: node:http answering a constant JSON body of the same shape and size.
 * - `emulation`: the local server's API Gateway/Lambda emulation (LocalServer) around a handler
 *   that returns that constant body: what the emulation alone costs, to explain the gap.
 * Sends `{ port }` over IPC when ready, answers `'cpu'` with its process.cpuUsage(), stops on
 * SIGTERM.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LocalFunction } from '../functions/local/lambda-emulation.js';
import { LocalServer } from '../functions/local/local-server.js';
import { startLocalService } from '../functions/local/local-service.js';

type Kind = 'local' | 'bare' | 'emulation';

interface Running {
  readonly port: number;
  stop(): Promise<void>;
}

const BODY = JSON.stringify({
  token: '0123456789ABCDEF0123456789ABCDEF',
  profile: 'default',
  issuedAt: new Date().toISOString(),
  expiresAt: new Date(Date.now() + 3_000_000).toISOString(),
  expiresInSeconds: 2999,
});
const HEADERS = { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' };

async function startBare(): Promise<Running> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { ...HEADERS, 'Content-Length': String(Buffer.byteLength(BODY)) });
    res.end(BODY);
  });
  // The same keep-alive policy as the local server.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function startEmulation(): Promise<Running> {
  const constant: LocalFunction = {
    name: 'vend',
    timeoutMs: 20_000,
    handler: async () => ({ statusCode: 200, headers: { ...HEADERS }, body: BODY }),
  };
  const server = new LocalServer({ vend: constant, release: { ...constant, name: 'release' } });
  const port = await server.listen(0);
  return { port, stop: () => server.close() };
}

function start(kind: Kind): Promise<Running> {
  if (kind === 'bare') return startBare();
  if (kind === 'emulation') return startEmulation();
  return startLocalService({ PORT: '0', LOG_LEVEL: 'INFO', TABLE_NAME: 'bench-http' });
}

async function main(kind: Kind): Promise<void> {
  const server = await start(kind);
  process.on('message', (message) => {
    if (message === 'cpu') process.send?.({ cpu: process.cpuUsage() });
  });
  process.send?.({ port: server.port });
  process.once('SIGTERM', () => {
    server.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}

const kind = process.argv[2];
if (kind !== 'bare' && kind !== 'local' && kind !== 'emulation') {
  process.stderr.write('usage: http-server.ts bare|local|emulation\n');
  process.exit(2);
}
void main(kind);
