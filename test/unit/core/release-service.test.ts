import { describe, expect, it } from 'vitest';
import { MemoryTokenStore } from '../../../functions/adapters/memory-token-store.js';
import { StoreError } from '../../../functions/core/errors.js';
import { fingerprint } from '../../../functions/core/fingerprint.js';
import { ReleaseService } from '../../../functions/core/release-service.js';
import { releaseClaimMillis, type Settings } from '../../../functions/core/settings.js';
import type { TokenRecord, TokenStore } from '../../../functions/core/types.js';
import { VendService } from '../../../functions/core/vend-service.js';
import { FakeClock } from '../../support/fake-clock.js';
import { FakeSecrets, testSettings } from '../../support/fakes.js';
import {
  issuedForDueAt,
  obtainedRecord,
  pendingIds,
  ReleaseCrm,
  seed,
} from '../../support/release-fixtures.js';

function setup(settings: Settings = testSettings(), store: TokenStore = new MemoryTokenStore()) {
  const clock = new FakeClock();
  const crm = new ReleaseCrm(clock, settings.crmTimeoutMs);
  const release = new ReleaseService({ store, crm, clock, settings });
  const make = (overrides: { settings?: Settings; crm?: ReleaseCrm } = {}) =>
    new ReleaseService({
      store,
      crm: overrides.crm ?? crm,
      clock,
      settings: overrides.settings ?? settings,
    });
  return { clock, crm, store, settings, release, make };
}

/** Records whose release is due `agoMs` before now (one per id). */
function dueRecords(
  ids: readonly string[],
  now: number,
  settings: Settings,
  agoMs = 1_000,
  profile = 'default',
): TokenRecord[] {
  return ids.map((tokenId) =>
    obtainedRecord({ tokenId, issuedAt: issuedForDueAt(now - agoMs, settings), settings, profile }),
  );
}

function range(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(3, '0')}`);
}

async function recordOf(store: TokenStore, tokenId: string, now: number) {
  const record = await store.getToken(tokenId, now);
  if (!record) throw new Error(`no record ${tokenId}`);
  return record;
}

describe('ReleaseService.runOnce: what is due (invariant 3)', () => {
  it('releases due tokens and leaves tokens due later untouched', async () => {
    // Prepare
    const { clock, crm, store, settings, release } = setup();
    const now = clock.now();
    const due = dueRecords(['due-a', 'due-b'], now, settings);
    const later = obtainedRecord({ tokenId: 'later', issuedAt: now, settings });
    await seed(store, [...due, later]);

    // Act
    const report = await clock.run(release.runOnce());

    // Assess
    expect(report).toMatchObject({ released: 2, failed: 0, skipped: 0, incomplete: false });
    expect([...crm.callsByToken.keys()].sort()).toEqual(['TOKEN-due-a', 'TOKEN-due-b']);
    expect(await store.getToken('later', clock.now())).toStrictEqual(later);
  });

  it('never calls release before dueAt, and releases on the run at or after it', async () => {
    // Prepare
    const { clock, crm, store, settings, release } = setup();
    const record = obtainedRecord({ tokenId: 't1', issuedAt: clock.now(), settings });
    const dueAt = record.dueAt as number;
    expect(dueAt).toBe(record.expiresAt);
    await seed(store, [record]);

    // Act: a run every second up to 1 ms before dueAt, then one at dueAt
    await clock.advance(dueAt - clock.now() - 5_001);
    const early: number[] = [];
    for (let i = 0; i < 5; i++) {
      await clock.advance(1_000);
      early.push(crm.releaseCalls);
      await clock.run(release.runOnce());
    }
    await clock.advance(dueAt - 1 - clock.now());
    const lastEarly = await clock.run(release.runOnce());
    await clock.advance(1);
    const onTime = await clock.run(release.runOnce());

    // Assess
    expect(early.every((n) => n === 0)).toBe(true);
    expect(lastEarly).toMatchObject({ released: 0, failed: 0, skipped: 0, due: 0 });
    expect(onTime).toMatchObject({ released: 1, due: 1 });
    expect(crm.callTimes).toEqual([{ token: 'TOKEN-t1', at: dueAt }]);
  });

  it('removes the token value after release, keeps the fingerprint, and leaves the index', async () => {
    // Prepare
    const { clock, store, settings, release } = setup();
    const [record] = dueRecords(['t1'], clock.now(), settings);
    await seed(store, [record as TokenRecord]);

    // Act
    await clock.run(release.runOnce());

    // Assess
    const after = await recordOf(store, 't1', clock.now());
    expect(after.token).toBeUndefined();
    expect(after.fingerprint).toBe(fingerprint('TOKEN-t1'));
    expect(after).toMatchObject({ status: 'released', outcome: 'released' });
    expect(after.dueAt).toBeUndefined();
    expect(after.claim).toBeUndefined();
    expect(after.releasedAt).toBe(clock.now());
    expect(await pendingIds(store, clock.now())).toEqual([]);
    expect(JSON.stringify(after)).not.toContain('TOKEN-t1');
  });

  it('releases the token an invalidation made due, on the next run, and not its successor', async () => {
    // Prepare: a vended token, then invalidated (CRM.COM rejected it)
    const settings = testSettings();
    const { clock, crm, store, make } = setup(settings);
    const vend = new VendService({
      store,
      secrets: new FakeSecrets(['default']),
      crm,
      clock,
      settings,
      random: () => 0.5,
    });
    const first = await clock.run(vend.getToken('default'));
    await clock.advance(2_000);
    const second = await clock.run(vend.invalidate('default', first.token.token));
    expect(second.token.token).not.toBe(first.token.token);

    // Act
    const report = await clock.run(make().runOnce());

    // Assess
    expect(report).toMatchObject({ released: 1, failed: 0, skipped: 0 });
    expect([...crm.callsByToken.keys()]).toEqual([first.token.token]);
    const old = await recordOf(store, first.token.tokenId, clock.now());
    expect(old).toMatchObject({ status: 'released', dueReason: 'invalidated' });
    const current = await recordOf(store, second.token.tokenId, clock.now());
    expect(current).toMatchObject({ status: 'live', token: second.token.token });
  });

  it('ignores records past their TTL that TTL has not deleted yet', async () => {
    // Prepare
    const { clock, crm, store, settings, release } = setup();
    const [record] = dueRecords(['t1'], clock.now(), settings);
    await seed(store, [{ ...(record as TokenRecord), ttl: Math.floor(clock.now() / 1000) }]);

    // Act
    const report = await clock.run(release.runOnce());

    // Assess
    expect(report).toMatchObject({ released: 0, failed: 0, skipped: 0, due: 0 });
    expect(crm.releaseCalls).toBe(0);
  });
});

describe('ReleaseService.runOnce: outcomes and summary (invariant 4, §5)', () => {
  it('counts released, failed and skipped as §5 defines them', async () => {
    // Prepare
    const { clock, crm, store, settings, release } = setup();
    const now = clock.now();
    const records = dueRecords(
      ['ok', 'invalid', 'r404', 'r405', 'timeout', 'r429', 'r503'],
      now,
      settings,
    );
    const [other] = dueRecords(['claimed'], now, settings);
    const claimedByOther: TokenRecord = {
      ...(other as TokenRecord),
      rev: 2,
      status: 'claimed',
      claim: { id: 'other-run', until: now + 3_000 },
    };
    await seed(store, [...records, claimedByOther]);
    crm.outcomes.set('TOKEN-invalid', { kind: 'already-invalid', crmCode: 'INVALID_TOKEN' });
    crm.outcomes.set('TOKEN-r404', { kind: 'unsupported', httpStatus: 404 });
    crm.outcomes.set('TOKEN-r405', { kind: 'unsupported', httpStatus: 405 });
    crm.outcomes.set('TOKEN-timeout', { kind: 'retry', reason: 'timeout' });
    crm.outcomes.set('TOKEN-r429', { kind: 'retry', reason: 'throttled (HTTP 429)' });
    crm.outcomes.set('TOKEN-r503', { kind: 'retry', reason: 'server-error (HTTP 503)' });

    // Act
    const report = await clock.run(release.runOnce());

    // Assess
    expect({ released: report.released, failed: report.failed, skipped: report.skipped }).toEqual({
      released: 2,
      failed: 3,
      skipped: 3,
    });
    expect(crm.callsByToken.has('TOKEN-claimed')).toBe(false);
    const statuses = Object.fromEntries(
      await Promise.all(
        ['ok', 'invalid', 'r404', 'r405', 'timeout', 'r429', 'r503', 'claimed'].map(
          async (id) => [id, (await recordOf(store, id, clock.now())).status] as const,
        ),
      ),
    );
    expect(statuses).toEqual({
      ok: 'released',
      invalid: 'released',
      r404: 'unsupported',
      r405: 'unsupported',
      timeout: 'live',
      r429: 'live',
      r503: 'live',
      claimed: 'claimed',
    });
  });

  it('records an unsupported release and does not try it again', async () => {
    // Prepare
    const { clock, crm, store, settings, release } = setup();
    await seed(store, dueRecords(['t1'], clock.now(), settings));
    crm.releaseOutcome = { kind: 'unsupported', httpStatus: 404 };

    // Act
    const first = await clock.run(release.runOnce());
    await clock.advance(settings.releaseIntervalSeconds * 1000);
    const second = await clock.run(release.runOnce());

    // Assess
    expect(first).toMatchObject({ released: 0, failed: 0, skipped: 1 });
    expect(second).toMatchObject({ released: 0, failed: 0, skipped: 0, due: 0 });
    expect(crm.callsByToken.get('TOKEN-t1')).toBe(1);
    const record = await recordOf(store, 't1', clock.now());
    expect(record).toMatchObject({ status: 'unsupported', outcome: 'http-404' });
    expect(record.token).toBeUndefined();
    expect(record.dueAt).toBeUndefined();
  });

  it('retries a failed release on later runs, counting attempts, and releases it once', async () => {
    // Prepare
    const { clock, crm, store, settings, release } = setup();
    await seed(store, dueRecords(['t1'], clock.now(), settings));
    crm.outcomes.set('TOKEN-t1', [
      { kind: 'retry', reason: 'timeout' },
      { kind: 'retry', reason: 'server-error (HTTP 503)' },
      { kind: 'released' },
    ]);

    // Act
    const reports = [];
    const attempts = [];
    for (let run = 0; run < 4; run++) {
      reports.push(await clock.run(release.runOnce()));
      attempts.push((await recordOf(store, 't1', clock.now())).attempts);
      await clock.advance(settings.releaseIntervalSeconds * 1000);
    }

    // Assess
    expect(reports.map((r) => [r.released, r.failed, r.skipped])).toEqual([
      [0, 1, 0],
      [0, 1, 0],
      [1, 0, 0],
      [0, 0, 0],
    ]);
    expect(attempts).toEqual([1, 2, 2, 2]);
    expect(crm.callsByToken.get('TOKEN-t1')).toBe(3);
    expect(crm.successesByToken.get('TOKEN-t1')).toBe(1);
    expect((await recordOf(store, 't1', clock.now())).status).toBe('released');
  });

  it('keeps retrying until the real expiry has passed, then records the token abandoned', async () => {
    // Prepare: due 1 s ago, so its real expiry is RELEASE_LEAD_SECONDS − 1 s away
    const { clock, crm, store, settings, release } = setup();
    const [record] = dueRecords(['t1'], clock.now(), settings);
    const realExpiresAt = (record as TokenRecord).realExpiresAt;
    await seed(store, [record as TokenRecord]);
    crm.releaseOutcome = { kind: 'retry', reason: 'server-error (HTTP 503)' };

    // Act: a run every interval until well past the real expiry
    const verdicts: { at: number; failed: number; calls: number }[] = [];
    while (clock.now() < realExpiresAt + 3 * settings.releaseIntervalSeconds * 1000) {
      const before = crm.releaseCalls;
      const report = await clock.run(release.runOnce());
      verdicts.push({ at: clock.now(), failed: report.failed, calls: crm.releaseCalls - before });
      await clock.advance(settings.releaseIntervalSeconds * 1000);
    }

    // Assess
    const beforeExpiry = verdicts.filter((v) => v.at < realExpiresAt);
    expect(beforeExpiry.length).toBeGreaterThanOrEqual(3);
    expect(beforeExpiry.every((v) => v.calls === 1 && v.failed === 1)).toBe(true);
    const afterExpiry = verdicts.filter((v) => v.at >= realExpiresAt);
    expect(afterExpiry[0]).toMatchObject({ failed: 1, calls: 0 });
    expect(afterExpiry.slice(1).every((v) => v.failed === 0 && v.calls === 0)).toBe(true);
    const after = await recordOf(store, 't1', clock.now());
    expect(after).toMatchObject({ status: 'abandoned', attempts: beforeExpiry.length });
    expect(after.token).toBeUndefined();
    expect(after.fingerprint).toBe(fingerprint('TOKEN-t1'));
    expect(await pendingIds(store, clock.now())).toEqual([]);
  });

  it('abandons a token whose real expiry passes during a failing release call', async () => {
    // Prepare: the real expiry falls inside the release call
    const { clock, crm, store, settings, release } = setup();
    const [record] = dueRecords(
      ['t1'],
      clock.now(),
      settings,
      settings.releaseLeadSeconds * 1000 - 20,
    );
    await seed(store, [record as TokenRecord]);
    crm.releaseOutcome = { kind: 'retry', reason: 'timeout' };

    // Act
    const report = await clock.run(release.runOnce());

    // Assess
    expect(report).toMatchObject({ released: 0, failed: 1, skipped: 0 });
    expect((await recordOf(store, 't1', clock.now())).status).toBe('abandoned');
  });

  it('retries a release the CRM client threw on, like a failed one', async () => {
    // Prepare
    const { clock, crm, store, settings, release } = setup();
    await seed(store, dueRecords(['t1'], clock.now(), settings));
    crm.release = async () => {
      throw new Error('socket hang up');
    };

    // Act
    const report = await clock.run(release.runOnce());

    // Assess
    expect(report).toMatchObject({ released: 0, failed: 1, skipped: 0 });
    expect(await recordOf(store, 't1', clock.now())).toMatchObject({ status: 'live', attempts: 1 });
  });
});

describe('ReleaseService: at most one release per token (invariant 4)', () => {
  it('two concurrent runs on one store release each token exactly once', async () => {
    // Prepare
    const { clock, crm, store, settings, make } = setup();
    const ids = range('t', 40);
    await seed(store, dueRecords(ids, clock.now(), settings));

    // Act
    const [a, b] = await clock.run(Promise.all([make().runOnce(), make().runOnce()]));

    // Assess
    expect(ids.map((id) => crm.callsByToken.get(`TOKEN-${id}`))).toEqual(ids.map(() => 1));
    expect((a?.released ?? 0) + (b?.released ?? 0)).toBe(40);
    expect((a?.skipped ?? 0) + (b?.skipped ?? 0)).toBe(40);
    expect(await pendingIds(store, clock.now())).toEqual([]);
  });

  it('a crashed run’s claim is retried by the next run after it expires, not before', async () => {
    // Prepare: the first run claims the token, then never returns (the process died)
    const settings = testSettings();
    const { clock, crm, store, make } = setup(settings);
    await seed(store, dueRecords(['t1'], clock.now(), settings));
    const crashing = new ReleaseCrm(clock, settings.crmTimeoutMs);
    crashing.releaseOutcome = { kind: 'released' };
    crashing.outcomes.set('TOKEN-t1', { kind: 'hang' });
    const claimedAt = clock.now();
    void make({ crm: crashing }).runOnce();
    await clock.advance(0);
    expect((await recordOf(store, 't1', clock.now())).status).toBe('claimed');

    // Act
    await clock.advance(releaseClaimMillis(settings) - 1);
    const before = await clock.run(make().runOnce());
    await clock.advance(claimedAt + releaseClaimMillis(settings) - clock.now());
    const after = await clock.run(make().runOnce());

    // Assess
    expect(before).toMatchObject({ released: 0, failed: 0, skipped: 1 });
    expect(after).toMatchObject({ released: 1, failed: 0, skipped: 0 });
    expect(crm.callsByToken.get('TOKEN-t1')).toBe(1);
    const record = await recordOf(store, 't1', clock.now());
    expect(record).toMatchObject({ status: 'released' });
    expect(record.claim).toBeUndefined();
  });

  it('pages through more due tokens than a page holds while records leave the index', async () => {
    // Prepare: 250 due tokens, every 7th one failing (it stays in the index)
    const { clock, crm, store, settings, release } = setup();
    const ids = range('t', 250);
    await seed(store, dueRecords(ids, clock.now(), settings));
    for (const id of ids.filter((_, i) => i % 7 === 0)) {
      crm.outcomes.set(`TOKEN-${id}`, { kind: 'retry', reason: 'timeout' });
    }
    const failing = ids.filter((_, i) => i % 7 === 0).length;

    // Act
    const report = await clock.run(release.runOnce());

    // Assess
    expect(ids.map((id) => crm.callsByToken.get(`TOKEN-${id}`))).toEqual(ids.map(() => 1));
    expect(report).toMatchObject({ released: 250 - failing, failed: failing, skipped: 0 });
    expect(report.due).toBe(250);
    expect(report.itemsRead).toBeLessThanOrEqual(250 + 3);
  });

  it('completes the record after a release even when the store fails once', async () => {
    // Prepare: the write that records the outcome fails once
    const inner = new MemoryTokenStore();
    let failNextFinish = true;
    const flaky: TokenStore = {
      getState: (p) => inner.getState(p),
      putState: (s, g) => inner.putState(s, g),
      getToken: (id, now) => inner.getToken(id, now),
      queryPending: (o) => inner.queryPending(o),
      putToken: async (record, rev) => {
        if (record.status === 'released' && failNextFinish) {
          failNextFinish = false;
          throw new StoreError('DynamoDB PutItem on table failed (InternalServerError)');
        }
        return inner.putToken(record, rev);
      },
    };
    const { clock, crm, settings, release } = setup(testSettings(), flaky);
    await seed(inner, dueRecords(['t1'], clock.now(), settings));

    // Act
    const report = await clock.run(release.runOnce());

    // Assess
    expect(report).toMatchObject({ released: 1, failed: 0, skipped: 0 });
    expect(crm.callsByToken.get('TOKEN-t1')).toBe(1);
    const record = await recordOf(inner, 't1', clock.now());
    expect(record.status).toBe('released');
    expect(record.token).toBeUndefined();
    expect(await pendingIds(inner, clock.now())).toEqual([]);
  });
});

describe('ReleaseService with RELEASE_ENABLED=false', () => {
  it('makes no release call at all, and tokens then obtained never enter the index', async () => {
    // Prepare: records from when release was enabled, then the setting turned off
    const enabled = testSettings();
    const disabled = testSettings({ RELEASE_ENABLED: false });
    const { clock, crm, store, make } = setup(enabled);
    await seed(store, dueRecords(['old-1', 'old-2'], clock.now(), enabled));
    const release = make({ settings: disabled });
    const vend = new VendService({
      store,
      secrets: new FakeSecrets(['default']),
      crm,
      clock,
      settings: disabled,
    });

    // Act
    const vended = await clock.run(vend.getToken('default'));
    const run = await clock.run(release.runOnce());
    await clock.advance(vended.token.realExpiresAt - clock.now() + 1);
    const later = await clock.run(release.runOnce());
    const revoked = await clock.run(release.revokeProfile('default'));
    const all = await clock.run(release.releaseAll());

    // Assess
    expect(crm.releaseCalls).toBe(0);
    expect(run).toMatchObject({ released: 0, failed: 0, skipped: 2 });
    expect(later).toMatchObject({ released: 0, failed: 0, skipped: 0, due: 0 });
    expect([revoked.released, all.released, all.due]).toEqual([0, 0, 0]);
    const record = await recordOf(store, vended.token.tokenId, vended.token.issuedAt);
    expect(record.dueAt).toBeUndefined();
    expect((await recordOf(store, 'old-1', clock.now())).status).toBe('not-released');
  });
});

describe('ReleaseService.revokeProfile and releaseAll', () => {
  function vendSetup() {
    const settings = testSettings({ MEMORY_CACHE_SECONDS: 1 });
    const base = setup(settings);
    const vend = new VendService({
      store: base.store,
      secrets: new FakeSecrets(['default', 'other']),
      crm: base.crm,
      clock: base.clock,
      settings,
      random: () => 0.5,
    });
    return { ...base, vend };
  }

  it('releases every live token of the profile now and makes the next vend log in', async () => {
    // Prepare: default has an older token (refreshed ahead, not yet due) and a current one
    const { clock, crm, store, release, vend, settings } = vendSetup();
    const old = await clock.run(vend.getToken('default'));
    const otherToken = await clock.run(vend.getToken('other'));
    await clock.advance(
      old.token.expiresAt - clock.now() - settings.refreshAheadSeconds * 1000 + 1,
    );
    const current = await clock.run(vend.getToken('default'));
    expect(current.token.token).not.toBe(old.token.token);
    expect(clock.now()).toBeLessThan(old.token.expiresAt);
    const loginsBefore = crm.logins;

    // Act
    const report = await clock.run(release.revokeProfile('default'));
    await clock.advance(settings.memoryCacheSeconds * 1000);
    const next = await clock.run(vend.getToken('default'));

    // Assess
    expect(report).toMatchObject({ released: 2, failed: 0, skipped: 0, clearedCurrent: true });
    expect(new Set(crm.callsByToken.keys())).toEqual(
      new Set([old.token.token, current.token.token]),
    );
    for (const token of [old.token, current.token]) {
      const record = await recordOf(store, token.tokenId, clock.now());
      expect(record).toMatchObject({ status: 'released', dueReason: 'revoked' });
      expect(record.token).toBeUndefined();
    }
    expect(crm.logins).toBe(loginsBefore + 1);
    expect(next.source).toBe('login');
    expect([old.token.token, current.token.token]).not.toContain(next.token.token);
    const untouched = await recordOf(store, otherToken.token.tokenId, clock.now());
    expect(untouched).toMatchObject({ status: 'live', token: otherToken.token.token });
    expect((await store.getState('other'))?.current?.tokenId).toBe(otherToken.token.tokenId);
  });

  it('does not release a token that became current after the revocation began', async () => {
    // Prepare: a vend logs in while the revocation reads the index
    const { clock, crm, store, vend } = vendSetup();
    const revoked = await clock.run(vend.getToken('default'));
    await clock.advance(2_000);
    const inner = store as MemoryTokenStore;
    let fresh: Promise<unknown> | undefined;
    const racing: TokenStore = {
      getState: (p) => inner.getState(p),
      putState: (s, g) => inner.putState(s, g),
      getToken: (id, now) => inner.getToken(id, now),
      putToken: (r, rev) => inner.putToken(r, rev),
      queryPending: async (o) => {
        fresh ??= (async () => {
          await clock.advance(1_500);
          return vend.getToken('default');
        })();
        await fresh;
        return inner.queryPending(o);
      },
    };
    const racingRelease = new ReleaseService({
      store: racing,
      crm,
      clock,
      settings: testSettings({ MEMORY_CACHE_SECONDS: 1 }),
    });

    // Act
    const report = await clock.run(racingRelease.revokeProfile('default'));

    // Assess
    const state = await store.getState('default');
    const current = state?.current;
    expect(current?.tokenId).not.toBe(revoked.token.tokenId);
    expect(report.released).toBe(1);
    expect([...crm.callsByToken.keys()]).toEqual([revoked.token.token]);
    expect(await recordOf(store, current?.tokenId ?? '', clock.now())).toMatchObject({
      status: 'live',
    });
  });

  it('a login in flight when the revocation begins never vends a revoked token', async () => {
    // Prepare: a cold vend is logging in (lease held) when the operator revokes
    const { clock, crm, store, release, vend } = vendSetup();
    crm.latencyMs = 200;
    const vending = vend.getToken('default');
    await clock.advance(50);
    expect((await store.getState('default'))?.lease).toBeDefined();

    // Act
    const [vended, report] = await clock.run(
      Promise.all([vending, release.revokeProfile('default')]),
    );
    await clock.run(release.runOnce());

    // Assess: whatever the vend got is live and current; the pre-revocation token is released
    expect(crm.callsByToken.has(vended.token.token)).toBe(false);
    expect((await store.getState('default'))?.current?.tokenId).toBe(vended.token.tokenId);
    expect(await recordOf(store, vended.token.tokenId, clock.now())).toMatchObject({
      status: 'live',
    });
    expect(crm.logins).toBe(2);
    expect(crm.callsByToken.size).toBe(1);
    expect(report.failed).toBe(0);
  });

  it('releaseAll releases every live token of every profile, due or not', async () => {
    // Prepare
    const { clock, crm, store, settings, release } = setup();
    const now = clock.now();
    await seed(store, [
      ...dueRecords(['due'], now, settings),
      obtainedRecord({ tokenId: 'fresh-a', issuedAt: now, settings, profile: 'a' }),
      obtainedRecord({ tokenId: 'fresh-b', issuedAt: now - 5_000, settings, profile: 'b' }),
    ]);

    // Act
    const report = await clock.run(release.releaseAll());

    // Assess
    expect(report).toMatchObject({ released: 3, failed: 0, skipped: 0, incomplete: false });
    expect(crm.callsByToken.size).toBe(3);
    expect((await recordOf(store, 'fresh-a', clock.now())).dueReason).toBe('shutdown');
    expect(await pendingIds(store, clock.now())).toEqual([]);
  });
});

describe('ReleaseService bounded work (invariant 9, issue §5)', () => {
  it('stops claiming before the deadline, reports incomplete, and leaves the rest', async () => {
    // Prepare: 30 due tokens, each release taking the whole CRM timeout, 2 at a time
    const settings = testSettings({ RELEASE_CONCURRENCY: 2 });
    const { clock, crm, store, release } = setup(settings);
    const ids = range('t', 30);
    await seed(store, dueRecords(ids, clock.now(), settings));
    crm.releaseLatencyMs = settings.crmTimeoutMs;
    const start = clock.now();
    const deadline = start + 5_000;

    // Act
    const report = await clock.run(release.runOnce({ deadline }));
    const finishedAt = clock.now();
    const rest = await clock.run(release.runOnce());

    // Assess
    expect(finishedAt).toBeLessThanOrEqual(deadline);
    expect(report.incomplete).toBe(true);
    expect(report.released).toBeGreaterThan(0);
    expect(report.released).toBeLessThan(30);
    expect(report.released % 2).toBe(0);
    const lastStart = Math.max(...crm.callTimes.slice(0, report.released).map((c) => c.at));
    expect(lastStart + settings.crmTimeoutMs).toBeLessThanOrEqual(deadline);
    expect(rest).toMatchObject({ released: 30 - report.released, incomplete: false });
    expect(ids.map((id) => crm.callsByToken.get(`TOKEN-${id}`))).toEqual(ids.map(() => 1));
  });

  it('a deadline already too close claims nothing and leaves every token live', async () => {
    // Prepare
    const { clock, crm, store, settings, release } = setup();
    await seed(store, dueRecords(['t1', 't2'], clock.now(), settings));

    // Act
    const report = await clock.run(
      release.runOnce({ deadline: clock.now() + settings.crmTimeoutMs }),
    );

    // Assess
    expect(report).toMatchObject({ released: 0, failed: 0, skipped: 0, incomplete: true });
    expect(crm.releaseCalls).toBe(0);
    expect((await recordOf(store, 't1', clock.now())).status).toBe('live');
  });

  it.each([
    [3, 3],
    [10, 10],
  ])('RELEASE_CONCURRENCY=%i bounds the release calls in flight', async (concurrency, max) => {
    // Prepare
    const settings = testSettings({ RELEASE_CONCURRENCY: concurrency });
    const { clock, crm, store, release } = setup(settings);
    await seed(store, dueRecords(range('t', 35), clock.now(), settings));

    // Act
    const report = await clock.run(release.runOnce());

    // Assess
    expect(report.released).toBe(35);
    expect(crm.maxInFlight).toBe(max);
  });
});
