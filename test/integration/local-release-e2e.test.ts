import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CrmSimulator,
  simulatorFingerprint,
  startCrmSimulator,
} from '../../functions/local/crm-simulator.js';
import { startLocalService } from '../../functions/local/local-service.js';

/**
 * `npm start` end to end, in real time with short settings: a token lives 12 s, is advertised
 * for 8 s, refreshed 3 s before that, and the release job runs every second.
 */
const LIFETIME_SECONDS = 12;
const LEAD_SECONDS = 4;
const INTERVAL_SECONDS = 1;
const DRIVE_MS = 26_000;
/** Slack on top of one release interval: a run's own latency and timer drift. */
const RELEASE_SLACK_MS = 3_000;

let simulator: CrmSimulator;
let child: ChildProcess | undefined;
let output = '';

function startChild(crmBaseUrl: string): Promise<string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    PORT: '0',
    TABLE_NAME: `release-e2e-${randomBytes(4).toString('hex')}`,
    CRM_BASE_URL: crmBaseUrl,
    CRM_USERNAME: 'demo',
    CRM_PASSWORD: 'demo',
    CRM_ORGANISATION: 'DEMO',
    TOKEN_LIFETIME_SECONDS: String(LIFETIME_SECONDS),
    RELEASE_LEAD_SECONDS: String(LEAD_SECONDS),
    REFRESH_AHEAD_SECONDS: '3',
    MIN_VALIDITY_SECONDS: '1',
    RELEASE_INTERVAL_SECONDS: String(INTERVAL_SECONDS),
    CRM_TIMEOUT_MS: '500',
    MEMORY_CACHE_SECONDS: '1',
    LOG_LEVEL: 'INFO',
    POWERTOOLS_METRICS_DISABLED: 'true',
  };
  const proc = spawn(process.execPath, ['--import', 'tsx', 'functions/local/main.ts'], {
    cwd: process.cwd(),
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child = proc;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('local service did not start')), 15_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`local service exited early (${code})`));
    });
  });
}

function exitOf(proc: ChildProcess, withinMs: number): Promise<number | null> {
  if (proc.exitCode !== null) return Promise.resolve(proc.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no exit in time')), withinMs);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

beforeAll(async () => {
  simulator = await startCrmSimulator({ tokenLifetimeSeconds: LIFETIME_SECONDS });
});

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await simulator?.close();
});

describe('local mode end to end: the release schedule (invariants 3, 4, 8)', () => {
  it('releases every token once, never early, within an interval; SIGTERM releases the rest', async () => {
    // Prepare
    const url = await startChild(simulator.url);

    // Act: a few concurrent vends every 250 ms over about three token periods
    const vended = new Map<string, { token: string; expiresAt: number }>();
    const failures: number[] = [];
    const driveUntil = Date.now() + DRIVE_MS;
    while (Date.now() < driveUntil) {
      const tick = Date.now();
      await Promise.all(
        Array.from({ length: 3 }, async () => {
          const response = await fetch(`${url}/v1/tokens/default`, {
            signal: AbortSignal.timeout(5_000),
          });
          const body = (await response.json()) as { token?: string; expiresAt?: string };
          if (response.status !== 200 || !body.token || !body.expiresAt) {
            failures.push(response.status);
            return;
          }
          const fp = simulatorFingerprint(body.token);
          const expiresAt = Date.parse(body.expiresAt);
          const seen = vended.get(fp);
          vended.set(fp, {
            token: body.token,
            expiresAt: Math.max(expiresAt, seen?.expiresAt ?? expiresAt),
          });
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 250 - (Date.now() - tick))));
    }
    const invoked = await fetch(`${url}/2015-03-31/functions/release/invocations`, {
      method: 'POST',
      body: '{}',
      signal: AbortSignal.timeout(10_000),
    });
    const summary = (await invoked.json()) as Record<string, unknown>;
    const beforeStop = simulator.stats();
    const sigtermAt = Date.now();
    child?.kill('SIGTERM');
    const exitCode = await exitOf(child as ChildProcess, 10_000);
    const exitedAt = Date.now();
    const stats = simulator.stats();

    // Assess: the run went through several token periods with no failed vend
    expect(failures).toEqual([]);
    expect(vended.size).toBeGreaterThanOrEqual(4);
    expect(invoked.status).toBe(200);
    expect(Object.keys(summary).sort()).toEqual(['failed', 'released', 'skipped']);
    expect(Object.values(summary).every((n) => Number.isInteger(n))).toBe(true);
    expect(beforeStop.liveTokens).toBeGreaterThanOrEqual(1);

    // Assess: every token the service obtained (vended or not) was released exactly once
    const issued = new Map(stats.issued.map((t) => [t.fingerprint, t]));
    for (const fp of vended.keys()) expect(issued.has(fp), fp).toBe(true);
    for (const fp of issued.keys()) expect(stats.releaseCountsByToken[fp], fp).toBe(1);
    expect(Object.keys(stats.releaseCountsByToken).length).toBe(issued.size);
    expect(stats.liveTokens).toBe(0);

    // Assess: the schedule released none early and each within one interval (plus slack);
    // what it had not yet released, shutdown did
    const late = INTERVAL_SECONDS * 1000 + RELEASE_SLACK_MS;
    let bySchedule = 0;
    for (const [fp, { expiresAt }] of vended) {
      const releasedAt = issued.get(fp)?.releasedAt;
      expect(releasedAt, fp).toBeDefined();
      if ((releasedAt as number) < sigtermAt) {
        bySchedule += 1;
        expect(releasedAt as number, `${fp} released early`).toBeGreaterThanOrEqual(expiresAt);
        expect(releasedAt as number, `${fp} released late`).toBeLessThanOrEqual(expiresAt + late);
      } else {
        expect(expiresAt + late, `${fp} left for shutdown`).toBeGreaterThan(sigtermAt);
      }
    }
    expect(bySchedule).toBeGreaterThanOrEqual(3);

    // Assess: a clean, prompt exit, and no token in the output
    expect(exitCode).toBe(0);
    expect(exitedAt - sigtermAt).toBeLessThan(10_000);
    for (const { token } of vended.values()) expect(output.includes(token)).toBe(false);
  }, 45_000);

  it('stop() releases the live tokens with the longest CRM_TIMEOUT_MS too', async () => {
    // Prepare: in process, a healthy CRM.COM but the largest timeout the settings allow
    simulator.reset();
    const service = await startLocalService({
      PORT: '0',
      TABLE_NAME: `release-stop-${randomBytes(4).toString('hex')}`,
      CRM_BASE_URL: simulator.url,
      CRM_USERNAME: 'demo',
      CRM_PASSWORD: 'demo',
      CRM_ORGANISATION: 'DEMO',
      CRM_TIMEOUT_MS: '10000',
      RELEASE_INTERVAL_SECONDS: '60',
      LOG_LEVEL: 'SILENT',
    });
    let stopped = false;
    try {
      const response = await fetch(`${service.url}/v1/tokens/default`);
      expect(response.status).toBe(200);
      expect(simulator.stats().liveTokens).toBe(1);

      // Act
      const started = Date.now();
      await service.stop();
      stopped = true;

      // Assess
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(simulator.stats().liveTokens).toBe(0);
      expect(Object.values(simulator.stats().releaseCountsByToken)).toEqual([1]);
    } finally {
      if (!stopped) await service.stop();
    }
  });
});
