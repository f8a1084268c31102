import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { createDynamoDbClient } from '../functions/adapters/dynamodb-client.js';
import { KEY_PREFIX, TABLE } from '../functions/adapters/table-schema.js';
import type { Backend } from './fixtures.js';
import { createVendInstance } from './fixtures.js';
import { interleaved, type LatencySummary, summarise } from './stats.js';

export interface VendLatencyResult {
  readonly getItem: LatencySummary;
  readonly warmVend: LatencySummary;
  readonly memoryVend: LatencySummary;
  /** Table items the warm (memory cache off) vends read, per vend (invariant 9: at most 1). */
  readonly warmReadsPerVend: number;
  /** The same with the memory cache on (invariant 9: ~0). */
  readonly memoryReadsPerVend: number;
}

const PAYLOAD = { action: 'getToken', profile: 'default' } as const;

/**
 * A warm vend through the real handler (direct invoke), memory cache off and on, against one
 * bare GetItem of the same item (ConsistentRead) with the same client configuration, all on the
 * same emulator and interleaved.
 */
export async function vendLatency(
  backend: Backend,
  options: { warmup: number; samples: number; block: number },
): Promise<VendLatencyResult> {
  const warm = createVendInstance(backend, { MEMORY_CACHE_SECONDS: '0' });
  const memory = createVendInstance(backend, {});
  const bare = createDynamoDbClient({ endpoint: backend.endpoint });
  const getItem = new GetItemCommand({
    TableName: backend.tableName,
    Key: { [TABLE.partitionKey]: { S: `${KEY_PREFIX.profile}default` } },
    ConsistentRead: true,
  });
  try {
    const vend = async (instance: typeof warm) => {
      const answer = (await instance.handler(PAYLOAD, instance.context())) as { token?: unknown };
      if (typeof answer.token !== 'string') throw new Error('bench vend failed');
    };
    // The profile must hold a current token first (a login, not measured).
    await vend(warm);
    const found = await bare.send(getItem);
    if (!found.Item) throw new Error('bench: the profile state item is missing');

    const warmReadsBefore = warm.store.itemsRead;
    const memoryReadsBefore = memory.store.itemsRead;
    const samples = await interleaved(
      {
        getItem: () => bare.send(getItem),
        warmVend: () => vend(warm),
        memoryVend: () => vend(memory),
      },
      options,
    );
    const vends = options.warmup + options.samples;
    return {
      getItem: summarise(samples.getItem ?? []),
      warmVend: summarise(samples.warmVend ?? []),
      memoryVend: summarise(samples.memoryVend ?? []),
      warmReadsPerVend: (warm.store.itemsRead - warmReadsBefore) / vends,
      memoryReadsPerVend: (memory.store.itemsRead - memoryReadsBefore) / vends,
    };
  } finally {
    warm.close();
    memory.close();
    bare.destroy();
  }
}
