import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryTokenStore } from '../../../functions/adapters/memory-token-store.js';
import type { Observability } from '../../../functions/adapters/powertools-telemetry.js';
import { StoreError } from '../../../functions/core/errors.js';
import { ReleaseService } from '../../../functions/core/release-service.js';
import type { Telemetry, TokenStore } from '../../../functions/core/types.js';
import { createReleaseHandler } from '../../../functions/handlers/release-handler.js';
import { FakeClock } from '../../support/fake-clock.js';
import { testSettings } from '../../support/fakes.js';
import {
  issuedForDueAt,
  obtainedRecord,
  ReleaseCrm,
  seed,
} from '../../support/release-fixtures.js';

const SECRET_TOKEN = 'TOKEN-SHOULD-NEVER-SHOW-1234567890';

beforeEach(() => {
  // EMF output would otherwise go to stdout; the handler's behaviour is what is tested here.
  vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true');
});

afterEach(() => {
  vi.unstubAllEnvs();
});

function context(remainingMs: number | undefined = 60_000): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: 'release',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:release',
    memoryLimitInMB: '256',
    awsRequestId: 'request-1',
    logGroupName: '/aws/lambda/release',
    logStreamName: 'test',
    getRemainingTimeInMillis: () => remainingMs ?? Number.NaN,
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

function setup(store: TokenStore = new MemoryTokenStore()) {
  const settings = testSettings();
  const clock = new FakeClock();
  const crm = new ReleaseCrm(clock, settings.crmTimeoutMs);
  const logs: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  const telemetry: Telemetry = {
    count() {},
    timing() {},
    log(level, message, fields) {
      logs.push(fields ? { level, message, fields } : { level, message });
    },
  };
  const observability: Observability = {
    logger: new Logger({ logLevel: 'SILENT' }),
    metrics: new Metrics({ namespace: 'Test', serviceName: 'test' }),
    telemetry,
  };
  const release = new ReleaseService({ store, crm, clock, settings, telemetry });
  const handler = createReleaseHandler({ release, clock, observability });
  const invoke = (event: unknown, ctx: Context = context()) =>
    clock.run(handler(event, ctx) as Promise<unknown>);
  return { settings, clock, crm, store, handler, invoke, logs };
}

/** Two due tokens of `default`, one due later, one of `other` due later. */
async function seedTokens(store: TokenStore, clock: FakeClock) {
  const settings = testSettings();
  const now = clock.now();
  const dueIssued = issuedForDueAt(now - 1_000, settings);
  await seed(store, [
    obtainedRecord({ tokenId: 'due-1', issuedAt: dueIssued, settings }),
    obtainedRecord({ tokenId: 'due-2', issuedAt: dueIssued, settings }),
    obtainedRecord({ tokenId: 'later', issuedAt: now - 1_000, settings }),
    obtainedRecord({ tokenId: 'other', issuedAt: now - 1_000, settings, profile: 'other' }),
  ]);
}

describe('release handler: one run', () => {
  it('answers {} with exactly released, failed and skipped', async () => {
    // Prepare
    const { clock, crm, store, invoke } = setup();
    await seedTokens(store, clock);
    crm.outcomes.set('TOKEN-due-2', { kind: 'retry', reason: 'timeout' });

    // Act
    const result = await invoke({});

    // Assess
    expect(result).toStrictEqual({ released: 1, failed: 1, skipped: 0 });
    expect([...crm.callsByToken.keys()].sort()).toEqual(['TOKEN-due-1', 'TOKEN-due-2']);
  });

  it('treats the EventBridge schedule’s event as one run', async () => {
    // Prepare
    const { clock, store, invoke } = setup();
    await seedTokens(store, clock);

    // Act
    const result = await invoke({
      version: '0',
      id: 'e1',
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      detail: {},
    });

    // Assess
    expect(result).toStrictEqual({ released: 2, failed: 0, skipped: 0 });
  });

  it('keeps the run inside the Lambda’s remaining time', async () => {
    // Prepare: only the 2 s margin left, or nothing at all
    const { clock, crm, store, invoke } = setup();
    await seedTokens(store, clock);

    // Act
    const atMargin = await invoke({}, context(2_000));
    const none = await invoke({}, context(0));
    const unknown = await invoke({}, context(undefined));

    // Assess
    expect(atMargin).toStrictEqual({ released: 0, failed: 0, skipped: 0 });
    expect(none).toStrictEqual({ released: 0, failed: 0, skipped: 0 });
    expect(unknown).toStrictEqual({ released: 2, failed: 0, skipped: 0 });
    expect(crm.releaseCalls).toBe(2);
  });
});

describe('release handler: revokeProfile', () => {
  it('releases every live token of the profile, due or not, and clears its current token', async () => {
    // Prepare
    const { clock, crm, store, invoke } = setup();
    await seedTokens(store, clock);
    const later = await store.getToken('later', clock.now());
    await store.putState(
      {
        profile: 'default',
        gen: 1,
        current: {
          tokenId: 'later',
          token: 'TOKEN-later',
          fingerprint: later?.fingerprint ?? '',
          issuedAt: later?.issuedAt ?? 0,
          expiresAt: later?.expiresAt ?? 0,
          realExpiresAt: later?.realExpiresAt ?? 0,
          secretVersion: 'v1',
        },
      },
      0,
    );

    // Act
    const result = await invoke({ action: 'revokeProfile', profile: 'default' });

    // Assess
    expect(result).toStrictEqual({ released: 3, failed: 0, skipped: 0 });
    expect([...crm.callsByToken.keys()].sort()).toEqual([
      'TOKEN-due-1',
      'TOKEN-due-2',
      'TOKEN-later',
    ]);
    expect((await store.getState('default'))?.current).toBeUndefined();
    expect((await store.getToken('other', clock.now()))?.status).toBe('live');
  });
});

describe('release handler: bad payloads', () => {
  it.each([
    ['null', null],
    ['an array', []],
    ['a string', 'revokeProfile'],
    ['a number', 42],
    ['an unknown action', { action: 'releaseEverything' }],
    ['a null action', { action: null }],
    ['getToken (a vend action)', { action: 'getToken', profile: 'default' }],
    ['no profile', { action: 'revokeProfile' }],
    ['a non-string profile', { action: 'revokeProfile', profile: 7 }],
    ['an empty profile', { action: 'revokeProfile', profile: '' }],
    ['a bad profile name', { action: 'revokeProfile', profile: 'bad name!' }],
    ['a 65-character profile', { action: 'revokeProfile', profile: 'p'.repeat(65) }],
  ])('answers INVALID_REQUEST for %s and changes nothing', async (_name, event) => {
    // Prepare
    const { clock, crm, store, invoke } = setup();
    await seedTokens(store, clock);
    await store.putState({ profile: 'default', gen: 3 }, 0);
    const before = (store as MemoryTokenStore).allTokens();

    // Act
    const result = await invoke(event);

    // Assess
    expect(result).toStrictEqual({
      error: { code: 'INVALID_REQUEST', message: expect.any(String), retryable: false },
    });
    expect(crm.releaseCalls).toBe(0);
    expect((store as MemoryTokenStore).allTokens()).toStrictEqual(before);
    expect(await store.getState('default')).toStrictEqual({ profile: 'default', gen: 3 });
  });
});

describe('release handler: store outage', () => {
  function failingStore(error: Error): TokenStore {
    const fail = async (): Promise<never> => {
      throw error;
    };
    return { getState: fail, putState: fail, getToken: fail, putToken: fail, queryPending: fail };
  }

  const runs = [
    ['a run', {}],
    ['revokeProfile', { action: 'revokeProfile', profile: 'default' }],
  ] as const;

  it.each(runs)('throws for %s, so the schedule’s retry and DLQ see it', async (_name, event) => {
    // Prepare: the adapter's error, whose message is safe and helps operators
    const outage = new StoreError('DynamoDB Query on tokens failed (ServiceUnavailable)');
    const { invoke, logs, crm } = setup(failingStore(outage));

    // Act
    const error = await invoke(event).then(
      () => undefined,
      (e: unknown) => e,
    );

    // Assess
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe('release run failed (StoreError)');
    expect(logs).toContainEqual({
      level: 'error',
      message: 'release run failed',
      fields: { error: `StoreError: ${outage.message}` },
    });
    expect(crm.releaseCalls).toBe(0);
  });

  it.each(runs)('never lets a token in an unexpected error out, for %s', async (_name, event) => {
    // Prepare: an unexpected error that quotes a request
    const leaky = new TypeError(`cannot read item {"token":"${SECRET_TOKEN}"}`);
    const { invoke, logs } = setup(failingStore(leaky));

    // Act
    const error = await invoke(event).then(
      () => undefined,
      (e: unknown) => e,
    );

    // Assess
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe('release run failed (TypeError)');
    expect((error as Error).stack ?? '').not.toContain(SECRET_TOKEN);
    expect((error as Error).cause).toBeUndefined();
    expect(logs.some((l) => l.level === 'error')).toBe(true);
    expect(JSON.stringify(logs)).not.toContain(SECRET_TOKEN);
  });
});
