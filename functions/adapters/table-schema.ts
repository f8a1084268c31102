import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type DynamoDBClient,
  type TableDescription,
} from '@aws-sdk/client-dynamodb';
import { StoreError } from '../core/errors.js';

/**
 * The token table's layout. The CDK construct creates the same table; this module is what the
 * local server and the tests use to create it.
 *
 * One table, partition key `pk` only: `P#<profile>` holds a profile's state, `T#<tokenId>` a token
 * record. `due-index` is sparse: only records pending release carry `dueShard` (always `"due"`)
 * and `dueAt`, so a release run reads due records only, never the whole table.
 */
export const TABLE = {
  partitionKey: 'pk',
  ttlAttribute: 'ttl',
  dueShardAttribute: 'dueShard',
  dueAtAttribute: 'dueAt',
} as const;

/** Name of the sparse index of records pending release. */
export const DUE_INDEX = 'due-index';

/** The one value of `dueShard`: all pending records share one index partition, sorted by `dueAt`. */
export const DUE_SHARD = 'due';

/** Schema version written on every item; an item with a newer one is refused, not guessed at. */
export const SCHEMA_VERSION = 1;

/** Key prefixes of the two item kinds. */
export const KEY_PREFIX = { profile: 'P#', token: 'T#' } as const;

/** The CreateTable request for the token table (on-demand, with the sparse due index). */
export function createTableInput(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: TABLE.partitionKey, AttributeType: 'S' },
      { AttributeName: TABLE.dueShardAttribute, AttributeType: 'S' },
      { AttributeName: TABLE.dueAtAttribute, AttributeType: 'N' },
    ],
    KeySchema: [{ AttributeName: TABLE.partitionKey, KeyType: 'HASH' }],
    GlobalSecondaryIndexes: [
      {
        IndexName: DUE_INDEX,
        KeySchema: [
          { AttributeName: TABLE.dueShardAttribute, KeyType: 'HASH' },
          { AttributeName: TABLE.dueAtAttribute, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ],
  };
}

export interface EnsureTableOptions {
  /** How long to wait for the table (and its index) to become ACTIVE. @default 10000 */
  readonly timeoutMs?: number;
  /** Pause between DescribeTable polls. @default 100 */
  readonly pollMs?: number;
}

/**
 * Creates the table when missing and waits until it is ACTIVE. Safe to call from several
 * processes at once: losing the creation race (ResourceInUseException) is not an error. An
 * existing table with another key layout is refused rather than used.
 */
export async function ensureTable(
  client: DynamoDBClient,
  tableName: string,
  options: EnsureTableOptions = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const pollMs = options.pollMs ?? 100;
  const deadline = Date.now() + timeoutMs;

  let table = await describe(client, tableName);
  if (!table) {
    try {
      await client.send(new CreateTableCommand(createTableInput(tableName)));
    } catch (error) {
      // Another process created it first: fine, wait for it like for our own.
      if (errorName(error) !== 'ResourceInUseException') {
        throw new StoreError(`Cannot create table ${tableName} (${errorName(error)})`, error);
      }
    }
    table = await describe(client, tableName);
  }
  for (;;) {
    if (table) {
      checkLayout(tableName, table);
      if (isActive(table)) return;
    }
    if (Date.now() >= deadline) {
      throw new StoreError(`Table ${tableName} did not become ACTIVE within ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
    table = await describe(client, tableName);
  }
}

async function describe(
  client: DynamoDBClient,
  tableName: string,
): Promise<TableDescription | undefined> {
  try {
    const out = await client.send(new DescribeTableCommand({ TableName: tableName }));
    return out.Table;
  } catch (error) {
    if (errorName(error) === 'ResourceNotFoundException') return undefined;
    throw new StoreError(`Cannot describe table ${tableName} (${errorName(error)})`, error);
  }
}

function isActive(table: TableDescription): boolean {
  return (
    table.TableStatus === 'ACTIVE' &&
    (table.GlobalSecondaryIndexes ?? []).every((index) => index.IndexStatus === 'ACTIVE')
  );
}

function checkLayout(tableName: string, table: TableDescription): void {
  const hashKey = table.KeySchema?.find((key) => key.KeyType === 'HASH')?.AttributeName;
  const hasRangeKey = table.KeySchema?.some((key) => key.KeyType === 'RANGE') ?? false;
  const dueIndex = table.GlobalSecondaryIndexes?.find((index) => index.IndexName === DUE_INDEX);
  const indexKeys = dueIndex?.KeySchema?.map((key) => `${key.KeyType}:${key.AttributeName}`);
  const expectedIndexKeys = [`HASH:${TABLE.dueShardAttribute}`, `RANGE:${TABLE.dueAtAttribute}`];
  if (
    hashKey !== TABLE.partitionKey ||
    hasRangeKey ||
    indexKeys?.join() !== expectedIndexKeys.join() ||
    dueIndex?.Projection?.ProjectionType !== 'ALL'
  ) {
    throw new StoreError(`Table ${tableName} exists with another key or index layout`);
  }
}

function errorName(error: unknown): string {
  if (error instanceof Error) return error.name;
  return 'UnknownError';
}
