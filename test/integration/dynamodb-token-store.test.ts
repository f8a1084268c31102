import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  ProvisionedThroughputExceededException,
  PutItemCommand,
  QueryCommand,
} from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DynamoDbTokenStore,
  type Item,
  marshalToken,
} from '../../functions/adapters/dynamodb-token-store.js';
import {
  createTableInput,
  DUE_INDEX,
  DUE_SHARD,
  ensureTable,
  SCHEMA_VERSION,
} from '../../functions/adapters/table-schema.js';
import { StoreError } from '../../functions/core/errors.js';
import type { TokenRecord } from '../../functions/core/types.js';
import {
  batchPut,
  type LocalDynamo,
  localDynamoClient,
  startDynalite,
  uniqueTableName,
} from '../support/dynalite.js';
import {
  fullState,
  NOW,
  tokenRecord,
  tokenStoreContract,
} from '../support/token-store-contract.js';

let local: LocalDynamo;

beforeAll(async () => {
  local = await startDynalite();
});

afterAll(async () => {
  await local?.close();
});

/** A fresh table on the shared dynalite, so tests never see each other's items. */
async function freshStore(): Promise<{ store: DynamoDbTokenStore; tableName: string }> {
  const tableName = uniqueTableName();
  await ensureTable(local.client, tableName);
  return { store: new DynamoDbTokenStore({ client: local.client, tableName }), tableName };
}

async function rawItem(tableName: string, pk: string): Promise<Item | undefined> {
  const out = await local.client.send(
    new GetItemCommand({ TableName: tableName, Key: { pk: { S: pk } }, ConsistentRead: true }),
  );
  return out.Item;
}

tokenStoreContract('DynamoDbTokenStore on dynalite', async () => {
  const { store, tableName } = await freshStore();
  return {
    store,
    seedTokens: (records: readonly TokenRecord[]) =>
      batchPut(local.client, tableName, records.map(marshalToken)),
    cleanup: async () => {
      await local.client.send(new DeleteTableCommand({ TableName: tableName }));
    },
  };
});

describe('DynamoDbTokenStore items', () => {
  it('carry kind and schemaVersion, nested objects as maps, numbers as N', async () => {
    // Prepare
    const { store, tableName } = await freshStore();

    // Act
    await store.putState(fullState('alpha', 1), 0);
    await store.putToken(tokenRecord({ tokenId: 't1', claim: { id: 'run', until: NOW } }), 0);

    // Assess
    const state = await rawItem(tableName, 'P#alpha');
    expect(state).toMatchObject({
      kind: { S: 'profile' },
      schemaVersion: { N: String(SCHEMA_VERSION) },
      gen: { N: '1' },
      lease: {
        M: { id: { S: 'lease-1' }, until: { N: String(NOW + 7_000) }, owner: { S: 'instance-a' } },
      },
      lastAttempt: {
        M: { error: { M: { code: { S: 'CRM_UNAVAILABLE' }, retryAfterSeconds: { N: '2' } } } },
      },
    });
    const token = await rawItem(tableName, 'T#t1');
    expect(token).toMatchObject({
      kind: { S: 'token' },
      schemaVersion: { N: String(SCHEMA_VERSION) },
      rev: { N: '1' },
      claim: { M: { id: { S: 'run' }, until: { N: String(NOW) } } },
    });
  });

  it('put dueShard on pending records only, and take it off with dueAt', async () => {
    // Prepare
    const { store, tableName } = await freshStore();
    const pending = tokenRecord({ tokenId: 't1', dueAt: NOW });

    // Act
    await store.putToken(pending, 0);
    const whilePending = await rawItem(tableName, 'T#t1');
    const { dueAt: _dueAt, ...released } = { ...pending, rev: 2, status: 'released' as const };
    await store.putToken(released, 1);
    const afterRelease = await rawItem(tableName, 'T#t1');
    await store.putToken(tokenRecord({ tokenId: 't2' }), 0);

    // Assess
    expect(whilePending).toMatchObject({ dueShard: { S: DUE_SHARD }, dueAt: { N: String(NOW) } });
    expect(afterRelease).not.toHaveProperty('dueShard');
    expect(afterRelease).not.toHaveProperty('dueAt');
    expect(await rawItem(tableName, 'T#t2')).not.toHaveProperty('dueShard');
  });

  it('omit undefined optional attributes instead of writing NULL', async () => {
    // Prepare
    const { store, tableName } = await freshStore();

    // Act
    await store.putState({ profile: 'alpha', gen: 1, current: undefined, takeovers: undefined }, 0);

    // Assess
    expect(Object.keys((await rawItem(tableName, 'P#alpha')) ?? {}).sort()).toEqual([
      'gen',
      'kind',
      'pk',
      'profile',
      'schemaVersion',
    ]);
    expect(await store.getState('alpha')).toStrictEqual({ profile: 'alpha', gen: 1 });
  });

  it('ignore unknown attributes on read', async () => {
    // Prepare
    const { store, tableName } = await freshStore();
    const record = tokenRecord({ tokenId: 't1' });
    await local.client.send(
      new PutItemCommand({
        TableName: tableName,
        Item: { ...marshalToken(record), addedLater: { S: 'x' }, moreLater: { M: {} } },
      }),
    );

    // Act / Assess
    expect(await store.getToken('t1', NOW)).toStrictEqual(record);
  });

  it('with a newer schemaVersion are refused with StoreError', async () => {
    // Prepare
    const { store, tableName } = await freshStore();
    const newer = { N: String(SCHEMA_VERSION + 1) };
    await batchPut(local.client, tableName, [
      {
        pk: { S: 'P#alpha' },
        kind: { S: 'profile' },
        schemaVersion: newer,
        gen: { N: '1' },
        profile: { S: 'alpha' },
      },
      { ...marshalToken(tokenRecord({ tokenId: 't1', dueAt: NOW })), schemaVersion: newer },
    ]);

    // Act / Assess
    await expect(store.getState('alpha')).rejects.toThrow(StoreError);
    await expect(store.getToken('t1', NOW)).rejects.toThrow(/newer/);
    await expect(store.queryPending({ now: NOW })).rejects.toThrow(StoreError);
  });

  it('that are malformed are refused with StoreError naming the attribute, not its value', async () => {
    // Prepare
    const { store, tableName } = await freshStore();
    const item = marshalToken(tokenRecord({ tokenId: 't1' }));
    await batchPut(local.client, tableName, [
      { ...item, status: { S: 'secret-token-in-the-wrong-place' } },
      { ...marshalToken(tokenRecord({ tokenId: 't2' })), rev: { S: 'secret-token-x' } },
      { pk: { S: 'P#alpha' }, kind: { S: 'token' }, schemaVersion: { N: '1' } },
    ]);

    // Act
    const errors = await Promise.all([
      store.getToken('t1', NOW).catch((e: unknown) => e),
      store.getToken('t2', NOW).catch((e: unknown) => e),
      store.getState('alpha').catch((e: unknown) => e),
    ]);

    // Assess
    for (const error of errors) {
      expect(error).toBeInstanceOf(StoreError);
      expect(String((error as Error).message)).not.toMatch(/secret-token/);
    }
    expect((errors[0] as Error).message).toMatch(/status/);
    expect((errors[1] as Error).message).toMatch(/rev/);
    expect((errors[2] as Error).message).toMatch(/kind/);
  });
});

describe('DynamoDbTokenStore reads', () => {
  it('count GetItem items and Query ScannedCount in itemsRead', async () => {
    // Prepare
    const { store, tableName } = await freshStore();
    await store.putState({ profile: 'alpha', gen: 1 }, 0);
    await batchPut(
      local.client,
      tableName,
      Array.from({ length: 7 }, (_, i) =>
        marshalToken(
          tokenRecord({ tokenId: `t${i}`, profile: i >= 5 ? 'alpha' : 'beta', dueAt: NOW - i }),
        ),
      ),
    );

    // Act
    await store.getState('alpha');
    await store.getState('missing');
    const page = await store.queryPending({ now: NOW, profile: 'alpha', limit: 5 });

    // Assess: 1 state + 5 scanned (3 of them filtered out)
    expect(page.records).toHaveLength(2);
    expect(page.itemsRead).toBe(5);
    expect(store.itemsRead).toBe(6);
  });

  it('hand out an opaque base64url cursor and refuse a tampered one', async () => {
    // Prepare
    const { store, tableName } = await freshStore();
    await batchPut(
      local.client,
      tableName,
      [1, 2, 3].map((i) => marshalToken(tokenRecord({ tokenId: `t${i}`, dueAt: NOW - i }))),
    );

    // Act
    const page = await store.queryPending({ now: NOW, limit: 1 });
    const tampered = Buffer.from(JSON.stringify({ pk: 'P#alpha', dueAt: 1 })).toString('base64url');

    // Assess
    expect(page.cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    await expect(store.queryPending({ now: NOW, cursor: tampered })).rejects.toThrow(StoreError);
    await expect(store.queryPending({ now: NOW, limit: 0 })).rejects.toThrow(StoreError);
  });

  it('answer an empty page for a cursor beyond dueBy instead of a ValidationException', async () => {
    // Prepare
    const { store, tableName } = await freshStore();
    await batchPut(
      local.client,
      tableName,
      [1, 2].map((i) => marshalToken(tokenRecord({ tokenId: `t${i}`, dueAt: NOW + i }))),
    );
    const page = await store.queryPending({ now: NOW, limit: 1 });

    // Act
    const next = await store.queryPending({ now: NOW, dueBy: NOW, cursor: page.cursor });

    // Assess
    expect(next).toEqual({ records: [], itemsRead: 0 });
  });
});

describe('DynamoDbTokenStore requests', () => {
  it('use consistent GetItem, conditional PutItem and an ascending index Query', async () => {
    // Prepare
    const client = new DynamoDBClient({ region: 'us-east-1' });
    const mock = mockClient(client);
    mock.on(GetItemCommand).resolves({});
    mock.on(PutItemCommand).resolves({});
    mock.on(QueryCommand).resolves({ Items: [], ScannedCount: 0 });
    const store = new DynamoDbTokenStore({ client, tableName: 'tokens' });

    // Act
    await store.getState('alpha');
    await store.putState({ profile: 'alpha', gen: 1 }, 0);
    await store.putToken(tokenRecord({ tokenId: 't1', rev: 4 }), 3);
    await store.queryPending({ now: NOW, dueBy: NOW, profile: 'alpha', limit: 10 });

    // Assess
    expect(mock).toHaveReceivedCommandWith(GetItemCommand, {
      TableName: 'tokens',
      Key: { pk: { S: 'P#alpha' } },
      ConsistentRead: true,
    });
    expect(mock).toHaveReceivedNthCommandWith(PutItemCommand, 1, {
      ConditionExpression: 'attribute_not_exists(#pk)',
    });
    expect(mock).toHaveReceivedNthCommandWith(PutItemCommand, 2, {
      ConditionExpression: '#version = :expected',
      ExpressionAttributeNames: { '#version': 'rev' },
      ExpressionAttributeValues: { ':expected': { N: '3' } },
    });
    expect(mock).toHaveReceivedCommandWith(QueryCommand, {
      IndexName: DUE_INDEX,
      Limit: 10,
      ScanIndexForward: true,
      KeyConditionExpression: '#shard = :due AND #dueAt <= :dueBy',
      FilterExpression: '#ttl > :nowSec AND #profile = :profile',
    });
    mock.restore();
  });

  it('turn throttling into StoreError with the cause and no token in the message', async () => {
    // Prepare
    const client = new DynamoDBClient({ region: 'us-east-1' });
    const mock = mockClient(client);
    const throttled = new ProvisionedThroughputExceededException({
      message: 'Rate exceeded',
      $metadata: {},
    });
    mock.on(PutItemCommand).rejects(throttled);
    mock.on(GetItemCommand).rejects(throttled);
    mock.on(QueryCommand).rejects(throttled);
    const store = new DynamoDbTokenStore({ client, tableName: 'tokens' });

    // Act
    const errors = await Promise.all([
      store.putState(fullState('alpha', 1), 0).catch((e: unknown) => e),
      store.putToken(tokenRecord({ tokenId: 't1' }), 0).catch((e: unknown) => e),
      store.getToken('t1', NOW).catch((e: unknown) => e),
      store.queryPending({ now: NOW }).catch((e: unknown) => e),
    ]);

    // Assess
    for (const error of errors) {
      expect(error).toBeInstanceOf(StoreError);
      const storeError = error as StoreError;
      expect(storeError.message).toMatch(/ProvisionedThroughputExceededException/);
      expect(storeError.message).not.toMatch(/secret-token/);
      expect(storeError.cause).toBe(throttled);
    }
    mock.restore();
  });

  it('answer false, not an error, for a failed condition', async () => {
    // Prepare
    const client = new DynamoDBClient({ region: 'us-east-1' });
    const mock = mockClient(client);
    mock.on(PutItemCommand).rejects(
      new ConditionalCheckFailedException({
        message: 'The conditional request failed',
        $metadata: {},
      }),
    );
    const store = new DynamoDbTokenStore({ client, tableName: 'tokens' });

    // Act / Assess
    expect(await store.putToken(tokenRecord({ tokenId: 't1' }), 0)).toBe(false);
    mock.restore();
  });

  it('turn a refused item (too large) into StoreError without echoing the item', async () => {
    // Prepare
    const { store } = await freshStore();
    const huge = `secret-token-${'x'.repeat(500 * 1024)}`;

    // Act
    const error = await store
      .putToken(tokenRecord({ tokenId: 't1', token: huge }), 0)
      .catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(StoreError);
    expect((error as Error).message).toMatch(/ValidationException/);
    expect((error as Error).message).not.toMatch(/secret-token/);
  });

  it('turn an unreachable endpoint into StoreError', async () => {
    // Prepare: a port nothing listens on (a closed dynalite)
    const gone = await startDynalite();
    await gone.close();
    const client = new DynamoDBClient({
      endpoint: gone.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      maxAttempts: 1,
    });
    const store = new DynamoDbTokenStore({ client, tableName: gone.tableName });

    // Act
    const error = await store.getState('alpha').catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).cause).toBeInstanceOf(Error);
    client.destroy();
  });
});

describe('ensureTable', () => {
  it('is idempotent and tolerates concurrent creation from several clients', async () => {
    // Prepare
    const tableName = uniqueTableName();
    const other = localDynamoClient(local.endpoint);

    // Act
    await Promise.all([
      ensureTable(local.client, tableName),
      ensureTable(other, tableName),
      ensureTable(other, tableName),
    ]);
    await ensureTable(local.client, tableName);

    // Assess
    const out = await local.client.send(new DescribeTableCommand({ TableName: tableName }));
    expect(out.Table?.TableStatus).toBe('ACTIVE');
    expect(out.Table?.GlobalSecondaryIndexes?.[0]?.IndexName).toBe(DUE_INDEX);
    expect(out.Table?.BillingModeSummary?.BillingMode).toBe('PAY_PER_REQUEST');
    other.destroy();
  });

  it('refuses an existing table with another layout', async () => {
    // Prepare
    const tableName = uniqueTableName();
    const { GlobalSecondaryIndexes: _index, ...withoutIndex } = createTableInput(tableName);
    await local.client.send(
      new CreateTableCommand({
        ...withoutIndex,
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      }),
    );

    // Act / Assess
    await expect(ensureTable(local.client, tableName)).rejects.toThrow(/layout/);
  });

  it('gives up after its timeout when the table never becomes ACTIVE', async () => {
    // Prepare
    const client = new DynamoDBClient({ region: 'us-east-1' });
    const mock = mockClient(client);
    mock.on(DescribeTableCommand).resolves({
      Table: {
        TableName: 't',
        TableStatus: 'CREATING',
        KeySchema: createTableInput('t').KeySchema,
        GlobalSecondaryIndexes: [
          { ...createTableInput('t').GlobalSecondaryIndexes?.[0], IndexStatus: 'CREATING' },
        ],
      },
    });

    // Act / Assess
    await expect(ensureTable(client, 't', { timeoutMs: 50, pollMs: 10 })).rejects.toThrow(/ACTIVE/);
    mock.restore();
  });
});
