import { type ChildProcess, fork } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { type LatencySummary, summarise } from './stats.js';

/** The part of autocannon's (untyped) programmatic API used here. */
interface AutocannonResult {
  readonly requests: { readonly total: number };
  readonly duration: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly non2xx: number;
}
type Autocannon = (options: {
  url: string;
  connections: number;
  /** Seconds; ignored when `amount` is given. */
  duration?: number;
  /** Requests in all. */
  amount?: number;
  pipelining?: number;
}) => EventEmitter & PromiseLike<AutocannonResult>;

const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

export interface HttpSide {
  readonly latency: LatencySummary;
  readonly requestsPerSecond: number;
  readonly requests: number;
  readonly errors: number;
  /** CPU time of the server process per request (user + system), microseconds. */
  readonly serverCpuMicrosPerRequest: number;
}

export interface HttpLoadResult {
  readonly local: HttpSide;
  readonly bare: HttpSide;
  /** The local server's emulation around a constant handler (not a target: an explanation). */
  readonly emulation: HttpSide;
  readonly connections: number;
  readonly secondsPerSide: number;
}

interface Server {
  readonly url: string;
  /** The server process's CPU time so far, microseconds. */
  cpuMicros(): Promise<number>;
  stop(): Promise<void>;
}

const SERVER_SCRIPT = fileURLToPath(new URL('./http-server.ts', import.meta.url));

async function startServer(kind: 'local' | 'bare' | 'emulation'): Promise<Server> {
  const child: ChildProcess = fork(SERVER_SCRIPT, [kind], {
    execArgv: ['--import', 'tsx'],
    // Both servers write their stdout (the product's EMF and log lines) to /dev/null.
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`bench: ${kind} server did not start`)),
      30_000,
    );
    child.once('message', (message: { port?: number }) => {
      clearTimeout(timer);
      if (typeof message.port === 'number') resolve(message.port);
      else reject(new Error(`bench: ${kind} server sent no port`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`bench: ${kind} server exited (${code})`));
    });
  }).catch((error: unknown) => {
    child.kill('SIGKILL');
    throw error;
  });
  return {
    url: `http://127.0.0.1:${port}`,
    cpuMicros: () =>
      new Promise((resolve) => {
        child.once('message', (message: { cpu: NodeJS.CpuUsage }) =>
          resolve(message.cpu.user + message.cpu.system),
        );
        child.send('cpu');
      }),
    stop: async () => {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

/** One autocannon run; latencies come from its per-response event, at full (float ms) precision. */
async function load(
  url: string,
  connections: number,
  length: { seconds: number } | { requests: number },
): Promise<{ latencies: number[]; requests: number; errors: number; seconds: number }> {
  const latencies: number[] = [];
  const run = autocannon({
    url,
    connections,
    pipelining: 1,
    ...('seconds' in length ? { duration: length.seconds } : { amount: length.requests }),
  });
  run.on('response', (_client: unknown, statusCode: number, _bytes: number, ms: number) => {
    if (statusCode === 200) latencies.push(ms);
  });
  const result = await run;
  return {
    latencies,
    requests: result.requests.total,
    errors: result.errors + result.timeouts + result.non2xx,
    seconds: result.duration,
  };
}

const KINDS = ['bare', 'emulation', 'local'] as const;
type Kind = (typeof KINDS)[number];

/**
 * Warm `GET /v1/tokens/default` through the local server against a bare node:http server with a
 * constant body (and the local server's emulation around a constant handler): same load tool,
 * connections and duration, alternated in rounds.
 */
export async function httpLoad(options: {
  connections: number;
  warmupRequests: number;
  secondsPerRound: number;
  rounds: number;
}): Promise<HttpLoadResult> {
  const servers: Partial<Record<Kind, Server>> = {};
  try {
    for (const kind of KINDS) servers[kind] = await startServer(kind);
    const url = (kind: Kind) => `${(servers[kind] as Server).url}/v1/tokens/default`;
    // The first vend logs in: not part of the warm figures.
    const first = await fetch(url('local'));
    if (first.status !== 200) throw new Error(`bench: local server answered ${first.status}`);
    await first.arrayBuffer();

    const total = () => ({ latencies: [] as number[], requests: 0, errors: 0, seconds: 0, cpu: 0 });
    const totals = { bare: total(), emulation: total(), local: total() };
    for (const kind of KINDS) {
      await load(url(kind), options.connections, { requests: options.warmupRequests });
    }
    for (let round = 0; round < options.rounds; round++) {
      for (const kind of KINDS) {
        const server = servers[kind] as Server;
        const cpuBefore = await server.cpuMicros();
        const run = await load(url(kind), options.connections, {
          seconds: options.secondsPerRound,
        });
        const into = totals[kind];
        into.cpu += (await server.cpuMicros()) - cpuBefore;
        for (const ms of run.latencies) into.latencies.push(ms);
        into.requests += run.requests;
        into.errors += run.errors;
        into.seconds += run.seconds;
      }
    }
    const side = (t: ReturnType<typeof total>): HttpSide => ({
      latency: summarise(t.latencies),
      requestsPerSecond: t.requests / t.seconds,
      requests: t.requests,
      errors: t.errors,
      serverCpuMicrosPerRequest: t.cpu / t.requests,
    });
    return {
      local: side(totals.local),
      bare: side(totals.bare),
      emulation: side(totals.emulation),
      connections: options.connections,
      secondsPerSide: options.secondsPerRound * options.rounds,
    };
  } finally {
    await Promise.all(Object.values(servers).map((s) => s.stop()));
  }
}
