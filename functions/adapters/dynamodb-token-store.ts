import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  type PutItemCommandInput,
  QueryCommand,
  type QueryCommandInput,
} from '@aws-sdk/client-dynamodb';
import { StoreError } from '../core/errors.js';
import {
  type CurrentToken,
  type DuePage,
  isPastTtl,
  type PendingQuery,
  type ProfileState,
  type TokenRecord,
  type TokenStatus,
  type TokenStore,
  type VendErrorCode,
} from '../core/types.js';
import { DUE_INDEX, DUE_SHARD, KEY_PREFIX, SCHEMA_VERSION, TABLE } from './table-schema.js';

/** A raw DynamoDB item. */
export type Item = Record<string, AttributeValue>;

export interface DynamoDbTokenStoreOptions {
  /**
   * Built by the composition root (`createDynamoDbClient`). Recommended: `maxAttempts: 3` and
   * short timeouts (`requestHandler: { connectionTimeout: 1000, requestTimeout: 1000 }`), so a
   * store write stays well inside the login lease and a throttled or unreachable table fails
   * fast as a StoreError instead of hanging the vend.
   */
  readonly client: DynamoDBClient;
  readonly tableName: string;
}

const DEFAULT_QUERY_LIMIT = 100;

/**
 * The token store on one DynamoDB table (layout in `table-schema.ts`). Storage calls only:
 * conditional puts for compare-and-swap and a sparse-index query for pending releases. Items are
 * marshalled by hand to keep the Lambda bundle free of lib-dynamodb.
 */
export class DynamoDbTokenStore implements TokenStore {
  private readonly client: DynamoDBClient;
  private readonly tableName: string;
  /** Items read so far: items GetItem returned plus the ScannedCount of every Query. */
  itemsRead = 0;

  constructor(options: DynamoDbTokenStoreOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
  }

  async getState(profile: string): Promise<ProfileState | undefined> {
    const item = await this.getItem(KEY_PREFIX.profile + profile);
    return item ? unmarshalState(item) : undefined;
  }

  async putState(state: ProfileState, expectedGen: number): Promise<boolean> {
    return this.putConditionally(marshalState(state), 'gen', expectedGen);
  }

  async getToken(tokenId: string, now: number): Promise<TokenRecord | undefined> {
    const item = await this.getItem(KEY_PREFIX.token + tokenId);
    if (!item) return undefined;
    const record = unmarshalToken(item);
    // TTL deletes up to days late: an expired item is absent to everyone.
    return isPastTtl(record, now) ? undefined : record;
  }

  async putToken(record: TokenRecord, expectedRev: number): Promise<boolean> {
    return this.putConditionally(marshalToken(record), 'rev', expectedRev);
  }

  async queryPending(options: PendingQuery): Promise<DuePage> {
    const { now, dueBy, profile, limit = DEFAULT_QUERY_LIMIT } = options;
    if (!Number.isInteger(limit) || limit < 1) {
      throw new StoreError('queryPending limit must be a positive integer');
    }
    const start = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
    // DynamoDB refuses a start key outside the key condition; past `dueBy` there is nothing left.
    if (start && dueBy !== undefined && start.dueAt > dueBy) return { records: [], itemsRead: 0 };

    const names: Record<string, string> = {
      '#shard': TABLE.dueShardAttribute,
      '#ttl': TABLE.ttlAttribute,
    };
    const values: Item = { ':due': { S: DUE_SHARD }, ':nowSec': number(now / 1000, 'now') };
    let keyCondition = '#shard = :due';
    if (dueBy !== undefined) {
      names['#dueAt'] = TABLE.dueAtAttribute;
      values[':dueBy'] = number(dueBy, 'dueBy');
      keyCondition += ' AND #dueAt <= :dueBy';
    }
    let filter = '#ttl > :nowSec';
    if (profile !== undefined) {
      names['#profile'] = 'profile';
      values[':profile'] = { S: profile };
      filter += ' AND #profile = :profile';
    }
    const input: QueryCommandInput = {
      TableName: this.tableName,
      IndexName: DUE_INDEX,
      KeyConditionExpression: keyCondition,
      FilterExpression: filter,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
      ScanIndexForward: true,
      Limit: limit,
      ...(start && { ExclusiveStartKey: startKey(start) }),
    };

    const out = await this.client.send(new QueryCommand(input)).catch((error: unknown) => {
      throw this.storeError('Query', error);
    });
    const itemsRead = out.ScannedCount ?? out.Items?.length ?? 0;
    this.itemsRead += itemsRead;
    const records = (out.Items ?? []).map(unmarshalToken);
    const last = out.LastEvaluatedKey;
    return last ? { records, itemsRead, cursor: encodeCursor(last) } : { records, itemsRead };
  }

  private async getItem(pk: string): Promise<Item | undefined> {
    const command = new GetItemCommand({
      TableName: this.tableName,
      Key: { [TABLE.partitionKey]: { S: pk } },
      ConsistentRead: true,
    });
    const out = await this.client.send(command).catch((error: unknown) => {
      throw this.storeError('GetItem', error);
    });
    if (out.Item) this.itemsRead += 1;
    return out.Item;
  }

  /** PutItem if the stored `versionAttribute` equals `expected` (0: no item yet). */
  private async putConditionally(
    item: Item,
    versionAttribute: 'gen' | 'rev',
    expected: number,
  ): Promise<boolean> {
    const condition: Pick<
      PutItemCommandInput,
      'ConditionExpression' | 'ExpressionAttributeNames' | 'ExpressionAttributeValues'
    > =
      expected === 0
        ? {
            ConditionExpression: 'attribute_not_exists(#pk)',
            ExpressionAttributeNames: { '#pk': TABLE.partitionKey },
          }
        : {
            ConditionExpression: '#version = :expected',
            ExpressionAttributeNames: { '#version': versionAttribute },
            ExpressionAttributeValues: { ':expected': number(expected, 'expected version') },
          };
    try {
      await this.client.send(
        new PutItemCommand({ TableName: this.tableName, Item: item, ...condition }),
      );
      return true;
    } catch (error) {
      if (errorName(error) === 'ConditionalCheckFailedException') return false;
      throw this.storeError('PutItem', error);
    }
  }

  /** The message names only the operation and the AWS error, never the item (it may hold a token). */
  private storeError(operation: string, error: unknown): StoreError {
    return new StoreError(
      `DynamoDB ${operation} on ${this.tableName} failed (${errorName(error)})`,
      error,
    );
  }
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : 'UnknownError';
}

// ---------------------------------------------------------------------------------------------
// Marshalling. Optional fields left undefined are omitted, never written as NULL: a record
// without `dueAt` then carries no `dueShard` either and drops out of the sparse index.

/** The item a profile state is stored as. */
export function marshalState(state: ProfileState): Item {
  const item: Item = {
    [TABLE.partitionKey]: { S: KEY_PREFIX.profile + state.profile },
    kind: { S: 'profile' },
    schemaVersion: number(SCHEMA_VERSION, 'schemaVersion'),
    profile: { S: state.profile },
    gen: number(state.gen, 'gen'),
  };
  if (state.current) item.current = { M: marshalCurrent(state.current) };
  if (state.lease) {
    item.lease = {
      M: {
        id: { S: state.lease.id },
        until: number(state.lease.until, 'lease.until'),
        owner: { S: state.lease.owner },
      },
    };
  }
  if (state.authFailure) {
    item.authFailure = {
      M: {
        until: number(state.authFailure.until, 'authFailure.until'),
        version: { S: state.authFailure.version },
      },
    };
  }
  if (state.unavailable) {
    item.unavailable = {
      M: {
        until: number(state.unavailable.until, 'unavailable.until'),
        failures: number(state.unavailable.failures, 'unavailable.failures'),
      },
    };
  }
  if (state.lastAttempt) {
    const attempt: Item = {
      id: { S: state.lastAttempt.id },
      at: number(state.lastAttempt.at, 'lastAttempt.at'),
    };
    const error = state.lastAttempt.error;
    if (error) {
      const errorMap: Item = { code: { S: error.code } };
      optionalNumber(errorMap, 'retryAfterSeconds', error.retryAfterSeconds);
      attempt.error = { M: errorMap };
    }
    item.lastAttempt = { M: attempt };
  }
  optionalNumber(item, 'takeovers', state.takeovers);
  return item;
}

function marshalCurrent(current: CurrentToken): Item {
  return {
    tokenId: { S: current.tokenId },
    token: { S: current.token },
    fingerprint: { S: current.fingerprint },
    issuedAt: number(current.issuedAt, 'current.issuedAt'),
    expiresAt: number(current.expiresAt, 'current.expiresAt'),
    realExpiresAt: number(current.realExpiresAt, 'current.realExpiresAt'),
    secretVersion: { S: current.secretVersion },
  };
}

/** The item a token record is stored as; only a pending record carries the index keys. */
export function marshalToken(record: TokenRecord): Item {
  const item: Item = {
    [TABLE.partitionKey]: { S: KEY_PREFIX.token + record.tokenId },
    kind: { S: 'token' },
    schemaVersion: number(SCHEMA_VERSION, 'schemaVersion'),
    tokenId: { S: record.tokenId },
    rev: number(record.rev, 'rev'),
    profile: { S: record.profile },
    fingerprint: { S: record.fingerprint },
    baseUrl: { S: record.baseUrl },
    issuedAt: number(record.issuedAt, 'issuedAt'),
    expiresAt: number(record.expiresAt, 'expiresAt'),
    realExpiresAt: number(record.realExpiresAt, 'realExpiresAt'),
    secretVersion: { S: record.secretVersion },
    status: { S: record.status },
    attempts: number(record.attempts, 'attempts'),
    [TABLE.ttlAttribute]: number(record.ttl, 'ttl'),
  };
  optionalString(item, 'token', record.token);
  if (record.dueAt !== undefined) {
    item[TABLE.dueAtAttribute] = number(record.dueAt, 'dueAt');
    item[TABLE.dueShardAttribute] = { S: DUE_SHARD };
  }
  optionalString(item, 'dueReason', record.dueReason);
  if (record.claim) {
    item.claim = {
      M: { id: { S: record.claim.id }, until: number(record.claim.until, 'claim.until') },
    };
  }
  optionalNumber(item, 'releasedAt', record.releasedAt);
  optionalString(item, 'outcome', record.outcome);
  return item;
}

/** Reads a profile state item back; refuses items of another kind or a newer schema. */
export function unmarshalState(item: Item): ProfileState {
  const r = new ItemReader(item, 'profile state');
  r.checkHeader('profile');
  return withoutUndefined<ProfileState>({
    profile: r.string('profile'),
    gen: r.number('gen'),
    current: r.optionalMap('current', (m) =>
      withoutUndefined<CurrentToken>({
        tokenId: m.string('tokenId'),
        token: m.string('token'),
        fingerprint: m.string('fingerprint'),
        issuedAt: m.number('issuedAt'),
        expiresAt: m.number('expiresAt'),
        realExpiresAt: m.number('realExpiresAt'),
        secretVersion: m.string('secretVersion'),
      }),
    ),
    lease: r.optionalMap('lease', (m) => ({
      id: m.string('id'),
      until: m.number('until'),
      owner: m.string('owner'),
    })),
    authFailure: r.optionalMap('authFailure', (m) => ({
      until: m.number('until'),
      version: m.string('version'),
    })),
    unavailable: r.optionalMap('unavailable', (m) => ({
      until: m.number('until'),
      failures: m.number('failures'),
    })),
    lastAttempt: r.optionalMap('lastAttempt', (m) =>
      withoutUndefined<NonNullable<ProfileState['lastAttempt']>>({
        id: m.string('id'),
        at: m.number('at'),
        error: m.optionalMap('error', (e) =>
          withoutUndefined<{ code: VendErrorCode; retryAfterSeconds?: number }>({
            code: e.oneOf('code', VEND_ERROR_CODES),
            retryAfterSeconds: e.optionalNumber('retryAfterSeconds'),
          }),
        ),
      }),
    ),
    takeovers: r.optionalNumber('takeovers'),
  });
}

/** Reads a token record item back; refuses items of another kind or a newer schema. */
export function unmarshalToken(item: Item): TokenRecord {
  const r = new ItemReader(item, 'token record');
  r.checkHeader('token');
  return withoutUndefined<TokenRecord>({
    tokenId: r.string('tokenId'),
    rev: r.number('rev'),
    profile: r.string('profile'),
    token: r.optionalString('token'),
    fingerprint: r.string('fingerprint'),
    baseUrl: r.string('baseUrl'),
    issuedAt: r.number('issuedAt'),
    expiresAt: r.number('expiresAt'),
    realExpiresAt: r.number('realExpiresAt'),
    secretVersion: r.string('secretVersion'),
    status: r.oneOf('status', TOKEN_STATUSES),
    dueAt: r.optionalNumber(TABLE.dueAtAttribute),
    dueReason: r.optionalOneOf('dueReason', DUE_REASONS),
    claim: r.optionalMap('claim', (m) => ({ id: m.string('id'), until: m.number('until') })),
    attempts: r.number('attempts'),
    releasedAt: r.optionalNumber('releasedAt'),
    outcome: r.optionalString('outcome'),
    ttl: r.number(TABLE.ttlAttribute),
  });
}

const TOKEN_STATUSES: readonly TokenStatus[] = [
  'live',
  'claimed',
  'released',
  'unsupported',
  'abandoned',
  'not-released',
];
const DUE_REASONS: readonly NonNullable<TokenRecord['dueReason']>[] = [
  'expiry',
  'invalidated',
  'revoked',
  'superseded',
  'shutdown',
];
const VEND_ERROR_CODES: readonly VendErrorCode[] = [
  'CRM_AUTH_FAILED',
  'CRM_UNAVAILABLE',
  'MISCONFIGURED',
  'INTERNAL',
];

function number(value: number, name: string): AttributeValue {
  if (!Number.isFinite(value)) throw new StoreError(`Cannot store ${name}: not a finite number`);
  return { N: String(value) };
}

function optionalNumber(item: Item, name: string, value: number | undefined): void {
  if (value !== undefined) item[name] = number(value, name);
}

function optionalString(item: Item, name: string, value: string | undefined): void {
  if (value !== undefined) item[name] = { S: value };
}

/** Drops keys whose value is undefined, so a read gives back exactly the shape that was written. */
function withoutUndefined<T extends object>(value: T): T {
  // A plain loop: this runs on every warm vend's read, where entries/filter/fromEntries showed.
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = v;
  }
  return out as T;
}

/** Typed access to an item's attributes; any mismatch is a StoreError naming the attribute only. */
class ItemReader {
  constructor(
    private readonly item: Item,
    private readonly what: string,
    private readonly path = '',
  ) {}

  checkHeader(kind: 'profile' | 'token'): void {
    const version = this.number('schemaVersion');
    if (version > SCHEMA_VERSION) {
      throw new StoreError(
        `Stored ${this.what} has schema version ${version}, newer than ${SCHEMA_VERSION}: refusing to read it`,
      );
    }
    if (!Number.isInteger(version) || version < 1) this.fail('schemaVersion', 'is invalid');
    if (this.string('kind') !== kind) this.fail('kind', `is not "${kind}"`);
  }

  string(name: string): string {
    const value = this.optionalString(name);
    if (value === undefined) this.fail(name, 'is missing');
    return value;
  }

  optionalString(name: string): string | undefined {
    const attribute = this.item[name];
    if (attribute === undefined) return undefined;
    if (attribute.S === undefined) this.fail(name, 'is not a string');
    return attribute.S;
  }

  number(name: string): number {
    const value = this.optionalNumber(name);
    if (value === undefined) this.fail(name, 'is missing');
    return value;
  }

  optionalNumber(name: string): number | undefined {
    const attribute = this.item[name];
    if (attribute === undefined) return undefined;
    const value = attribute.N === undefined ? Number.NaN : Number(attribute.N);
    if (!Number.isFinite(value)) this.fail(name, 'is not a number');
    return value;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[]): T {
    const value = this.optionalOneOf(name, allowed);
    if (value === undefined) this.fail(name, 'is missing');
    return value;
  }

  optionalOneOf<T extends string>(name: string, allowed: readonly T[]): T | undefined {
    const value = this.optionalString(name);
    if (value === undefined) return undefined;
    if (!(allowed as readonly string[]).includes(value)) this.fail(name, 'has an unknown value');
    return value as T;
  }

  optionalMap<T>(name: string, read: (reader: ItemReader) => T): T | undefined {
    const attribute = this.item[name];
    if (attribute === undefined) return undefined;
    if (attribute.M === undefined) this.fail(name, 'is not a map');
    return read(new ItemReader(attribute.M, this.what, `${this.path}${name}.`));
  }

  private fail(name: string, problem: string): never {
    throw new StoreError(`Malformed ${this.what}: attribute ${this.path}${name} ${problem}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Cursor: the Query's LastEvaluatedKey (`pk`, `dueAt`; `dueShard` is constant), as base64url JSON.

interface CursorKey {
  readonly pk: string;
  readonly dueAt: number;
}

function encodeCursor(lastKey: Item): string {
  const pk = lastKey[TABLE.partitionKey]?.S;
  const dueAt = Number(lastKey[TABLE.dueAtAttribute]?.N);
  if (pk === undefined || !Number.isFinite(dueAt)) {
    throw new StoreError('DynamoDB Query returned an unexpected LastEvaluatedKey');
  }
  const key: CursorKey = { pk, dueAt };
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): CursorKey {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new StoreError('Malformed queryPending cursor');
  }
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    !('pk' in parsed) ||
    !('dueAt' in parsed) ||
    typeof parsed.pk !== 'string' ||
    !parsed.pk.startsWith(KEY_PREFIX.token) ||
    typeof parsed.dueAt !== 'number' ||
    !Number.isFinite(parsed.dueAt)
  ) {
    throw new StoreError('Malformed queryPending cursor');
  }
  return { pk: parsed.pk, dueAt: parsed.dueAt };
}

function startKey(cursor: CursorKey): Item {
  return {
    [TABLE.partitionKey]: { S: cursor.pk },
    [TABLE.dueShardAttribute]: { S: DUE_SHARD },
    [TABLE.dueAtAttribute]: number(cursor.dueAt, 'cursor'),
  };
}
