import { HttpCrmClient } from '../adapters/crm-client.js';
import { createDynamoDbClient } from '../adapters/dynamodb-client.js';
import { DynamoDbTokenStore } from '../adapters/dynamodb-token-store.js';
import { optionalUrl, readSettings } from '../adapters/environment.js';
import { createObservability } from '../adapters/powertools-telemetry.js';
import { systemClock } from '../adapters/system-clock.js';
import { ensureTable } from '../adapters/table-schema.js';
import { ConfigError } from '../core/errors.js';
import { ReleaseService } from '../core/release-service.js';
import { CachedSecretSource } from '../core/secret-cache.js';
import { RELEASE_TIMEOUT_SECONDS, type Settings, vendTimeoutSeconds } from '../core/settings.js';
import { VendService } from '../core/vend-service.js';
import { createReleaseHandler } from '../handlers/release-handler.js';
import { createVendHandler } from '../handlers/vend-handler.js';
import { type CrmSimulator, startCrmSimulator } from './crm-simulator.js';
import { startEmbeddedDynamoDb } from './embedded-dynamodb.js';
import { type LocalFunction, lambdaContext } from './lambda-emulation.js';
import { defaultProfileFromEnv, LocalProfileFetcher } from './local-profiles.js';
import { LocalServer } from './local-server.js';

type Env = Readonly<Record<string, string | undefined>>;

/** The simulator's demo user, which the `default` profile uses when no CRM_* is set. */
const SIMULATOR_DEFAULT_PROFILE = { username: 'demo', password: 'demo', organisation: 'DEMO' };

export interface LocalService {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly port: number;
  readonly settings: Settings;
  /** The bundled CRM.COM simulator, when CRM_BASE_URL was not set. */
  readonly simulator: CrmSimulator | undefined;
  /** True when the DynamoDB emulator runs in this process (no DYNAMODB_ENDPOINT). */
  readonly embeddedStore: boolean;
  /** Stops serving; with the embedded store, releases every live token first. */
  stop(): Promise<void>;
}

function parsePort(raw: string | undefined): number {
  if (raw === undefined || raw === '') return 3000;
  if (!/^\d{1,5}$/.test(raw) || Number(raw) > 65535) {
    throw new ConfigError('PORT must be a port number from 0 to 65535');
  }
  return Number(raw);
}

function parseTableName(raw: string | undefined): string {
  const name = raw === undefined || raw === '' ? 'crm-token-vendor' : raw;
  if (!/^[A-Za-z0-9_.-]{3,255}$/.test(name)) {
    throw new ConfigError('TABLE_NAME must be 3–255 characters of A-Z a-z 0-9 _ . -');
  }
  return name;
}

function parseTokenMode(raw: string | undefined): 'opaque' | 'jwt' {
  if (raw === undefined || raw === '' || raw === 'opaque') return 'opaque';
  if (raw === 'jwt') return 'jwt';
  throw new ConfigError('CRM_SIMULATOR_TOKEN_MODE must be opaque or jwt');
}

/**
 * Local mode (CONTRACT §6): the real handlers behind an HTTP server on 127.0.0.1, the release
 * job on a timer, DynamoDB embedded or at DYNAMODB_ENDPOINT, CRM.COM simulated or at
 * CRM_BASE_URL. Every setting is validated before anything starts.
 */
export async function startLocalService(env: Env = process.env): Promise<LocalService> {
  const settings = readSettings(env, 'local');
  const port = parsePort(env.PORT);
  const tableName = parseTableName(env.TABLE_NAME);
  const configuredBaseUrl = optionalUrl(env, 'CRM_BASE_URL');
  const configuredEndpoint = optionalUrl(env, 'DYNAMODB_ENDPOINT');
  const tokenMode = parseTokenMode(env.CRM_SIMULATOR_TOKEN_MODE);
  const observability = createObservability({ logLevel: env.LOG_LEVEL ?? 'INFO' });
  const { telemetry } = observability;
  const clock = systemClock;

  const started: Array<() => Promise<void>> = [];
  const cleanup = async () => {
    for (const stop of started.reverse()) await stop().catch(() => {});
  };
  try {
    const fetcher = new LocalProfileFetcher({
      defaultProfile:
        defaultProfileFromEnv(env) ?? (configuredBaseUrl ? undefined : SIMULATOR_DEFAULT_PROFILE),
      profilesFile: env.PROFILES_FILE || undefined,
      clock,
      ttlSeconds: settings.secretCacheSeconds,
      onReloadError: () =>
        telemetry.log('error', 'PROFILES_FILE could not be re-read; keeping the last good copy'),
    });

    let simulator: CrmSimulator | undefined;
    if (!configuredBaseUrl) {
      simulator = await startCrmSimulator({
        tokenMode,
        tokenLifetimeSeconds: settings.tokenLifetimeSeconds,
      });
      started.push(() => simulator!.close());
    }
    const baseUrl = configuredBaseUrl ?? simulator!.url;

    let endpoint = configuredEndpoint;
    if (!endpoint) {
      const embedded = await startEmbeddedDynamoDb();
      started.push(() => embedded.close());
      endpoint = embedded.endpoint;
    }
    const client = createDynamoDbClient({ endpoint });
    started.push(async () => client.destroy());
    await ensureTable(client, tableName);
    const store = new DynamoDbTokenStore({ client, tableName });
    const crm = new HttpCrmClient({ timeoutMs: settings.crmTimeoutMs });

    const vendService = new VendService({
      store,
      secrets: new CachedSecretSource(fetcher, clock, settings.secretCacheSeconds),
      crm,
      clock,
      settings,
      telemetry,
      defaultBaseUrl: baseUrl,
    });
    const releaseService = new ReleaseService({
      store,
      crm,
      clock,
      settings,
      telemetry,
      onRevoked: (profile) => vendService.forget(profile),
    });
    const vend: LocalFunction = {
      name: 'vend',
      handler: createVendHandler({ service: vendService, settings, clock, observability }),
      timeoutMs: vendTimeoutSeconds(settings) * 1000,
    };
    const release: LocalFunction = {
      name: 'release',
      handler: createReleaseHandler({ release: releaseService, clock, observability }),
      timeoutMs: RELEASE_TIMEOUT_SECONDS * 1000,
    };
    const server = new LocalServer({
      vend,
      release,
      onHandlerError: () => telemetry.log('error', 'a handler threw'),
    });
    const actualPort = await server.listen(port);

    // The schedule: one run every RELEASE_INTERVAL_SECONDS, never two at once in this process.
    let running: Promise<unknown> | undefined;
    const timer = setInterval(() => {
      if (running) return;
      running = release
        .handler({}, lambdaContext(release))
        .catch(() => {})
        .finally(() => {
          running = undefined;
        });
    }, settings.releaseIntervalSeconds * 1000);

    const embeddedStore = configuredEndpoint === undefined;
    let stopping: Promise<void> | undefined;
    const stop = () => {
      stopping ??= (async () => {
        // Everything below fits the 10 s that CONTRACT §6 allows a shutdown, counted from here.
        const deadline = Date.now() + 8500;
        clearInterval(timer);
        await server.close(2000);
        // A scheduled run stuck on a hanging CRM.COM must not hold the shutdown up.
        await Promise.race([running, new Promise((r) => setTimeout(r, 1000).unref())]);
        if (embeddedStore && settings.releaseEnabled) {
          // The embedded table dies with this process: release what it holds (invariant 8).
          const report = await releaseService.releaseAll({ deadline });
          telemetry.log('info', 'released live tokens at shutdown', { ...report });
        }
        await cleanup();
      })();
      return stopping;
    };
    return {
      url: `http://127.0.0.1:${actualPort}`,
      port: actualPort,
      settings,
      simulator,
      embeddedStore,
      stop,
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
