import { randomBytes, randomUUID } from 'node:crypto';
import { HttpCrmClient } from '../functions/adapters/crm-client.js';
import { createDynamoDbClient } from '../functions/adapters/dynamodb-client.js';
import { DynamoDbTokenStore, marshalToken } from '../functions/adapters/dynamodb-token-store.js';
import { readSettings } from '../functions/adapters/environment.js';
import { systemClock } from '../functions/adapters/system-clock.js';
import { ensureTable } from '../functions/adapters/table-schema.js';
import { fingerprint } from '../functions/core/fingerprint.js';
import { mapPooled, ReleaseService } from '../functions/core/release-service.js';
import { RECORD_RETENTION_SECONDS } from '../functions/core/token-ledger.js';
import type { TokenRecord } from '../functions/core/types.js';
import { batchPut } from '../test/support/dynalite.js';
import { type Backend, DEMO_PROFILE } from './fixtures.js';
import { nowMs } from './stats.js';

export interface ReleaseReadsResult {
  readonly stored: number;
  readonly due: number;
  readonly itemsRead: number;
  readonly released: number;
  readonly seedMs: number;
  readonly runMs: number;
}

const MINUTE = 60_000;

/**
 * A release run over a table of `stored` token records of which `due` are due now (invariant 9):
 * the items the store reads, per due token. The other records are a realistic mix: pending
 * release later (in the sparse index, not yet due) and already released (out of the index).
 */
export async function releaseReads(
  backend: Backend,
  options: { stored: number; due: number; released: number },
): Promise<ReleaseReadsResult> {
  const tableName = 'bench-release';
  const client = createDynamoDbClient({ endpoint: backend.endpoint });
  try {
    await ensureTable(client, tableName);
    const now = Date.now();
    const baseUrl = backend.simulator.url;
    const crm = new HttpCrmClient({ timeoutMs: 5000 });
    // Due tokens are real simulator sessions, so the run releases them for real.
    const dueTokens = await mapPooled(
      Array.from({ length: options.due }),
      10,
      async () => (await crm.login(baseUrl, { kind: 'password', ...DEMO_PROFILE })).token,
    );
    const record = (kind: 'due' | 'later' | 'released', token: string | undefined): TokenRecord => {
      const issuedAt = kind === 'due' ? now - 50 * MINUTE : now - 5 * MINUTE;
      const expiresAt = issuedAt + 50 * MINUTE;
      const realExpiresAt = issuedAt + 60 * MINUTE;
      return {
        tokenId: randomUUID(),
        rev: 1,
        profile: 'default',
        ...(token === undefined ? {} : { token }),
        fingerprint: fingerprint(token ?? randomBytes(16).toString('hex')),
        baseUrl,
        issuedAt,
        expiresAt,
        realExpiresAt,
        secretVersion: 'bench',
        status: kind === 'released' ? 'released' : 'live',
        ...(kind === 'released'
          ? { releasedAt: now - MINUTE, outcome: 'released' }
          : { dueAt: kind === 'due' ? now - 1000 : expiresAt, dueReason: 'expiry' as const }),
        attempts: 0,
        ttl: Math.ceil(realExpiresAt / 1000) + RECORD_RETENTION_SECONDS,
      };
    };
    const later = options.stored - options.due - options.released;
    const records: TokenRecord[] = [
      ...dueTokens.map((token) => record('due', token)),
      ...Array.from({ length: later }, () =>
        record('later', randomBytes(16).toString('hex').toUpperCase()),
      ),
      ...Array.from({ length: options.released }, () => record('released', undefined)),
    ];

    const seedStart = nowMs();
    await batchPut(client, tableName, records.map(marshalToken));
    const seedMs = nowMs() - seedStart;

    const store = new DynamoDbTokenStore({ client, tableName });
    const release = new ReleaseService({
      store,
      crm,
      clock: systemClock,
      settings: readSettings({}, 'deployed'),
    });
    const before = store.itemsRead;
    const runStart = nowMs();
    const report = await release.runOnce();
    const runMs = nowMs() - runStart;
    return {
      stored: records.length,
      due: report.due,
      itemsRead: store.itemsRead - before,
      released: report.released,
      seedMs,
      runMs,
    };
  } finally {
    client.destroy();
  }
}
