import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CrmSimulator,
  simulatorFingerprint,
  startCrmSimulator,
} from '../../functions/local/crm-simulator.js';
import { FAST_ENV, requestTo, type TestResponse } from '../support/local-service.js';

// A full local run (`node functions/local/main.ts`, LOG_LEVEL=DEBUG) against a CRM.COM simulator
// held by this test, so that every token it issued is known. Everything the process writes is
// captured, then searched for secrets. Failures name what leaked and where, never the value.

const ROOT = new URL('../..', import.meta.url).pathname;
const READY = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/;
const SHUTDOWN_NOTICE = /^SIG(TERM|INT): shutting down$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const secret = (prefix: string) => `${prefix}-${randomBytes(12).toString('hex')}`;
const SECRETS = {
  defaultPassword: secret('pw-default'),
  pwPassword: secret('pw-alice'),
  badPassword: secret('pw-mallory'),
  downPassword: secret('pw-bob'),
  webApiKey: secret('wak'),
};
const CORRELATION_ID = 'log-hygiene-correlation-1';

interface Captured {
  stdout: string;
  stderr: string;
}

interface Run {
  readonly simulator: CrmSimulator;
  readonly captured: Captured;
  /** Every token seen in an answer. */
  readonly answered: Set<string>;
  /** Byte offsets of stdout/stderr when SIGTERM was sent: what came before is handler work. */
  readonly beforeShutdown: Captured;
  readonly exitCode: number | null;
  readonly liveAfterExit: number;
  readonly answers: Record<string, TestResponse>;
}

let run: Run;
let child: ChildProcess | undefined;
let simulator: CrmSimulator | undefined;
let dir: string | undefined;

/** Spawns the local service and resolves with its URL once the ready line is out. */
function startService(env: Record<string, string>, captured: Captured): Promise<string> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', 'functions/local/main.ts'], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    const timer = setTimeout(() => reject(new Error('the service did not start in 10 s')), 10_000);
    proc.stdout?.on('data', (chunk: Buffer) => {
      captured.stdout += chunk.toString('utf8');
      const ready = captured.stdout.split('\n').find((line) => READY.test(line));
      if (ready) {
        clearTimeout(timer);
        resolve((READY.exec(ready) as RegExpExecArray)[1] as string);
      }
    });
    proc.stderr?.on('data', (chunk: Buffer) => {
      captured.stderr += chunk.toString('utf8');
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the service exited early (${code})`));
    });
  });
}

function waitForExit(proc: ChildProcess, ms: number): Promise<number | null> {
  if (proc.exitCode !== null) return Promise.resolve(proc.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no exit within ${ms} ms`)), ms);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

async function until(condition: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

beforeAll(async () => {
  // Prepare: a simulator with the profiles' users and key, and the service as `npm start` runs it.
  simulator = await startCrmSimulator({
    tokenLifetimeSeconds: Number(FAST_ENV.TOKEN_LIFETIME_SECONDS),
    users: [
      { username: 'log-user', password: SECRETS.defaultPassword, organisation: 'ORGX' },
      { username: 'alice', password: SECRETS.pwPassword, organisation: 'ORG1' },
      { username: 'bob', password: SECRETS.downPassword, organisation: 'ORG1' },
    ],
    webApiKeys: [SECRETS.webApiKey],
  });
  dir = mkdtempSync(join(tmpdir(), 'log-hygiene-'));
  const profilesFile = join(dir, 'profiles.json');
  writeFileSync(
    profilesFile,
    JSON.stringify({
      pw: { username: 'alice', password: SECRETS.pwPassword, organisation: 'ORG1' },
      key: { webApiKey: SECRETS.webApiKey },
      bad: { username: 'mallory', password: SECRETS.badPassword, organisation: 'ORG1' },
      down: { username: 'bob', password: SECRETS.downPassword, organisation: 'ORG1' },
    }),
  );
  const captured: Captured = { stdout: '', stderr: '' };
  const url = await startService(
    {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      ...(process.env.HOME ? { HOME: process.env.HOME } : {}),
      ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
      ...(FAST_ENV as Record<string, string>),
      PORT: '0',
      LOG_LEVEL: 'DEBUG',
      TABLE_NAME: `log-hygiene-${process.pid}`,
      CRM_BASE_URL: simulator.url,
      CRM_USERNAME: 'log-user',
      CRM_PASSWORD: SECRETS.defaultPassword,
      CRM_ORGANISATION: 'ORGX',
      PROFILES_FILE: profilesFile,
      MEMORY_CACHE_SECONDS: '1',
      // Node 20 only: the SDK's end-of-support warning is not the service's output.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    captured,
  );

  // Act: logins of both kinds, vends (REST and invoke), invalidate, a rejection, an outage,
  // release runs (scheduled and invoked), a revocation, and a shutdown.
  const answered = new Set<string>();
  const answers: Record<string, TestResponse> = {};
  const call = async (
    name: string,
    path: string,
    options: Parameters<typeof requestTo>[2] = {},
  ) => {
    const answer = await requestTo(url, path, options);
    answers[name] = answer;
    const body = answer.json<{ token?: unknown }>();
    if (typeof body?.token === 'string') answered.add(body.token);
    return answer;
  };
  const invoke = (name: string, fn: string, payload: unknown, qualifier?: string) =>
    call(
      name,
      `/2015-03-31/functions/${fn}/invocations${qualifier ? `?Qualifier=${qualifier}` : ''}`,
      { method: 'POST', body: JSON.stringify(payload) },
    );

  await call('defaultLogin', '/v1/tokens/default');
  await call('defaultAgain', '/v1/tokens/default', {
    headers: { 'x-correlation-id': CORRELATION_ID },
  });
  const pw = await call('pwLogin', '/v1/tokens/pw');
  await call('keyLogin', '/v1/tokens/key?minValiditySeconds=1');
  await invoke('keyInvoke', 'vend', { action: 'getToken', profile: 'key' }, 'profile-key');
  const pwToken = pw.json<{ token: string }>().token;
  await call('pwInvalidate', '/v1/tokens/pw/invalidate', {
    method: 'POST',
    body: JSON.stringify({ token: pwToken }),
  });
  await invoke('pwInvalidateInvoke', 'vend', {
    action: 'invalidate',
    profile: 'pw',
    token: pwToken,
  });
  await call('badLogin', '/v1/tokens/bad');
  simulator.setFaults({ login: 'unavailable', count: 1 });
  await call('downLogin', '/v1/tokens/down');
  // The invalidated token is due at once: a scheduled run (every second) releases it.
  const invalidatedFp = simulatorFingerprint(pwToken);
  await until(() => (simulator?.stats().releaseCountsByToken[invalidatedFp] ?? 0) > 0, 5000);
  await invoke('releaseRun', 'release', {});
  await invoke('revoke', 'release', { action: 'revokeProfile', profile: 'key' });
  // Past MEMORY_CACHE_SECONDS, the next vend of the revoked profile logs in again.
  await new Promise((r) => setTimeout(r, 1100));
  await call('keyAfterRevoke', '/v1/tokens/key');

  const beforeShutdown = { ...captured };
  child?.kill('SIGTERM');
  const exitCode = await waitForExit(child as ChildProcess, 12_000);
  run = {
    simulator,
    captured,
    answered,
    beforeShutdown,
    exitCode,
    liveAfterExit: simulator.stats().liveTokens,
    answers,
  };
}, 20_000);

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await simulator?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

interface Line {
  readonly stream: 'stdout' | 'stderr';
  readonly index: number;
  readonly text: string;
  readonly beforeShutdown: boolean;
}

function lines(): Line[] {
  const out: Line[] = [];
  for (const stream of ['stdout', 'stderr'] as const) {
    const cut = run.beforeShutdown[stream].length;
    let offset = 0;
    run.captured[stream].split('\n').forEach((text, index) => {
      const start = offset;
      offset += text.length + 1;
      if (text !== '') out.push({ stream, index, text, beforeShutdown: start + text.length < cut });
    });
  }
  return out;
}

function allTokens(): string[] {
  return [...new Set([...run.answered, ...run.simulator.issuedTokens()])];
}

/** Where a line is, for a failure message (never its content). */
const where = (line: Line) => `${line.stream} line ${line.index + 1}`;

/** A line with every known secret and token masked, cut short: safe to show on failure. */
function redacted(text: string): string {
  let safe = text;
  for (const value of [...Object.values(SECRETS), ...allTokens()]) {
    safe = safe.split(value).join('[REDACTED]');
  }
  return safe.slice(0, 160);
}

function parsed(line: Line): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line.text);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

const isMetricsLine = (json: Record<string, unknown>) => typeof json._aws === 'object';

function logLines(): Array<{ line: Line; json: Record<string, unknown> }> {
  return lines().flatMap((line) => {
    const json = parsed(line);
    return json && !isMetricsLine(json) ? [{ line, json }] : [];
  });
}

function keysDeep(value: unknown, into: string[] = []): string[] {
  if (typeof value !== 'object' || value === null) return into;
  for (const [key, v] of Object.entries(value)) {
    into.push(key);
    keysDeep(v, into);
  }
  return into;
}

describe('logs of a full local run (LOG_LEVEL=DEBUG)', () => {
  it('went through every flow the checks below rely on', () => {
    const status = Object.fromEntries(Object.entries(run.answers).map(([k, a]) => [k, a.status]));
    expect(status).toEqual({
      defaultLogin: 200,
      defaultAgain: 200,
      pwLogin: 200,
      keyLogin: 200,
      keyInvoke: 200,
      pwInvalidate: 200,
      pwInvalidateInvoke: 200,
      badLogin: 502,
      downLogin: 503,
      releaseRun: 200,
      revoke: 200,
      keyAfterRevoke: 200,
    });
    expect(run.answers.badLogin?.json()).toMatchObject({ error: { code: 'CRM_AUTH_FAILED' } });
    expect(run.answers.downLogin?.json()).toMatchObject({ error: { code: 'CRM_UNAVAILABLE' } });
    expect(run.answers.revoke?.json<{ released: number }>().released).toBeGreaterThanOrEqual(1);
    // Logins of both kinds happened, and the shutdown released what was still live.
    // default, pw (password), key (web API key), pw again (invalidate), key again (revoke).
    expect(run.simulator.stats().logins).toBe(5);
    expect(run.simulator.stats().releases).toBeGreaterThanOrEqual(3);
    expect(run.exitCode).toBe(0);
    expect(run.liveAfterExit).toBe(0);
    expect(allTokens().length).toBe(5);
  });

  it('hold no password and no web API key', () => {
    const leaks = lines().flatMap((line) =>
      Object.entries(SECRETS)
        .filter(([, value]) => line.text.includes(value))
        .map(([name]) => `${name} in ${where(line)}`),
    );
    expect(leaks).toEqual([]);
  });

  it('hold no token, and not its full SHA-256 either: tokens appear as short fingerprints', () => {
    const tokens = allTokens();
    const leaks = lines().flatMap((line) =>
      tokens.flatMap((token) => {
        const sha = createHash('sha256').update(token).digest('hex');
        const fp = simulatorFingerprint(token);
        const found: string[] = [];
        if (line.text.includes(token)) found.push(`token ${fp} in ${where(line)}`);
        if (line.text.includes(sha)) found.push(`full fingerprint of ${fp} in ${where(line)}`);
        return found;
      }),
    );
    expect(leaks).toEqual([]);
    // Positively: each login is logged with a short fingerprint of the token it obtained.
    const fingerprints = logLines()
      .filter(({ json }) => json.message === 'logged in to CRM.COM')
      .map(({ json }) => json.tokenFp);
    expect(fingerprints.length).toBe(5);
    for (const fp of fingerprints) expect(fp).toMatch(/^[0-9a-f]{6,12}$/);
    const known = new Set(tokens.map((t) => createHash('sha256').update(t).digest('hex')));
    for (const fp of fingerprints) {
      expect([...known].some((sha) => sha.startsWith(fp as string))).toBe(true);
    }
  });

  it('carry no field named like a secret', () => {
    const forbidden = new Set(['token', 'password', 'webApiKey', 'Authorization', 'authorization']);
    const found = logLines().flatMap(({ line, json }) =>
      keysDeep(json)
        .filter((key) => forbidden.has(key))
        .map((key) => `${key} in ${where(line)}`),
    );
    expect(found).toEqual([]);
  });

  it('are JSON lines with a level and a message, apart from the ready line and the shutdown notice', () => {
    const problems = lines().flatMap((line) => {
      if (line.stream === 'stdout' && READY.test(line.text)) return [];
      if (line.stream === 'stderr' && SHUTDOWN_NOTICE.test(line.text)) return [];
      const json = parsed(line);
      if (!json) return [`not JSON: ${where(line)}: ${redacted(line.text)}`];
      if (isMetricsLine(json)) {
        // EMF metrics: CloudWatch reads these, they are not log lines.
        const aws = json._aws as { CloudWatchMetrics?: unknown };
        return Array.isArray(aws.CloudWatchMetrics) ? [] : [`bad EMF line: ${where(line)}`];
      }
      const ok = typeof json.level === 'string' && typeof json.message === 'string';
      return ok ? [] : [`no level or message: ${where(line)}: ${redacted(line.text)}`];
    });
    expect(problems).toEqual([]);
    const notices = lines().filter((l) => !parsed(l));
    expect(notices.map((l) => l.text.replace(/\d+$/, 'PORT'))).toEqual([
      'listening on http://127.0.0.1:PORT',
      'SIGTERM: shutting down',
    ]);
  });

  it('carry the request id of the invocation that wrote them, and the correlation id given', () => {
    const before = logLines().filter(({ line }) => line.beforeShutdown);
    // Up to SIGTERM, every line comes from a handler invocation (vends, invokes, release runs).
    const missing = before
      .filter(({ json }) => typeof json.requestId !== 'string' || !UUID.test(json.requestId))
      .map(({ line, json }) => `${String(json.message)} (${where(line)})`);
    expect(missing).toEqual([]);
    const messages = new Set(before.map(({ json }) => json.message));
    for (const message of [
      'token vended',
      'logged in to CRM.COM',
      'CRM.COM rejected the credentials',
      'CRM.COM is unavailable',
      'token released',
      'profile revoked',
    ]) {
      expect(messages).toContain(message);
    }
    const correlated = before.filter(({ json }) => json.correlationId === CORRELATION_ID);
    expect(correlated.map(({ json }) => json.message)).toContain('token vended');
  });
});
