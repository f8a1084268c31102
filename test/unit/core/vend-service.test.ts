import { describe, expect, it } from 'vitest';
import { MemoryTokenStore } from '../../../functions/adapters/memory-token-store.js';
import { StoreError, VendorError } from '../../../functions/core/errors.js';
import { fingerprint } from '../../../functions/core/fingerprint.js';
import { leaseMillis, type Settings } from '../../../functions/core/settings.js';
import type { TokenRecord } from '../../../functions/core/types.js';
import { VendService } from '../../../functions/core/vend-service.js';
import { FakeClock } from '../../support/fake-clock.js';
import { FakeCrm, FakeSecrets, testSettings } from '../../support/fakes.js';

function setup(settings: Settings = testSettings()) {
  const clock = new FakeClock();
  const store = new MemoryTokenStore();
  const crm = new FakeCrm(clock, settings.crmTimeoutMs);
  const secrets = new FakeSecrets(['default', 'other']);
  const make = (instanceId: string) =>
    new VendService({ store, secrets, crm, clock, settings, instanceId, random: () => 0.5 });
  return { clock, store, crm, secrets, settings, service: make('a'), make };
}

async function errorOf(promise: Promise<unknown>): Promise<VendorError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof VendorError) return error;
    throw error;
  }
  throw new Error('expected a VendorError');
}

function recordOf(store: MemoryTokenStore, token: string): TokenRecord | undefined {
  return store.allTokens().find((r) => r.fingerprint === fingerprint(token));
}

describe('VendService single flight (invariant 1)', () => {
  it('100 concurrent cold requests cause exactly one login and share its token', async () => {
    // Prepare
    const { clock, crm, service } = setup();
    // Act
    const results = await clock.run(
      Promise.all(Array.from({ length: 100 }, () => service.getToken('default'))),
    );
    // Assess
    expect(crm.loginAttempts).toBe(1);
    expect(new Set(results.map((r) => r.token.token)).size).toBe(1);
  });

  it('two instances sharing one store and racing log in once', async () => {
    const { clock, crm, make } = setup();
    const a = make('a');
    const b = make('b');
    const results = await clock.run(
      Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).getToken('default'))),
    );
    expect(crm.loginAttempts).toBe(1);
    expect(new Set(results.map((r) => r.token.token)).size).toBe(1);
  });

  it('a waiter takes over once a dead holder’s lease lapses, with one login', async () => {
    const { clock, store, crm, service, settings } = setup();
    // A holder on another instance took the lease and died before writing anything back.
    const now = clock.now();
    await store.putState(
      {
        profile: 'default',
        gen: 1,
        lease: { id: 'dead', until: now + leaseMillis(settings), owner: 'dead' },
      },
      0,
    );
    const result = await clock.run(service.getToken('default'));
    expect(crm.loginAttempts).toBe(1);
    expect(clock.now()).toBeGreaterThanOrEqual(now + leaseMillis(settings));
    expect((await store.getState('default'))?.takeovers).toBe(1);
    expect(result.source).toBe('login');
  });

  it('waiters on another instance share the holder’s error instead of logging in', async () => {
    const { clock, crm, make } = setup(testSettings({ UNAVAILABLE_BACKOFF_SECONDS: 0 }));
    crm.behaviour = { kind: 'unavailable' };
    crm.latencyMs = 500;
    const a = make('a');
    const b = make('b');
    const first = a.getToken('default').catch((e: unknown) => e);
    const second = (async () => {
      await clock.sleep(50); // b arrives while a holds the lease
      return b.getToken('default').catch((e: unknown) => e);
    })();
    const [ea, eb] = await clock.run(Promise.all([first, second]));
    expect(crm.loginAttempts).toBe(1);
    expect((ea as VendorError).code).toBe('CRM_UNAVAILABLE');
    expect((eb as VendorError).code).toBe('CRM_UNAVAILABLE');
  });
});

describe('VendService validity and caching (invariants 2, 9)', () => {
  it('serves from memory within MEMORY_CACHE_SECONDS with no table read, then reads once', async () => {
    const { clock, store, service } = setup();
    await clock.run(service.getToken('default'));
    const readsAfterLogin = store.itemsRead;
    await clock.advance(1000);
    const hit = await clock.run(service.getToken('default'));
    expect(hit.source).toBe('memory');
    expect(store.itemsRead).toBe(readsAfterLogin);
    await clock.advance(5000);
    const warm = await clock.run(service.getToken('default'));
    expect(warm.source).toBe('table');
    expect(store.itemsRead).toBe(readsAfterLogin + 1);
  });

  it('never hands out a token with less than the requested validity', async () => {
    const { clock, crm, service, settings } = setup();
    const first = await clock.run(service.getToken('default'));
    // Advance until the token has 25 s left; a request for 28 s must get a new one.
    await clock.advance(first.token.expiresAt - clock.now() - 25_000);
    const strict = await clock.run(service.getToken('default', { minValiditySeconds: 28 }));
    expect(crm.loginAttempts).toBe(2);
    expect(strict.token.expiresAt - clock.now()).toBeGreaterThanOrEqual(28_000);
    expect(settings.refreshAheadSeconds).toBeGreaterThanOrEqual(28);
  });

  it('counts a JWT’s exp − iat from the request when it is shorter than the lifetime', async () => {
    const { clock, crm, service, settings } = setup();
    // CRM.COM's clock is an hour ahead; the token lives 60 s, less than the configured 120 s.
    const skewedIat = Math.floor(clock.now() / 1000) + 3600;
    crm.behaviour = { kind: 'ok', jwt: { iat: skewedIat, exp: skewedIat + 60 } };
    const sentAt = clock.now();
    const result = await clock.run(service.getToken('default'));
    expect(result.token.realExpiresAt).toBe(sentAt + 60_000);
    expect(result.token.expiresAt).toBe(sentAt + 60_000 - settings.releaseLeadSeconds * 1000);
  });

  it('answers MISCONFIGURED when a fresh token is too short for the request', async () => {
    const { clock, crm, service } = setup();
    const iat = Math.floor(clock.now() / 1000);
    crm.behaviour = { kind: 'ok', jwt: { iat, exp: iat + 25 } }; // 5 s advertised
    const error = await errorOf(clock.run(service.getToken('default', { minValiditySeconds: 10 })));
    expect(error.code).toBe('MISCONFIGURED');
  });
});

describe('VendService refresh-ahead and stale-if-error (invariant 5)', () => {
  it('logs in ahead of expiry and leaves the old token to expire, not released early', async () => {
    const { clock, store, crm, service } = setup();
    const first = await clock.run(service.getToken('default'));
    await clock.advance(first.token.expiresAt - clock.now() - 29_000);
    const second = await clock.run(service.getToken('default', { minValiditySeconds: 0 }));
    expect(crm.loginAttempts).toBe(2);
    expect(second.token.token).not.toBe(first.token.token);
    expect(recordOf(store, first.token.token)?.dueAt).toBe(first.token.expiresAt);
  });

  it('serves the current token when a refresh-ahead login fails, then waits out the backoff', async () => {
    const { clock, crm, service } = setup();
    const first = await clock.run(service.getToken('default'));
    await clock.advance(first.token.expiresAt - clock.now() - 29_000);
    crm.behaviour = { kind: 'unavailable' };
    const stale = await clock.run(service.getToken('default', { minValiditySeconds: 5 }));
    expect(stale.token.token).toBe(first.token.token);
    expect(crm.loginAttempts).toBe(2);
    // Within the 1 s backoff no new attempt, still served.
    const again = await clock.run(service.getToken('default', { minValiditySeconds: 5 }));
    expect(again.token.token).toBe(first.token.token);
    expect(crm.loginAttempts).toBe(2);
    await clock.advance(1100);
    crm.behaviour = { kind: 'ok' };
    const fresh = await clock.run(service.getToken('default', { minValiditySeconds: 5 }));
    expect(crm.loginAttempts).toBe(3);
    expect(fresh.token.token).not.toBe(first.token.token);
  });

  it('doubles the unavailability backoff per failure and answers 503 with Retry-After', async () => {
    const { clock, crm, service } = setup();
    crm.behaviour = { kind: 'unavailable' };
    const e1 = await errorOf(clock.run(service.getToken('default')));
    expect(e1.code).toBe('CRM_UNAVAILABLE');
    expect(e1.retryable).toBe(true);
    expect(e1.retryAfterSeconds).toBe(1);
    await clock.advance(1000);
    const e2 = await errorOf(clock.run(service.getToken('default')));
    expect(e2.retryAfterSeconds).toBe(2);
    const blocked = await errorOf(clock.run(service.getToken('default')));
    expect(blocked.code).toBe('CRM_UNAVAILABLE');
    expect(crm.loginAttempts).toBe(2);
  });
});

describe('VendService auth-failure backoff (invariant 6)', () => {
  it('allows one login per backoff period after a rejection, across instances', async () => {
    const { clock, crm, make } = setup();
    crm.behaviour = { kind: 'reject' };
    const a = make('a');
    const b = make('b');
    const error = await errorOf(clock.run(a.getToken('default')));
    expect(error.code).toBe('CRM_AUTH_FAILED');
    expect(error.retryable).toBe(false);
    expect(error.retryAfterSeconds).toBe(60);
    for (let i = 0; i < 10; i++) {
      await clock.advance(5000);
      const e = await errorOf(clock.run((i % 2 ? a : b).getToken('default')));
      expect(e.code).toBe('CRM_AUTH_FAILED');
    }
    expect(crm.loginAttempts).toBe(1);
    await clock.advance(11_000);
    await errorOf(clock.run(b.getToken('default')));
    expect(crm.loginAttempts).toBe(2);
  });

  it('lifts the backoff at once when the secret version changes (rotation)', async () => {
    const { clock, crm, secrets, service } = setup();
    crm.behaviour = { kind: 'reject' };
    await errorOf(clock.run(service.getToken('default')));
    secrets.set('default', 'v2', 'secret-2');
    crm.behaviour = { kind: 'ok' };
    const result = await clock.run(service.getToken('default'));
    expect(crm.loginAttempts).toBe(2);
    expect(result.token.secretVersion).toBe('v2');
    expect(crm.credentialsSeen.at(-1)).toMatchObject({ password: 'secret-2' });
  });

  it('logs in with a newer secret version even while the current token is valid', async () => {
    const { clock, crm, secrets, service } = setup(testSettings({ MEMORY_CACHE_SECONDS: 0 }));
    const first = await clock.run(service.getToken('default'));
    secrets.set('default', 'v2', 'secret-2');
    const second = await clock.run(service.getToken('default'));
    expect(second.token.token).not.toBe(first.token.token);
    expect(second.token.secretVersion).toBe('v2');
    expect(crm.loginAttempts).toBe(2);
  });
});

describe('VendService invalidate (invariant 7)', () => {
  it('20 concurrent invalidations of the current token cause one login', async () => {
    const { clock, store, crm, service } = setup();
    const first = await clock.run(service.getToken('default'));
    const results = await clock.run(
      Promise.all(
        Array.from({ length: 20 }, () => service.invalidate('default', first.token.token)),
      ),
    );
    expect(crm.loginAttempts).toBe(2);
    const tokens = new Set(results.map((r) => r.token.token));
    expect(tokens.size).toBe(1);
    expect(tokens.has(first.token.token)).toBe(false);
    const old = recordOf(store, first.token.token);
    expect(old?.dueReason).toBe('invalidated');
    expect(old?.dueAt).toBeLessThanOrEqual(clock.now());
  });

  it('invalidating a stale or unknown token answers like a vend, with no login', async () => {
    const { clock, crm, service } = setup();
    const first = await clock.run(service.getToken('default'));
    const second = await clock.run(service.invalidate('default', first.token.token));
    const stale = await clock.run(service.invalidate('default', first.token.token));
    const unknown = await clock.run(service.invalidate('default', 'not-a-token'));
    expect(crm.loginAttempts).toBe(2);
    expect(stale.token.token).toBe(second.token.token);
    expect(unknown.token.token).toBe(second.token.token);
  });

  it('answers 502 during an auth-failure backoff', async () => {
    const { clock, crm, service } = setup();
    const first = await clock.run(service.getToken('default'));
    crm.behaviour = { kind: 'reject' };
    const e1 = await errorOf(clock.run(service.invalidate('default', first.token.token)));
    const e2 = await errorOf(clock.run(service.invalidate('default', first.token.token)));
    expect(e1.code).toBe('CRM_AUTH_FAILED');
    expect(e2.code).toBe('CRM_AUTH_FAILED');
    expect(crm.loginAttempts).toBe(2);
  });
});

describe('VendService leaks nothing (invariant 8)', () => {
  it('releases a token at once when it cannot be stored', async () => {
    const { clock, store, crm, service } = setup();
    store.putToken = async () => {
      throw new StoreError('throttled');
    };
    const error = await errorOf(clock.run(service.getToken('default')));
    expect(error.code).toBe('INTERNAL');
    expect(crm.logins).toBe(1);
    expect(crm.releases).toEqual(['TOKEN-0001']);
  });

  it('UNKNOWN_PROFILE for a profile that is not configured, with no secret read', async () => {
    const { clock, secrets, service } = setup();
    const error = await errorOf(clock.run(service.getToken('nobody')));
    expect(error.code).toBe('UNKNOWN_PROFILE');
    expect(secrets.reads).toBe(0);
  });

  it('MISCONFIGURED when the secret cannot be read and no token can serve', async () => {
    const { clock, crm, secrets, service } = setup();
    secrets.failing = true;
    const error = await errorOf(clock.run(service.getToken('default')));
    expect(error.code).toBe('MISCONFIGURED');
    expect(crm.loginAttempts).toBe(0);
  });
});
