import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Context } from 'aws-lambda';
import { HttpCrmClient } from '../functions/adapters/crm-client.js';
import { createDynamoDbClient } from '../functions/adapters/dynamodb-client.js';
import { DynamoDbTokenStore } from '../functions/adapters/dynamodb-token-store.js';
import { readSettings } from '../functions/adapters/environment.js';
import { createObservability } from '../functions/adapters/powertools-telemetry.js';
import { systemClock } from '../functions/adapters/system-clock.js';
import { ensureTable } from '../functions/adapters/table-schema.js';
import { CachedSecretSource } from '../functions/core/secret-cache.js';
import { type Settings, vendTimeoutSeconds } from '../functions/core/settings.js';
import { VendService } from '../functions/core/vend-service.js';
import { createVendHandler } from '../functions/handlers/vend-handler.js';
import { type CrmSimulator, startCrmSimulator } from '../functions/local/crm-simulator.js';
import { startEmbeddedDynamoDb } from '../functions/local/embedded-dynamodb.js';
import { type LocalFunction, lambdaContext } from '../functions/local/lambda-emulation.js';
import { LocalProfileFetcher } from '../functions/local/local-profiles.js';

/** The simulator's demo user: the `default` profile of every bench instance. */
export const DEMO_PROFILE = { username: 'demo', password: 'demo', organisation: 'DEMO' };

/** One table on dynalite and one CRM.COM simulator, shared by every instance of a bench phase. */
export interface Backend {
  readonly endpoint: string;
  readonly tableName: string;
  readonly simulator: CrmSimulator;
  /** A client built as the product builds its own (createDynamoDbClient). */
  readonly client: DynamoDBClient;
  close(): Promise<void>;
}

export async function startBackend(tableName = 'bench-tokens'): Promise<Backend> {
  const dynamo = await startEmbeddedDynamoDb();
  const simulator = await startCrmSimulator();
  const client = createDynamoDbClient({ endpoint: dynamo.endpoint });
  await ensureTable(client, tableName);
  return {
    endpoint: dynamo.endpoint,
    tableName,
    simulator,
    client,
    close: async () => {
      client.destroy();
      await simulator.close();
      await dynamo.close();
    },
  };
}

/** One vend "Lambda environment": its own client, store, caches, de-duplication and handler. */
export interface VendInstance {
  readonly settings: Settings;
  readonly store: DynamoDbTokenStore;
  readonly service: VendService;
  readonly handler: (event: unknown, context: Context) => Promise<unknown>;
  /** A fresh Lambda context, as the runtime gives each invocation. */
  context(): Context;
  close(): void;
}

export function createVendInstance(
  backend: Backend,
  env: Readonly<Record<string, string>> = {},
): VendInstance {
  const settings = readSettings(env, 'deployed');
  const client = createDynamoDbClient({ endpoint: backend.endpoint });
  const store = new DynamoDbTokenStore({ client, tableName: backend.tableName });
  const clock = systemClock;
  const fetcher = new LocalProfileFetcher({
    defaultProfile: DEMO_PROFILE,
    profilesFile: undefined,
    clock,
    ttlSeconds: settings.secretCacheSeconds,
  });
  // As shipped: logs at INFO, metrics on (one EMF line per invocation), validation on.
  const observability = createObservability({ logLevel: 'INFO' });
  const service = new VendService({
    store,
    secrets: new CachedSecretSource(fetcher, clock, settings.secretCacheSeconds),
    crm: new HttpCrmClient({ timeoutMs: settings.crmTimeoutMs }),
    clock,
    settings,
    telemetry: observability.telemetry,
    defaultBaseUrl: backend.simulator.url,
  });
  const handler = createVendHandler({ service, settings, clock, observability });
  const fn: LocalFunction = {
    name: 'vend',
    handler,
    timeoutMs: vendTimeoutSeconds(settings) * 1000,
  };
  return {
    settings,
    store,
    service,
    handler,
    context: () => lambdaContext(fn),
    close: () => client.destroy(),
  };
}
