import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CrmSimulator } from '../../functions/local/crm-simulator.js';
import { type LocalService, startLocalService } from '../../functions/local/local-service.js';

type Env = Record<string, string | undefined>;

/**
 * Short settings that satisfy every constraint (CONTRACT §3), so a real-time test sees a whole
 * token lifecycle in seconds: 8 s of advertised validity, release job every second.
 */
export const FAST_ENV: Readonly<Env> = {
  TOKEN_LIFETIME_SECONDS: '12',
  RELEASE_LEAD_SECONDS: '4',
  REFRESH_AHEAD_SECONDS: '3',
  MIN_VALIDITY_SECONDS: '1',
  RELEASE_INTERVAL_SECONDS: '1',
  CRM_TIMEOUT_MS: '500',
};

export interface TestResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
  /** The body parsed as JSON (throws when it is not JSON). */
  json<T = unknown>(): T;
}

export interface TestRequestOptions {
  /** @default 'GET' */
  readonly method?: string;
  readonly body?: string | Buffer;
  readonly headers?: Record<string, string>;
  /** The request fails when no full answer came by then. @default 10_000 */
  readonly timeoutMs?: number;
}

export interface TestService {
  readonly service: LocalService;
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly port: number;
  /** The bundled CRM.COM simulator; throws when the service runs against CRM_BASE_URL. */
  readonly simulator: CrmSimulator;
  /**
   * One HTTP request on a fresh connection (no keep-alive), path sent exactly as given (it must
   * be printable ASCII: percent-encode the rest, or use a raw socket).
   */
  request(path: string, options?: TestRequestOptions): Promise<TestResponse>;
  /** Stops the service and removes the PROFILES_FILE written for it. */
  stop(): Promise<void>;
}

export interface StartTestServiceOptions {
  /** Written to a temporary PROFILES_FILE (profile name → secret value, CONTRACT §2). */
  readonly profiles?: Record<string, unknown>;
  /** Keep Powertools' EMF metrics output on stdout. @default false (metrics disabled) */
  readonly metrics?: boolean;
}

/** One HTTP request to `origin` on a fresh connection; see TestService.request. */
export function requestTo(
  origin: string,
  path: string,
  options: TestRequestOptions = {},
): Promise<TestResponse> {
  const { hostname, port } = new URL(origin);
  const body = options.body;
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: hostname,
        port: Number(port),
        path,
        method: options.method ?? 'GET',
        agent: false,
        headers: {
          ...(body === undefined ? {} : { 'Content-Length': String(Buffer.byteLength(body)) }),
          ...options.headers,
        },
        timeout: options.timeoutMs ?? 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json: <T>() => JSON.parse(text) as T,
          });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer to ${path} in time`)));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Starts the real local service in process (CONTRACT §6) on an ephemeral port, with FAST_ENV,
 * silent logs and the bundled simulator unless `env` says otherwise. Nothing of process.env is
 * read for settings: only `env` (POWERTOOLS_METRICS_DISABLED is set unless `metrics`).
 */
export async function startTestService(
  env: Env = {},
  options: StartTestServiceOptions = {},
): Promise<TestService> {
  if (!options.metrics) process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  let dir: string | undefined;
  const extra: Env = {};
  if (options.profiles) {
    dir = mkdtempSync(join(tmpdir(), 'token-vendor-'));
    const file = join(dir, 'profiles.json');
    writeFileSync(file, JSON.stringify(options.profiles));
    extra.PROFILES_FILE = file;
  }
  let service: LocalService;
  try {
    service = await startLocalService({
      LOG_LEVEL: 'SILENT',
      ...FAST_ENV,
      ...extra,
      ...env,
      PORT: env.PORT ?? '0',
    });
  } catch (error) {
    if (dir) rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    service,
    url: service.url,
    port: service.port,
    get simulator(): CrmSimulator {
      if (!service.simulator) throw new Error('this service runs against CRM_BASE_URL');
      return service.simulator;
    },
    request: (path, requestOptions) => requestTo(service.url, path, requestOptions),
    stop: async () => {
      try {
        await service.stop();
      } finally {
        if (dir) rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
