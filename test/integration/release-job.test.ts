import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HttpCrmClient } from '../../functions/adapters/crm-client.js';
import { DynamoDbTokenStore, marshalToken } from '../../functions/adapters/dynamodb-token-store.js';
import { systemClock } from '../../functions/adapters/system-clock.js';
import { ensureTable } from '../../functions/adapters/table-schema.js';
import { ReleaseService } from '../../functions/core/release-service.js';
import type { Settings } from '../../functions/core/settings.js';
import type { SecretSource, TokenRecord } from '../../functions/core/types.js';
import { VendService } from '../../functions/core/vend-service.js';
import {
  type CrmSimulator,
  type SimulatorFault,
  simulatorFingerprint,
  startCrmSimulator,
} from '../../functions/local/crm-simulator.js';
import { batchPut, type LocalDynamo, startDynalite, uniqueTableName } from '../support/dynalite.js';
import { testSettings } from '../support/fakes.js';
import { issuedForDueAt, obtainedRecord, pendingIds } from '../support/release-fixtures.js';

const CRM_TIMEOUT_MS = 300;
const settings: Settings = testSettings({ CRM_TIMEOUT_MS });
const DEMO = {
  kind: 'password',
  username: 'demo',
  password: 'demo',
  organisation: 'DEMO',
} as const;

let dynamo: LocalDynamo;
let simulator: CrmSimulator;
const crm = new HttpCrmClient({ timeoutMs: CRM_TIMEOUT_MS });

beforeAll(async () => {
  [dynamo, simulator] = await Promise.all([
    startDynalite(),
    startCrmSimulator({ tokenLifetimeSeconds: 3600 }),
  ]);
});

afterAll(async () => {
  await Promise.all([simulator?.close(), dynamo?.close()]);
});

beforeEach(() => {
  simulator.reset();
});

async function freshStore(): Promise<{ store: DynamoDbTokenStore; tableName: string }> {
  const tableName = uniqueTableName();
  await ensureTable(dynamo.client, tableName);
  return { store: new DynamoDbTokenStore({ client: dynamo.client, tableName }), tableName };
}

function service(store: DynamoDbTokenStore, overrides: Partial<Settings> = {}): ReleaseService {
  return new ReleaseService({
    store,
    crm,
    clock: systemClock,
    settings: { ...settings, ...overrides },
  });
}

/** `n` tokens really issued by the simulator. */
async function simulatorTokens(n: number): Promise<string[]> {
  const tokens: string[] = [];
  for (let i = 0; i < n; i++) tokens.push((await crm.login(simulator.url, DEMO)).token);
  return tokens;
}

/** Records of `tokens`, due for release `agoMs` ago, against the simulator. */
function dueRecords(prefix: string, tokens: readonly string[], agoMs = 1_000): TokenRecord[] {
  const issuedAt = issuedForDueAt(Date.now() - agoMs, settings);
  return tokens.map((token, i) =>
    obtainedRecord({
      tokenId: `${prefix}-${i}`,
      issuedAt,
      settings,
      token,
      baseUrl: simulator.url,
    }),
  );
}

/** The simulator's processed release calls (OK or INVALID_TOKEN) for each token. */
function releaseCounts(tokens: readonly string[]): number[] {
  const counts = simulator.stats().releaseCountsByToken;
  return tokens.map((t) => counts[simulatorFingerprint(t)] ?? 0);
}

async function statusOf(store: DynamoDbTokenStore, tokenId: string) {
  return (await store.getToken(tokenId, Date.now()))?.status;
}

describe('release job on DynamoDB (dynalite): cost and exactly-once', () => {
  it('reads about the 50 due items of 10,000 and releases exactly those', async () => {
    // Prepare: 50 due, one real token due later, 4,949 pending later, 5,000 already settled
    const { store, tableName } = await freshStore();
    const [future, ...dueTokens] = await simulatorTokens(51);
    const due = dueRecords('due', dueTokens);
    const now = Date.now();
    const futureRecord = obtainedRecord({
      tokenId: 'future',
      issuedAt: now,
      settings,
      token: future as string,
      baseUrl: simulator.url,
    });
    const filler: TokenRecord[] = [];
    for (let i = 0; i < 9_949; i++) {
      const record = obtainedRecord({ tokenId: `filler-${i}`, issuedAt: now - i, settings });
      if (i % 2 === 0) {
        filler.push(record);
      } else {
        const { token: _token, dueAt: _dueAt, dueReason: _reason, ...rest } = record;
        filler.push({ ...rest, rev: 3, status: 'released', releasedAt: now - i });
      }
    }
    await batchPut(dynamo.client, tableName, [...due, futureRecord, ...filler].map(marshalToken));
    const release = service(store);
    const readBefore = store.itemsRead;

    // Act
    const report = await release.runOnce();

    // Assess
    expect(report).toMatchObject({ released: 50, failed: 0, skipped: 0, due: 50 });
    expect(store.itemsRead - readBefore).toBeLessThanOrEqual(55);
    expect(report.itemsRead).toBeLessThanOrEqual(55);
    expect(releaseCounts(dueTokens)).toEqual(dueTokens.map(() => 1));
    expect(Object.keys(simulator.stats().releaseCountsByToken)).toHaveLength(50);
    expect(await store.getToken('future', Date.now())).toStrictEqual(futureRecord);
    const released = await store.getToken('due-7', Date.now());
    expect(released).toMatchObject({ status: 'released', outcome: 'released' });
    expect(released?.token).toBeUndefined();
  }, 30_000);

  it('two concurrent runs release each due token exactly once', async () => {
    // Prepare: two "Lambda instances", each with its own store adapter
    const { store, tableName } = await freshStore();
    const tokens = await simulatorTokens(60);
    await batchPut(dynamo.client, tableName, dueRecords('t', tokens).map(marshalToken));
    const other = new DynamoDbTokenStore({ client: dynamo.client, tableName });

    // Act
    const [a, b] = await Promise.all([service(store).runOnce(), service(other).runOnce()]);

    // Assess
    expect(releaseCounts(tokens)).toEqual(tokens.map(() => 1));
    expect(simulator.stats().releases).toBe(60);
    expect(a.released + b.released).toBe(60);
    expect(a.failed + b.failed).toBe(0);
    expect(await pendingIds(store, Date.now())).toEqual([]);
  });

  it('pages through more due tokens than a page holds as they leave the index', async () => {
    // Prepare: 230 due records (unknown to CRM.COM, so it answers INVALID_TOKEN)
    const { store, tableName } = await freshStore();
    const tokens = Array.from({ length: 230 }, (_, i) => `UNKNOWN-TOKEN-${i}`);
    await batchPut(dynamo.client, tableName, dueRecords('t', tokens).map(marshalToken));

    // Act
    const report = await service(store).runOnce();

    // Assess
    expect(report).toMatchObject({ released: 230, failed: 0, skipped: 0, incomplete: false });
    expect(releaseCounts(tokens)).toEqual(tokens.map(() => 1));
    expect(await pendingIds(store, Date.now())).toEqual([]);
  });
});

describe('release job with the vend path on DynamoDB (dynalite)', () => {
  it('releases an invalidated token on the next run, and neither its successor nor early', async () => {
    // Prepare: a vend and an invalidation through the real store and CRM.COM client
    const { store } = await freshStore();
    const secrets: SecretSource = {
      has: (profile) => profile === 'default',
      get: async () => ({ version: 'v1', credentials: { ...DEMO, baseUrl: simulator.url } }),
      invalidate: () => {},
    };
    const vend = new VendService({ store, secrets, crm, clock: systemClock, settings });
    const first = await vend.getToken('default');
    const second = await vend.invalidate('default', first.token.token);
    expect(second.token.token).not.toBe(first.token.token);

    // Act
    const report = await service(store).runOnce();

    // Assess
    expect(report).toMatchObject({ released: 1, failed: 0, skipped: 0 });
    expect(releaseCounts([first.token.token, second.token.token])).toEqual([1, 0]);
    expect(await store.getToken(first.token.tokenId, Date.now())).toMatchObject({
      status: 'released',
      dueReason: 'invalidated',
    });
    expect(await statusOf(store, second.token.tokenId)).toBe('live');
  });
});

describe('release job against the CRM.COM simulator: injected faults', () => {
  it('counts CRM.COM’s INVALID_TOKEN answer as released', async () => {
    // Prepare
    const { store, tableName } = await freshStore();
    const tokens = await simulatorTokens(2);
    await batchPut(dynamo.client, tableName, dueRecords('t', tokens).map(marshalToken));
    simulator.setFaults({ release: 'invalid-token' });

    // Act
    const report = await service(store).runOnce();

    // Assess
    expect(report).toMatchObject({ released: 2, failed: 0, skipped: 0 });
    expect(await store.getToken('t-0', Date.now())).toMatchObject({
      status: 'released',
      outcome: 'already-invalid',
    });
    expect(releaseCounts(tokens)).toEqual([1, 1]);
  });

  it.each([
    ['not-found', 404],
    ['method-not-allowed', 405],
  ] as const)('records %s as unsupported and never retries it', async (fault, httpStatus) => {
    // Prepare
    const { store, tableName } = await freshStore();
    const tokens = await simulatorTokens(1);
    await batchPut(dynamo.client, tableName, dueRecords('t', tokens).map(marshalToken));
    simulator.setFaults({ release: fault });

    // Act
    const first = await service(store).runOnce();
    const second = await service(store).runOnce();

    // Assess
    expect(first).toMatchObject({ released: 0, failed: 0, skipped: 1 });
    expect(second).toMatchObject({ released: 0, failed: 0, skipped: 0, due: 0 });
    expect(simulator.stats().releaseAttempts).toBe(1);
    const record = await store.getToken('t-0', Date.now());
    expect(record).toMatchObject({ status: 'unsupported', outcome: `http-${httpStatus}` });
    expect(record?.token).toBeUndefined();
  });

  it.each<SimulatorFault>(['unavailable', 'throttle', 'server-error', 'reset'])(
    'retries after a burst of %s, then releases each token once',
    async (fault) => {
      // Prepare
      const { store, tableName } = await freshStore();
      const tokens = await simulatorTokens(5);
      await batchPut(dynamo.client, tableName, dueRecords('t', tokens).map(marshalToken));
      simulator.setFaults({ release: fault, count: 5 });

      // Act
      const during = await service(store).runOnce();
      const after = await service(store).runOnce();

      // Assess
      expect(during).toMatchObject({ released: 0, failed: 5, skipped: 0 });
      expect(after).toMatchObject({ released: 5, failed: 0, skipped: 0 });
      expect(releaseCounts(tokens)).toEqual([1, 1, 1, 1, 1]);
      expect(simulator.stats().releaseAttempts).toBe(10);
      expect(await store.getToken('t-3', Date.now())).toMatchObject({
        status: 'released',
        attempts: 1,
      });
    },
  );

  it('gives up on a hanging release at CRM_TIMEOUT_MS and retries it on the next run', async () => {
    // Prepare: the first two release calls hang
    const { store, tableName } = await freshStore();
    const tokens = await simulatorTokens(4);
    await batchPut(dynamo.client, tableName, dueRecords('t', tokens).map(marshalToken));
    simulator.setFaults({ release: 'hang', count: 2 });
    const started = Date.now();
    const deadline = started + 3_000;

    // Act
    const first = await service(store).runOnce({ deadline });
    const elapsed = Date.now() - started;
    const second = await service(store).runOnce();

    // Assess
    expect(first).toMatchObject({ released: 2, failed: 2, skipped: 0, incomplete: false });
    expect(elapsed).toBeGreaterThanOrEqual(CRM_TIMEOUT_MS - 10);
    expect(elapsed).toBeLessThan(CRM_TIMEOUT_MS + 1_000);
    expect(second).toMatchObject({ released: 2, failed: 0, skipped: 0 });
    expect(releaseCounts(tokens)).toEqual([1, 1, 1, 1]);
  });

  it('honours the time budget while CRM.COM hangs, leaving the rest for the next run', async () => {
    // Prepare: every release hangs; 2 at a time, each takes the whole timeout
    const { store, tableName } = await freshStore();
    const tokens = await simulatorTokens(30);
    await batchPut(dynamo.client, tableName, dueRecords('t', tokens).map(marshalToken));
    simulator.setFaults({ release: 'hang' });
    const started = Date.now();
    const deadline = started + 2_500;

    // Act
    const bounded = await service(store, { releaseConcurrency: 2 }).runOnce({ deadline });
    const finishedAt = Date.now();
    simulator.setFaults({ release: 'none' });
    const rest = await service(store).runOnce();

    // Assess
    expect(finishedAt).toBeLessThanOrEqual(deadline);
    expect(bounded.incomplete).toBe(true);
    expect(bounded.released).toBe(0);
    expect(bounded.failed).toBeGreaterThanOrEqual(2);
    expect(bounded.failed).toBeLessThanOrEqual(12);
    expect(rest).toMatchObject({ released: 30, failed: 0, skipped: 0 });
    expect(releaseCounts(tokens)).toEqual(tokens.map(() => 1));
    expect(await statusOf(store, 't-29')).toBe('released');
  });
});
