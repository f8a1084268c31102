import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreError } from '../../functions/core/errors.js';
import type { ProfileState, TokenRecord, TokenStore } from '../../functions/core/types.js';

export interface StoreUnderTest {
  readonly store: TokenStore;
  readonly cleanup?: () => Promise<void>;
  /** Writes many new records fast (a batch API); defaults to parallel `putToken(r, 0)`. */
  readonly seedTokens?: (records: readonly TokenRecord[]) => Promise<void>;
}

/** A fixed "now" for every test: the store never reads a clock itself. */
export const NOW = Date.parse('2026-01-01T00:00:00Z');
const HOUR = 3_600_000;

/** A live token record due for release at its advertised expiry; `overrides` win. */
export function tokenRecord(overrides: Partial<TokenRecord> & { tokenId: string }): TokenRecord {
  const issuedAt = NOW - 10 * 60_000;
  const realExpiresAt = issuedAt + HOUR;
  return {
    rev: 1,
    profile: 'alpha',
    token: `secret-token-${overrides.tokenId}`,
    fingerprint: 'a1b2c3',
    baseUrl: 'https://tenant.crm.example/crmapi/rest/v2',
    issuedAt,
    expiresAt: realExpiresAt - 10 * 60_000,
    realExpiresAt,
    secretVersion: 'v1',
    status: 'live',
    attempts: 0,
    ttl: Math.floor(realExpiresAt / 1000) + 86_400,
    ...overrides,
  };
}

/** A profile state with every optional part filled in, so a round trip checks each field. */
export function fullState(profile: string, gen: number): ProfileState {
  return {
    profile,
    gen,
    current: {
      tokenId: 'tok-1',
      token: 'secret-token-current',
      fingerprint: 'f00dfa',
      issuedAt: NOW,
      expiresAt: NOW + 50 * 60_000,
      realExpiresAt: NOW + HOUR,
      secretVersion: 'v1',
    },
    lease: { id: 'lease-1', until: NOW + 7_000, owner: 'instance-a' },
    authFailure: { until: NOW + 60_000, version: 'v0' },
    unavailable: { until: NOW + 2_000, failures: 2 },
    lastAttempt: {
      id: 'lease-0',
      at: NOW - 1,
      error: { code: 'CRM_UNAVAILABLE', retryAfterSeconds: 2 },
    },
    takeovers: 1,
  };
}

/** Every record queryPending returns, page by page, with the pages' total itemsRead. */
async function drain(
  store: TokenStore,
  options: { now: number; dueBy?: number; profile?: string; limit?: number },
  betweenPages?: (page: readonly TokenRecord[]) => Promise<void>,
): Promise<{ records: TokenRecord[]; itemsRead: number; pages: number }> {
  const records: TokenRecord[] = [];
  let itemsRead = 0;
  let pages = 0;
  let cursor: string | undefined;
  do {
    const page = await store.queryPending(cursor === undefined ? options : { ...options, cursor });
    pages += 1;
    if (pages > 1_000) throw new Error('queryPending does not terminate');
    records.push(...page.records);
    itemsRead += page.itemsRead;
    cursor = page.cursor;
    if (betweenPages) await betweenPages(page.records);
  } while (cursor !== undefined);
  return { records, itemsRead, pages };
}

const ids = (records: readonly TokenRecord[]): string[] => records.map((r) => r.tokenId);

/** Drops `dueAt`: the record has been released and leaves the sparse index. */
function withoutDue(record: TokenRecord, changes: Partial<TokenRecord> = {}): TokenRecord {
  const { dueAt: _dueAt, dueReason: _dueReason, ...rest } = record;
  return { ...rest, rev: record.rev + 1, ...changes };
}

/**
 * The behaviour every TokenStore must have (memory and DynamoDB alike). Each test gets a fresh,
 * empty store from `makeStore`.
 */
export function tokenStoreContract(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`TokenStore contract: ${name}`, () => {
    let subject: StoreUnderTest;
    let store: TokenStore;

    beforeEach(async () => {
      subject = await makeStore();
      store = subject.store;
    });

    afterEach(async () => {
      await subject.cleanup?.();
    });

    async function seed(records: readonly TokenRecord[]): Promise<void> {
      if (subject.seedTokens) return subject.seedTokens(records);
      const results = await Promise.all(records.map((r) => store.putToken(r, 0)));
      expect(results.every(Boolean)).toBe(true);
    }

    describe('profile state', () => {
      it('is absent until created', async () => {
        // Act / Assess
        expect(await store.getState('alpha')).toBeUndefined();
      });

      it('round-trips a minimal and a full state exactly', async () => {
        // Prepare
        const minimal: ProfileState = { profile: 'alpha', gen: 1 };
        const full = fullState('beta', 1);

        // Act
        expect(await store.putState(minimal, 0)).toBe(true);
        expect(await store.putState(full, 0)).toBe(true);

        // Assess: same shape, no extra or undefined-valued keys
        expect(await store.getState('alpha')).toStrictEqual(minimal);
        expect(await store.getState('beta')).toStrictEqual(full);
      });

      it('creates with expectedGen 0 only once', async () => {
        // Act
        const first = await store.putState({ profile: 'alpha', gen: 1 }, 0);
        const second = await store.putState({ profile: 'alpha', gen: 1, takeovers: 9 }, 0);

        // Assess
        expect(first).toBe(true);
        expect(second).toBe(false);
        expect(await store.getState('alpha')).toStrictEqual({ profile: 'alpha', gen: 1 });
      });

      it('updates only with the stored gen', async () => {
        // Prepare
        await store.putState({ profile: 'alpha', gen: 1 }, 0);

        // Act
        const right = await store.putState(fullState('alpha', 2), 1);
        const stale = await store.putState({ profile: 'alpha', gen: 2 }, 1);
        const ahead = await store.putState({ profile: 'alpha', gen: 4 }, 3);

        // Assess
        expect([right, stale, ahead]).toEqual([true, false, false]);
        expect(await store.getState('alpha')).toStrictEqual(fullState('alpha', 2));
      });

      it('fails an update of a state that does not exist', async () => {
        // Act / Assess
        expect(await store.putState({ profile: 'alpha', gen: 2 }, 1)).toBe(false);
        expect(await store.getState('alpha')).toBeUndefined();
      });

      it('removes optional parts that a later write leaves out', async () => {
        // Prepare
        await store.putState(fullState('alpha', 1), 0);

        // Act
        await store.putState({ profile: 'alpha', gen: 2 }, 1);

        // Assess
        expect(await store.getState('alpha')).toStrictEqual({ profile: 'alpha', gen: 2 });
      });

      it('hands out and takes in copies', async () => {
        // Prepare
        const written = structuredClone(fullState('alpha', 1)) as Mutable<ProfileState>;
        await store.putState(written, 0);

        // Act: mutate what was written and what was read
        (written.lease as Mutable<NonNullable<ProfileState['lease']>>).owner = 'changed';
        const read = (await store.getState('alpha')) as Mutable<ProfileState>;
        (read.current as Mutable<NonNullable<ProfileState['current']>>).token = 'changed';
        read.gen = 99;

        // Assess
        expect(await store.getState('alpha')).toStrictEqual(fullState('alpha', 1));
      });

      it('lets exactly one of 20 concurrent writers with the same expectedGen win', async () => {
        // Prepare
        await store.putState({ profile: 'alpha', gen: 1 }, 0);
        const writers = Array.from({ length: 20 }, (_, i) => ({
          profile: 'alpha',
          gen: 2,
          lease: { id: `lease-${i}`, until: NOW + 7_000, owner: `instance-${i}` },
        }));

        // Act
        const results = await Promise.all(writers.map((state) => store.putState(state, 1)));

        // Assess
        expect(results.filter(Boolean)).toHaveLength(1);
        const winner = writers[results.indexOf(true)];
        expect(await store.getState('alpha')).toStrictEqual(winner);
      });

      it('lets exactly one of 20 concurrent creators win', async () => {
        // Act
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            store.putState({ profile: 'alpha', gen: 1, takeovers: i }, 0),
          ),
        );

        // Assess
        expect(results.filter(Boolean)).toHaveLength(1);
        expect(await store.getState('alpha')).toStrictEqual({
          profile: 'alpha',
          gen: 1,
          takeovers: results.indexOf(true),
        });
      });
    });

    describe('token records', () => {
      it('round-trips a minimal and a full record exactly', async () => {
        // Prepare
        const {
          token: _token,
          dueAt: _dueAt,
          ...minimal
        } = tokenRecord({ tokenId: 'min', status: 'released', dueAt: NOW });
        const full = tokenRecord({
          tokenId: 'full',
          dueAt: NOW + 1_000,
          dueReason: 'invalidated',
          claim: { id: 'run-1', until: NOW + 30_000 },
          status: 'claimed',
          attempts: 2,
          releasedAt: NOW - 5,
          outcome: '',
        });

        // Act
        expect(await store.putToken(minimal, 0)).toBe(true);
        expect(await store.putToken(full, 0)).toBe(true);

        // Assess
        expect(await store.getToken('min', NOW)).toStrictEqual(minimal);
        expect(await store.getToken('full', NOW)).toStrictEqual(full);
        expect(await store.getToken('missing', NOW)).toBeUndefined();
      });

      it('creates with expectedRev 0 only once and updates only with the stored rev', async () => {
        // Prepare
        const record = tokenRecord({ tokenId: 't1' });

        // Act
        const created = await store.putToken(record, 0);
        const recreated = await store.putToken({ ...record, attempts: 5 }, 0);
        const updated = await store.putToken({ ...record, rev: 2, status: 'claimed' }, 1);
        const stale = await store.putToken({ ...record, rev: 2, status: 'released' }, 1);
        const missing = await store.putToken(tokenRecord({ tokenId: 't2', rev: 2 }), 1);

        // Assess
        expect([created, recreated, updated, stale, missing]).toEqual([
          true,
          false,
          true,
          false,
          false,
        ]);
        expect(await store.getToken('t1', NOW)).toStrictEqual({
          ...record,
          rev: 2,
          status: 'claimed',
        });
        expect(await store.getToken('t2', NOW)).toBeUndefined();
      });

      it('hands out and takes in copies', async () => {
        // Prepare
        const original = tokenRecord({ tokenId: 't1', claim: { id: 'c', until: NOW } });
        const written = structuredClone(original) as Mutable<TokenRecord>;
        await store.putToken(written, 0);

        // Act
        written.token = 'changed';
        const read = (await store.getToken('t1', NOW)) as Mutable<TokenRecord>;
        (read.claim as Mutable<NonNullable<TokenRecord['claim']>>).id = 'changed';

        // Assess
        expect(await store.getToken('t1', NOW)).toStrictEqual(original);
      });

      it('hides records past their TTL, from the TTL second on', async () => {
        // Prepare
        const ttl = Math.floor(NOW / 1000) + 60;
        await store.putToken(tokenRecord({ tokenId: 't1', ttl }), 0);

        // Act / Assess
        expect(await store.getToken('t1', ttl * 1000 - 1)).toBeDefined();
        expect(await store.getToken('t1', ttl * 1000)).toBeUndefined();
        expect(await store.getToken('t1', ttl * 1000 + HOUR)).toBeUndefined();
      });

      it('lets exactly one of 20 concurrent writers with the same expectedRev win', async () => {
        // Prepare
        await store.putToken(tokenRecord({ tokenId: 't1' }), 0);

        // Act
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            store.putToken(
              tokenRecord({ tokenId: 't1', rev: 2, claim: { id: `run-${i}`, until: NOW } }),
              1,
            ),
          ),
        );

        // Assess
        expect(results.filter(Boolean)).toHaveLength(1);
        expect((await store.getToken('t1', NOW))?.claim?.id).toBe(`run-${results.indexOf(true)}`);
      });
    });

    describe('queryPending', () => {
      it('returns only records with dueAt, oldest due first', async () => {
        // Prepare: written in shuffled order
        const due = [5, 1, 4, 2, 3].map((n) =>
          tokenRecord({ tokenId: `due-${n}`, dueAt: NOW - n * 1_000 }),
        );
        const settled = [1, 2, 3].map((n) =>
          withoutDue(tokenRecord({ tokenId: `done-${n}` }), { rev: 1, status: 'released' }),
        );
        await seed([...due, ...settled]);

        // Act
        const page = await store.queryPending({ now: NOW });

        // Assess
        expect(ids(page.records)).toEqual(['due-5', 'due-4', 'due-3', 'due-2', 'due-1']);
        expect(page.records[0]).toStrictEqual(due[0]);
        expect(page.cursor).toBeUndefined();
      });

      it('bounds the query by dueBy, inclusively', async () => {
        // Prepare
        await seed([
          tokenRecord({ tokenId: 'past', dueAt: NOW - 1 }),
          tokenRecord({ tokenId: 'now', dueAt: NOW }),
          tokenRecord({ tokenId: 'future', dueAt: NOW + 1 }),
          tokenRecord({ tokenId: 'later', dueAt: NOW + HOUR }),
        ]);

        // Act
        const dueNow = await store.queryPending({ now: NOW, dueBy: NOW });
        const all = await store.queryPending({ now: NOW });

        // Assess: records not yet due are not even read
        expect(ids(dueNow.records)).toEqual(['past', 'now']);
        expect(dueNow.itemsRead).toBe(2);
        expect(ids(all.records)).toEqual(['past', 'now', 'future', 'later']);
      });

      it('filters by profile', async () => {
        // Prepare
        await seed([
          tokenRecord({ tokenId: 'a1', profile: 'alpha', dueAt: NOW - 3 }),
          tokenRecord({ tokenId: 'b1', profile: 'beta', dueAt: NOW - 2 }),
          tokenRecord({ tokenId: 'a2', profile: 'alpha', dueAt: NOW - 1 }),
        ]);

        // Act
        const alpha = await drain(store, { now: NOW, profile: 'alpha' });
        const gamma = await drain(store, { now: NOW, profile: 'gamma' });

        // Assess
        expect(ids(alpha.records)).toEqual(['a1', 'a2']);
        expect(gamma.records).toEqual([]);
      });

      it('leaves out records past their TTL', async () => {
        // Prepare
        const nowSec = Math.floor(NOW / 1000);
        await seed([
          tokenRecord({ tokenId: 'expired', dueAt: NOW - 2, ttl: nowSec }),
          tokenRecord({ tokenId: 'long-expired', dueAt: NOW - 3, ttl: nowSec - 86_400 }),
          tokenRecord({ tokenId: 'alive', dueAt: NOW - 1, ttl: nowSec + 1 }),
        ]);

        // Act
        const page = await store.queryPending({ now: NOW });

        // Assess
        expect(ids(page.records)).toEqual(['alive']);
      });

      it('pages with limit and cursor, visiting every record exactly once', async () => {
        // Prepare
        const records = Array.from({ length: 23 }, (_, i) =>
          tokenRecord({ tokenId: `t${String(i).padStart(2, '0')}`, dueAt: NOW - 100_000 + i * 7 }),
        );
        await seed(records);

        // Act
        const result = await drain(store, { now: NOW, dueBy: NOW, limit: 5 });

        // Assess
        expect(result.pages).toBeGreaterThanOrEqual(5);
        expect(result.pages).toBeLessThanOrEqual(6);
        expect(ids(result.records)).toEqual(ids(records));
        const firstPage = await store.queryPending({ now: NOW, limit: 5 });
        expect(firstPage.records).toHaveLength(5);
        expect(firstPage.cursor).toEqual(expect.any(String));
      });

      it('pages by key, so records released between pages shift nothing', async () => {
        // Prepare
        const records = Array.from({ length: 12 }, (_, i) =>
          tokenRecord({ tokenId: `t${String(i).padStart(2, '0')}`, dueAt: NOW - 1_000 + i }),
        );
        await seed(records);

        // Act: the release job's loop, each page released before the next is read
        const result = await drain(store, { now: NOW, limit: 4 }, async (page) => {
          for (const record of page) {
            expect(
              await store.putToken(withoutDue(record, { status: 'released' }), record.rev),
            ).toBe(true);
          }
        });

        // Assess
        expect(ids(result.records)).toEqual(ids(records));
        expect((await store.queryPending({ now: NOW })).records).toEqual([]);
      });

      it('defaults to pages of 100', async () => {
        // Prepare
        await seed(
          Array.from({ length: 120 }, (_, i) => tokenRecord({ tokenId: `t${i}`, dueAt: NOW - i })),
        );

        // Act
        const first = await store.queryPending({ now: NOW });

        // Assess
        expect(first.records).toHaveLength(100);
        expect(first.itemsRead).toBe(100);
        expect(first.cursor).toBeDefined();
      });

      it('drops a record from the index once its dueAt is removed', async () => {
        // Prepare
        const record = tokenRecord({ tokenId: 't1', dueAt: NOW - 1 });
        await store.putToken(record, 0);
        expect(ids((await store.queryPending({ now: NOW })).records)).toEqual(['t1']);

        // Act
        await store.putToken(withoutDue(record, { status: 'released' }), 1);

        // Assess
        const page = await store.queryPending({ now: NOW });
        expect(page.records).toEqual([]);
        expect(page.itemsRead).toBe(0);
        expect((await store.getToken('t1', NOW))?.status).toBe('released');
      });

      it('moves a record in the index when its dueAt changes', async () => {
        // Prepare
        await seed([
          tokenRecord({ tokenId: 'a', dueAt: NOW + HOUR }),
          tokenRecord({ tokenId: 'b', dueAt: NOW - 10 }),
        ]);

        // Act: invalidated, so due at once
        await store.putToken(
          tokenRecord({ tokenId: 'a', rev: 2, dueAt: NOW - 20, dueReason: 'invalidated' }),
          1,
        );

        // Assess
        expect(ids((await store.queryPending({ now: NOW, dueBy: NOW })).records)).toEqual([
          'a',
          'b',
        ]);
      });

      it('reads the due records, not the table', async () => {
        // Prepare: 1,000 settled records, 30 pending but not yet due, 20 due
        const settled = Array.from({ length: 1_000 }, (_, i) =>
          withoutDue(tokenRecord({ tokenId: `done-${i}` }), { rev: 1, status: 'released' }),
        );
        const notYet = Array.from({ length: 30 }, (_, i) =>
          tokenRecord({ tokenId: `later-${i}`, dueAt: NOW + 60_000 + i }),
        );
        const due = Array.from({ length: 20 }, (_, i) =>
          tokenRecord({ tokenId: `due-${i}`, dueAt: NOW - 60_000 + i }),
        );
        await seed([...settled, ...notYet, ...due]);

        // Act
        const result = await drain(store, { now: NOW, dueBy: NOW });

        // Assess
        expect(ids(result.records)).toEqual(ids(due));
        expect(result.itemsRead).toBeGreaterThanOrEqual(20);
        expect(result.itemsRead).toBeLessThanOrEqual(21);
      });

      it('counts filtered-out records in itemsRead, since reading them is the cost', async () => {
        // Prepare
        await seed([
          tokenRecord({ tokenId: 'a', profile: 'alpha', dueAt: NOW - 2 }),
          tokenRecord({ tokenId: 'b', profile: 'beta', dueAt: NOW - 1 }),
        ]);

        // Act
        const page = await store.queryPending({ now: NOW, profile: 'alpha' });

        // Assess
        expect(ids(page.records)).toEqual(['a']);
        expect(page.itemsRead).toBe(2);
      });

      it('refuses a malformed cursor with StoreError', async () => {
        // Act / Assess
        await expect(
          store.queryPending({ now: NOW, cursor: 'not a cursor!' }),
        ).rejects.toBeInstanceOf(StoreError);
      });
    });
  });
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
