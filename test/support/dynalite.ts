import { randomBytes } from 'node:crypto';
import { BatchWriteItemCommand, DynamoDBClient, type WriteRequest } from '@aws-sdk/client-dynamodb';
import type { Item } from '../../functions/adapters/dynamodb-token-store.js';
import { ensureTable } from '../../functions/adapters/table-schema.js';
import { mapPooled } from '../../functions/core/release-service.js';
import { startEmbeddedDynamoDb } from '../../functions/local/embedded-dynamodb.js';

export interface LocalDynamo {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  readonly client: DynamoDBClient;
  /** The token table, ACTIVE and empty (its name is unique per call unless one was given). */
  readonly tableName: string;
  /** Destroys the client and stops the server; the data is gone. */
  close(): Promise<void>;
}

export interface StartDynaliteOptions {
  /** @default a unique name per call (see uniqueTableName) */
  readonly tableName?: string;
  /** @default 0, a free port */
  readonly port?: number;
}

/** Starts an in-memory dynalite on 127.0.0.1 (the local mode's embedded one) with the token table. */
export async function startDynalite(options: StartDynaliteOptions = {}): Promise<LocalDynamo> {
  const emulator = await startEmbeddedDynamoDb(options.port ?? 0);
  const endpoint = emulator.endpoint;
  const client = localDynamoClient(endpoint);
  const tableName = options.tableName ?? uniqueTableName();
  const close = async (): Promise<void> => {
    client.destroy();
    await emulator.close();
  };
  try {
    await ensureTable(client, tableName);
  } catch (error) {
    await close();
    throw error;
  }
  return { endpoint, client, tableName, close };
}

/** A client for a local endpoint: dummy static credentials, us-east-1, few quick retries. */
export function localDynamoClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 3,
  });
}

/** A table name no other call (or process) uses: `token-vendor-<pid>-<random>`. */
export function uniqueTableName(prefix = 'token-vendor'): string {
  return `${prefix}-${process.pid}-${randomBytes(6).toString('hex')}`;
}

/**
 * BatchWriteItem in chunks of 25, a few chunks at a time (hundreds at once overwhelm the
 * emulator's connections), until nothing is left unprocessed.
 */
export async function batchPut(
  client: DynamoDBClient,
  tableName: string,
  items: readonly Item[],
  concurrency = 8,
): Promise<void> {
  const chunks: WriteRequest[][] = [];
  for (let i = 0; i < items.length; i += 25) {
    chunks.push(items.slice(i, i + 25).map((entry) => ({ PutRequest: { Item: entry } })));
  }
  await mapPooled(chunks, concurrency, async (chunk) => {
    let pending: WriteRequest[] = chunk;
    for (let round = 0; pending.length > 0; round++) {
      if (round > 10) throw new Error('BatchWriteItem keeps leaving items unprocessed');
      const out = await client.send(
        new BatchWriteItemCommand({ RequestItems: { [tableName]: pending } }),
      );
      pending = out.UnprocessedItems?.[tableName] ?? [];
    }
  });
}
