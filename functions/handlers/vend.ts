import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { HttpCrmClient } from '../adapters/crm-client.js';
import { createDynamoDbClient } from '../adapters/dynamodb-client.js';
import { DynamoDbTokenStore } from '../adapters/dynamodb-token-store.js';
import { readDeployedEnvironment } from '../adapters/environment.js';
import { createObservability } from '../adapters/powertools-telemetry.js';
import { SecretsManagerFetcher } from '../adapters/secrets-manager-fetcher.js';
import { systemClock } from '../adapters/system-clock.js';
import { CachedSecretSource } from '../core/secret-cache.js';
import { VendService } from '../core/vend-service.js';
import { createVendHandler } from './vend-handler.js';

// Composition root of the deployed vend function: configuration is read and validated once,
// at cold start; a bad setting fails the init with a message naming the variable.
const env = readDeployedEnvironment();
const observability = createObservability({ logLevel: process.env.LOG_LEVEL });
const secrets = new CachedSecretSource(
  new SecretsManagerFetcher(new SecretsManagerClient({ maxAttempts: 2 }), env.profileSecrets),
  systemClock,
  env.settings.secretCacheSeconds,
);
const service = new VendService({
  store: new DynamoDbTokenStore({
    client: createDynamoDbClient({ endpoint: env.dynamoDbEndpoint }),
    tableName: env.tableName,
  }),
  secrets,
  crm: new HttpCrmClient({ timeoutMs: env.settings.crmTimeoutMs }),
  clock: systemClock,
  settings: env.settings,
  telemetry: observability.telemetry,
  defaultBaseUrl: env.defaultBaseUrl,
});

export const handler = createVendHandler({
  service,
  settings: env.settings,
  clock: systemClock,
  observability,
});
