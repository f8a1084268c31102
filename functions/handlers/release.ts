import { HttpCrmClient } from '../adapters/crm-client.js';
import { createDynamoDbClient } from '../adapters/dynamodb-client.js';
import { DynamoDbTokenStore } from '../adapters/dynamodb-token-store.js';
import { readDeployedEnvironment } from '../adapters/environment.js';
import { createObservability } from '../adapters/powertools-telemetry.js';
import { systemClock } from '../adapters/system-clock.js';
import { ReleaseService } from '../core/release-service.js';
import { createReleaseHandler } from './release-handler.js';

// Composition root of the release function. It needs no secret: each token record carries the
// CRM.COM base URL it was obtained from.
const env = readDeployedEnvironment();
const observability = createObservability({ logLevel: process.env.LOG_LEVEL });

export const handler = createReleaseHandler({
  release: new ReleaseService({
    store: new DynamoDbTokenStore({
      client: createDynamoDbClient({ endpoint: env.dynamoDbEndpoint }),
      tableName: env.tableName,
    }),
    crm: new HttpCrmClient({ timeoutMs: env.settings.crmTimeoutMs }),
    clock: systemClock,
    settings: env.settings,
    telemetry: observability.telemetry,
  }),
  clock: systemClock,
  observability,
});
