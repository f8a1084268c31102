/**
 * A model of the token lifecycle for property tests: several VendService instances and a release
 * job on one (faulty) store, a scripted CRM.COM, rotating secrets and a fake clock, driven by a
 * random command sequence; then a check of every invariant of CONTRACT §3 over what happened.
 * Used by test/unit/core/lifecycle.property.test.ts (short runs) and test/fuzz (long runs).
 */
import fc from 'fast-check';
import { MemoryTokenStore } from '../../functions/adapters/memory-token-store.js';
import { SecretError, StoreError, VendorError } from '../../functions/core/errors.js';
import { fingerprint } from '../../functions/core/fingerprint.js';
import { ReleaseService } from '../../functions/core/release-service.js';
import { CachedSecretSource, type SecretFetcher } from '../../functions/core/secret-cache.js';
import {
  leaseMillis,
  releaseClaimMillis,
  type Settings,
  vendTimeoutSeconds,
} from '../../functions/core/settings.js';
import type { CurrentToken, TokenRecord } from '../../functions/core/types.js';
import { type VendResult, VendService } from '../../functions/core/vend-service.js';
import { tokenBody } from '../../functions/handlers/responses.js';
import { FakeClock } from './fake-clock.js';
import { testSettings } from './fakes.js';
import { FaultyStore, type StoreFaultKind, type StoreOperation } from './faulty-store.js';
import { type CrmMode, ScriptedCrm } from './scripted-crm.js';

export const PROFILES = ['alpha', 'beta'] as const;
const BASE_URL = 'http://crm.test/crmapi/rest/v2';

/** The model's settings: short durations, so that tokens live through many commands. */
export function modelSettings(): Settings {
  return testSettings({ SECRET_CACHE_SECONDS: 30, RELEASE_INTERVAL_SECONDS: 5 });
}

export type Target = 'current' | 'stale' | 'unknown';

export type Command =
  | {
      readonly kind: 'vend';
      readonly instance: number;
      readonly profile: number;
      readonly min: number | null;
    }
  | {
      readonly kind: 'burst';
      readonly profile: number;
      readonly count: number;
      readonly min: number | null;
    }
  | {
      readonly kind: 'invalidate';
      readonly instance: number;
      readonly profile: number;
      readonly target: Target;
      readonly count: number;
    }
  | { readonly kind: 'advance'; readonly ms: number }
  | { readonly kind: 'settle' }
  | { readonly kind: 'crm'; readonly mode: CrmMode; readonly once: boolean }
  | { readonly kind: 'crmLatency'; readonly ms: number }
  | {
      readonly kind: 'storeFault';
      readonly fault: StoreFaultKind;
      readonly operation: StoreOperation | null;
      /** An instance index, or -1 for the release job, or null for anyone. */
      readonly caller: number | null;
      readonly skip: number;
    }
  | { readonly kind: 'storeThrottle'; readonly on: boolean }
  | { readonly kind: 'storeLatency'; readonly ms: number }
  | { readonly kind: 'rotate'; readonly profile: number; readonly part: 'both' | 'crm' | 'secret' }
  /** `count` release runs at once (runs may overlap: the schedule and an operator). */
  | { readonly kind: 'release'; readonly count: number }
  | { readonly kind: 'revoke'; readonly profile: number }
  | { readonly kind: 'crash'; readonly instance: number };

// ---------------------------------------------------------------------------------------------
// Generators

const instanceArb = fc.integer({ min: 0, max: 2 });
const profileArb = fc.constantFrom(0, 0, 0, 1);
const minArb = fc.option(fc.integer({ min: 0, max: 30 }), { nil: null, freq: 3 });

export const crmModeArb: fc.Arbitrary<CrmMode> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<CrmMode>({ kind: 'ok' }) },
  { weight: 2, arbitrary: fc.constant<CrmMode>({ kind: 'reject' }) },
  { weight: 2, arbitrary: fc.constant<CrmMode>({ kind: 'unavailable' }) },
  { weight: 2, arbitrary: fc.constant<CrmMode>({ kind: 'hang' }) },
  { weight: 1, arbitrary: fc.constant<CrmMode>({ kind: 'reset' }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('jwt' as const),
      lifetimeSeconds: fc.integer({ min: 1, max: 119 }),
      skewSeconds: fc.integer({ min: -7200, max: 7200 }),
    }),
  },
  {
    // Without `iat`, `exp` is read on the local clock: only meaningful without skew.
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('jwt' as const),
      lifetimeSeconds: fc.integer({ min: 1, max: 200 }),
      skewSeconds: fc.constant(0),
      withoutIat: fc.constant(true),
    }),
  },
  { weight: 1, arbitrary: fc.constant<CrmMode>({ kind: 'release-unsupported' }) },
);

const advanceArb = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 0, max: 2000 }) },
  { weight: 3, arbitrary: fc.integer({ min: 2000, max: 15_000 }) },
  { weight: 2, arbitrary: fc.integer({ min: 15_000, max: 150_000 }) },
);

export const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 25,
    arbitrary: fc.record({
      kind: fc.constant('vend' as const),
      instance: instanceArb,
      profile: profileArb,
      min: minArb,
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('burst' as const),
      profile: profileArb,
      count: fc.integer({ min: 2, max: 20 }),
      min: minArb,
    }),
  },
  {
    weight: 10,
    arbitrary: fc.record({
      kind: fc.constant('invalidate' as const),
      instance: instanceArb,
      profile: profileArb,
      target: fc.constantFrom<Target>('current', 'current', 'stale', 'unknown'),
      count: fc.integer({ min: 1, max: 5 }),
    }),
  },
  { weight: 22, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: advanceArb }) },
  { weight: 4, arbitrary: fc.constant<Command>({ kind: 'settle' }) },
  {
    weight: 9,
    arbitrary: fc.record({
      kind: fc.constant('crm' as const),
      mode: crmModeArb,
      once: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('crmLatency' as const),
      ms: fc.constantFrom(0, 10, 100, 300, 900),
    }),
  },
  {
    weight: 9,
    arbitrary: fc.record({
      kind: fc.constant('storeFault' as const),
      fault: fc.constantFrom<StoreFaultKind>('cas-false', 'throttle', 'ghost-false', 'ghost-throw'),
      operation: fc.option(
        fc.constantFrom<StoreOperation>(
          'getState',
          'putState',
          'getToken',
          'putToken',
          'queryPending',
        ),
        { nil: null, freq: 4 },
      ),
      caller: fc.option(fc.integer({ min: -1, max: 2 }), { nil: null, freq: 3 }),
      skip: fc.integer({ min: 0, max: 3 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('storeThrottle' as const), on: fc.boolean() }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('storeLatency' as const),
      ms: fc.constantFrom(0, 0, 5, 50, 400, 1500),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('rotate' as const),
      profile: profileArb,
      part: fc.constantFrom('both' as const, 'crm' as const, 'secret' as const),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('release' as const),
      count: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('revoke' as const), profile: profileArb }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('crash' as const), instance: instanceArb }),
  },
);

/** Scenarios of up to `maxCommands` commands on 2–3 instances. */
export function scenarioArbOf(maxCommands: number): fc.Arbitrary<Scenario> {
  return fc.record({
    instances: fc.integer({ min: 2, max: 3 }),
    seed: fc.integer({ min: 1, max: 0x7fffffff }),
    commands: fc.array(commandArb, { minLength: 1, maxLength: maxCommands, size: 'max' }),
  });
}

export const scenarioArb = scenarioArbOf(60);

export type Scenario = {
  readonly instances: number;
  readonly seed: number;
  readonly commands: readonly Command[];
};

// ---------------------------------------------------------------------------------------------
// The world

/** Local-mode-like secrets: versions `v1`, `v2`, …; the password of version n is `pw-n`. */
class ModelSecrets implements SecretFetcher {
  readonly published = new Map<string, number>();
  readonly log: Array<{ at: number; profile: string; version: number }> = [];

  constructor(private readonly clock: FakeClock) {
    for (const p of PROFILES) this.publish(p, 1);
  }

  publish(profile: string, version: number): void {
    this.published.set(profile, version);
    this.log.push({ at: this.clock.now(), profile, version });
  }

  versionAt(profile: string, at: number): number {
    let v = 0;
    for (const e of this.log) if (e.at <= at && e.profile === profile) v = e.version;
    return v;
  }

  has(profile: string): boolean {
    return this.published.has(profile);
  }

  async fetch(profile: string): Promise<{ version: string; value: string }> {
    const version = this.published.get(profile);
    if (version === undefined) throw new SecretError('no such profile');
    return {
      version: `v${version}`,
      value: JSON.stringify({
        username: profile,
        password: `pw-${version}`,
        organisation: 'ORG',
        baseUrl: BASE_URL,
      }),
    };
  }
}

interface Instance {
  readonly name: string;
  readonly service: VendService;
  crashedAt?: number;
}

export interface OpLog {
  readonly id: number;
  readonly kind: 'vend' | 'invalidate';
  readonly instance: string;
  readonly profile: string;
  readonly minValidityMs: number;
  /** The token an invalidation names. */
  readonly token?: string;
  readonly startedAt: number;
  /** State writes landed before the op started / answered (orders events within one instant). */
  readonly startMark: number;
  endMark?: number;
  /** `tick()` when it answered. */
  endSeq?: number;
  endedAt?: number;
  result?: VendResult;
  error?: unknown;
}

interface RunLog {
  readonly kind: 'scheduled' | 'manual' | 'revoke';
  readonly profile?: string;
  readonly startedAt: number;
  endedAt?: number;
  error?: unknown;
}

// The checks restate the contract's rules rather than import the code's, so that a bug in
// the policy cannot hide itself.

/** A token serves a request when it has the requested validity left before `expiresAt`. */
function canServe(token: CurrentToken, now: number, minValidityMs: number): boolean {
  return token.expiresAt > now && token.expiresAt - now >= minValidityMs;
}

/** REFRESH_AHEAD_SECONDS: under that much left, and older than a quarter of its validity. */
function isDueForRefresh(token: CurrentToken, now: number, settings: Settings): boolean {
  const validity = token.expiresAt - token.issuedAt;
  return (
    token.expiresAt - now < settings.refreshAheadSeconds * 1000 &&
    now - token.issuedAt > validity / 4
  );
}

function version(secretVersion: string): number {
  return Number(secretVersion.replace(/^v/, ''));
}

function passwordVersion(password: string): number {
  return Number(password.replace(/^pw-/, ''));
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const OUTAGE = new Set<CrmMode['kind']>(['unavailable', 'hang', 'reset']);

/** The lifecycle under test plus everything it did, for the invariant checks. */
export class LifecycleWorld {
  readonly settings = modelSettings();
  readonly clock = new FakeClock();
  readonly memory = new MemoryTokenStore();
  readonly store = new FaultyStore(this.memory, this.clock);
  readonly crm: ScriptedCrm;
  readonly secrets = new ModelSecrets(this.clock);
  readonly instances: Instance[] = [];
  readonly release: ReleaseService;
  readonly ops: OpLog[] = [];
  readonly runs: RunLog[] = [];
  readonly revokes: Array<{ at: number; profile: string }> = [];
  readonly crmModes: Array<{ at: number; mode: CrmMode }> = [];
  readonly throttleLog: Array<{ at: number; on: boolean }> = [];
  readonly trace: string[] = [];
  private readonly pending: Array<Promise<unknown>> = [];
  private readonly crmVersion = new Map<string, number>();
  private loopStopped = false;
  healedAt: number | undefined;
  /** Records due (and pending) at heal time, which must be released promptly. */
  private promptlyDue: TokenRecord[] = [];
  /** When the prompt-release check ran. */
  private promptCheckAt = 0;
  readonly leaseMs: number;
  readonly claimMs: number;
  private seq = 0;

  /** A global event counter: orders events that happen at the same instant. */
  tick(): number {
    this.seq += 1;
    return this.seq;
  }

  constructor(readonly scenario: Scenario) {
    const random = mulberry32(scenario.seed);
    this.leaseMs = leaseMillis(this.settings);
    this.claimMs = releaseClaimMillis(this.settings);
    this.crm = new ScriptedCrm(this.clock, {
      timeoutMs: this.settings.crmTimeoutMs,
      tokenLifetimeSeconds: this.settings.tokenLifetimeSeconds,
      mark: () => this.store.stateWrites.length,
      sequence: () => this.tick(),
    });
    for (const p of PROFILES) {
      this.crm.setPassword(p, 'pw-1');
      this.crmVersion.set(p, 1);
    }
    this.crmModes.push({ at: this.clock.now(), mode: this.crm.mode });
    for (let i = 0; i < scenario.instances; i++) {
      const name = `i${i}`;
      this.instances.push({
        name,
        service: new VendService({
          store: this.store.view(name),
          secrets: new CachedSecretSource(
            this.secrets,
            this.clock,
            this.settings.secretCacheSeconds,
          ),
          crm: this.crm.client(name),
          clock: this.clock,
          settings: this.settings,
          instanceId: name,
          random,
        }),
      });
    }
    this.release = new ReleaseService({
      store: this.store.view('release'),
      crm: this.crm.client('release'),
      clock: this.clock,
      settings: this.settings,
    });
    void this.releaseLoop();
  }

  /** The EventBridge schedule: one run every RELEASE_INTERVAL_SECONDS, never two at once. */
  private async releaseLoop(): Promise<void> {
    for (;;) {
      await this.clock.sleep(this.settings.releaseIntervalSeconds * 1000);
      if (this.loopStopped) return;
      await this.runRelease('scheduled');
    }
  }

  private runRelease(kind: RunLog['kind'], profile?: string): Promise<void> {
    const run: RunLog = { kind, startedAt: this.clock.now(), ...(profile ? { profile } : {}) };
    this.runs.push(run);
    const work = kind === 'revoke' ? this.release.revokeProfile(profile!) : this.release.runOnce();
    return work.then(
      () => {
        run.endedAt = this.clock.now();
      },
      (error: unknown) => {
        run.endedAt = this.clock.now();
        run.error = error;
      },
    );
  }

  private live(index: number): Instance | undefined {
    const n = this.instances.length;
    for (let k = 0; k < n; k++) {
      const candidate = this.instances[(index + k) % n]!;
      if (candidate.crashedAt === undefined) return candidate;
    }
    return undefined;
  }

  private liveInstances(): Instance[] {
    return this.instances.filter((i) => i.crashedAt === undefined);
  }

  private start(
    instance: Instance,
    kind: 'vend' | 'invalidate',
    profile: string,
    min: number | null,
    token?: string,
  ): void {
    const minValidityMs =
      (kind === 'vend' && min !== null ? min : this.settings.minValiditySeconds) * 1000;
    const op: OpLog = {
      id: this.ops.length + 1,
      kind,
      instance: instance.name,
      profile,
      minValidityMs,
      startedAt: this.clock.now(),
      startMark: this.store.stateWrites.length,
      ...(token === undefined ? {} : { token }),
    };
    this.ops.push(op);
    const work =
      kind === 'vend'
        ? instance.service.getToken(profile, min === null ? {} : { minValiditySeconds: min })
        : instance.service.invalidate(profile, token ?? '');
    const settled = work.then(
      (result) => {
        op.endedAt = this.clock.now();
        op.endMark = this.store.stateWrites.length;
        op.endSeq = this.tick();
        op.result = result;
      },
      (error: unknown) => {
        op.endedAt = this.clock.now();
        op.endMark = this.store.stateWrites.length;
        op.error = error;
      },
    );
    this.pending.push(settled);
  }

  /** The token a consumer would name in an invalidation. */
  private targetToken(profile: string, target: Target, pick: number): string {
    if (target === 'unknown') return `UNKNOWN-${pick}`;
    const vended = this.ops
      .filter((o) => o.profile === profile && o.result)
      .map((o) => o.result!.token.token);
    const current = this.store.stateAt(profile, this.clock.now())?.current?.token;
    if (target === 'current') return current ?? vended.at(-1) ?? `UNKNOWN-${pick}`;
    const stale = vended.filter((t) => t !== current);
    return stale[pick % Math.max(1, stale.length)] ?? `UNKNOWN-${pick}`;
  }

  private setCrmMode(mode: CrmMode): void {
    this.crm.mode = mode;
    this.crmModes.push({ at: this.clock.now(), mode });
  }

  async execute(command: Command, index: number): Promise<void> {
    this.trace.push(`${this.clock.now() - FakeClock_START}ms #${index} ${JSON.stringify(command)}`);
    switch (command.kind) {
      case 'vend': {
        const instance = this.live(command.instance);
        if (instance) this.start(instance, 'vend', PROFILES[command.profile]!, command.min);
        return;
      }
      case 'burst': {
        const live = this.liveInstances();
        for (let k = 0; k < command.count; k++) {
          const min = command.min === null ? null : (command.min + k * 7) % 31;
          this.start(live[k % live.length]!, 'vend', PROFILES[command.profile]!, min);
        }
        return;
      }
      case 'invalidate': {
        const profile = PROFILES[command.profile]!;
        const token = this.targetToken(profile, command.target, index);
        for (let k = 0; k < command.count; k++) {
          const instance = this.live(command.instance + k);
          if (instance) this.start(instance, 'invalidate', profile, null, token);
        }
        return;
      }
      case 'advance':
        await this.clock.advance(command.ms);
        return;
      case 'settle':
        await this.settle(60_000);
        return;
      case 'crm':
        if (command.once) this.crm.script.push(command.mode);
        else this.setCrmMode(command.mode);
        return;
      case 'crmLatency':
        this.crm.latencyMs = command.ms;
        return;
      case 'storeFault': {
        const caller =
          command.caller === null
            ? undefined
            : command.caller === -1
              ? 'release'
              : this.instances[command.caller % this.instances.length]!.name;
        this.store.inject({
          kind: command.fault,
          skip: command.skip,
          ...(command.operation === null ? {} : { operation: command.operation }),
          ...(caller === undefined ? {} : { caller }),
        });
        return;
      }
      case 'storeThrottle':
        this.store.throttling = command.on;
        this.throttleLog.push({ at: this.clock.now(), on: command.on });
        return;
      case 'storeLatency':
        this.store.latencyMs = command.ms;
        return;
      case 'rotate': {
        const profile = PROFILES[command.profile]!;
        const crmV = this.crmVersion.get(profile)!;
        const secretV = this.secrets.published.get(profile)!;
        if (command.part !== 'secret') {
          const next = Math.max(crmV, secretV) + 1;
          this.crmVersion.set(profile, next);
          this.crm.setPassword(profile, `pw-${next}`);
        }
        if (command.part !== 'crm') {
          this.secrets.publish(profile, Math.max(this.crmVersion.get(profile)!, secretV + 1));
        }
        return;
      }
      case 'release':
        for (let k = 0; k < command.count; k++) this.pending.push(this.runRelease('manual'));
        return;
      case 'revoke': {
        const profile = PROFILES[command.profile]!;
        this.revokes.push({ at: this.clock.now(), profile });
        this.pending.push(this.runRelease('revoke', profile));
        return;
      }
      case 'crash': {
        const live = this.liveInstances();
        const instance = this.instances[command.instance % this.instances.length]!;
        // At most one crash per scenario, and one instance always stays up.
        if (live.length < this.instances.length || instance.crashedAt !== undefined) return;
        instance.crashedAt = this.clock.now();
        this.store.freeze(instance.name);
        this.crm.freeze(instance.name);
        return;
      }
    }
  }

  /** Ops of live instances not answered yet. */
  unsettled(): OpLog[] {
    return this.ops.filter((o) => o.endedAt === undefined && !this.crashed(o.instance));
  }

  private crashed(name: string): boolean {
    return this.instances.find((i) => i.name === name)?.crashedAt !== undefined;
  }

  private crashedAt(name: string): number {
    return this.instances.find((i) => i.name === name)?.crashedAt ?? Number.POSITIVE_INFINITY;
  }

  /** Lets time run until every live op and run has settled, or `limitMs` passes. */
  async settle(limitMs: number): Promise<void> {
    const done = (async () => {
      for (;;) {
        const runs = this.runs.filter((r) => r.kind !== 'scheduled' && r.endedAt === undefined);
        if (this.unsettled().length === 0 && runs.length === 0) return;
        await this.clock.sleep(50);
      }
    })();
    await this.clock.run(Promise.race([done, this.clock.sleep(limitMs)]));
  }

  /** Heals every fault, lets everything finish, then runs past every expiry. */
  async finish(): Promise<void> {
    this.setCrmMode({ kind: 'ok' });
    this.crm.script.length = 0;
    this.crm.latencyMs = 100;
    this.store.heal();
    this.throttleLog.push({ at: this.clock.now(), on: false });
    await this.settle(120_000);
    this.healedAt = this.clock.now();
    const interval = this.settings.releaseIntervalSeconds * 1000;
    const promptWindow = this.promptWindowMs();
    this.promptlyDue = this.memory
      .allTokens()
      .filter(
        (r) =>
          r.dueAt !== undefined &&
          this.firstDue(r.tokenId) <= this.healedAt! &&
          r.realExpiresAt > this.healedAt! + promptWindow,
      );
    await this.clock.advance(promptWindow);
    this.promptCheckAt = this.clock.now();
    const horizon =
      Math.max(
        this.clock.now(),
        ...this.crm.issued.map((t) => t.realExpiresAt),
        ...this.memory.allTokens().map((r) => r.realExpiresAt),
      ) +
      2 * interval +
      this.claimMs;
    await this.clock.advance(horizon - this.clock.now());
    // Let the last run finish.
    await this.clock.advance(interval + this.claimMs);
    this.loopStopped = true;
  }

  /** "Within one release interval after it became due, plus a few seconds" (invariant 4). */
  promptWindowMs(): number {
    return this.settings.releaseIntervalSeconds * 1000 + this.claimMs + 1000;
  }

  /** When a record first became due: the earliest moment one of its versions was due. */
  firstDue(tokenId: string): number {
    let first = Number.POSITIVE_INFINITY;
    for (const w of this.store.recordHistory(tokenId)) {
      if (w.record.dueAt !== undefined) first = Math.min(first, Math.max(w.at, w.record.dueAt));
    }
    return first;
  }

  /** What CRM.COM and the table saw, for a failure report. */
  dump(profile?: string): string {
    const logins = this.crm.logins
      .filter((l) => profile === undefined || l.username === profile)
      .map(
        (l) =>
          `login #${l.id} ${l.caller} ${l.username} ${l.password} ${this.t(l.startedAt)}–${this.t(l.endedAt)} ${l.outcome ?? '…'} ${l.token ?? ''} (after write ${l.mark})`,
      );
    const writes = this.store.stateWrites
      .map((w, i) => ({ w, i }))
      .filter(({ w }) => profile === undefined || w.state.profile === profile)
      .map(({ w, i }) => {
        const { profile: p, gen, current, lease, authFailure, unavailable, lastAttempt } = w.state;
        return `write ${i + 1} ${this.t(w.at)} ${w.caller} ${p} gen ${gen} current ${current?.token ?? '-'}${current ? `(${current.secretVersion}, exp ${this.t(current.expiresAt)})` : ''} lease ${lease ? `${lease.owner}→${this.t(lease.until)}` : '-'} auth ${authFailure ? `${authFailure.version}→${this.t(authFailure.until)}` : '-'} unavail ${unavailable ? `${unavailable.failures}→${this.t(unavailable.until)}` : '-'} last ${lastAttempt ? `${this.t(lastAttempt.at)} ${lastAttempt.error?.code ?? 'ok'}` : '-'}`;
      });
    const faults = this.store.faults
      .filter((f) => f.kind !== 'throttle' || !this.throttledDuring(f.at, f.at))
      .map((f) => `fault ${this.t(f.at)} ${f.caller} ${f.operation} ${f.kind}`);
    const releases = this.crm.releases.map(
      (r) =>
        `release ${r.token} by ${r.caller} ${this.t(r.startedAt)} → ${r.outcome ?? '…'}${r.processed ? ' (ended it)' : ''}`,
    );
    return [...logins, ...writes, ...faults, ...releases].join('\n  ');
  }

  // -------------------------------------------------------------------------------------------
  // Invariant checks

  check(): string[] {
    const v: string[] = [];
    this.checkAnswers(v);
    this.checkSingleFlight(v);
    this.checkLoginsNeeded(v);
    this.checkValidity(v);
    this.checkNoEarlyRelease(v);
    this.checkEveryTokenReleased(v);
    this.checkStaleIfError(v);
    this.checkBackoffs(v);
    this.checkInvalidate(v);
    this.checkRefreshAhead(v);
    this.checkCost(v);
    return v;
  }

  private opName(o: OpLog): string {
    return `op#${o.id} ${o.kind}(${o.instance}, ${o.profile}, min ${o.minValidityMs / 1000}s) @${o.startedAt - FakeClock_START}`;
  }

  private t(at: number | undefined): string {
    return at === undefined ? '∞' : `${at - FakeClock_START}`;
  }

  /** Every op answers, within the vend timeout, with a token or a contract error. */
  private checkAnswers(v: string[]): void {
    const allowed = new Set(['CRM_AUTH_FAILED', 'CRM_UNAVAILABLE', 'MISCONFIGURED', 'INTERNAL']);
    const limit = vendTimeoutSeconds(this.settings) * 1000;
    for (const o of this.ops) {
      if (this.crashed(o.instance) && o.endedAt === undefined) continue;
      if (o.endedAt === undefined) {
        v.push(`${this.opName(o)} never answered`);
        continue;
      }
      if (o.endedAt - o.startedAt > limit + 12 * this.maxLatency) {
        v.push(`${this.opName(o)} took ${o.endedAt - o.startedAt} ms (vend timeout ${limit} ms)`);
      }
      if (o.error === undefined) continue;
      if (o.error instanceof StoreError) continue; // the handler maps it to INTERNAL
      if (!(o.error instanceof VendorError)) {
        v.push(`${this.opName(o)} failed with a non-contract error: ${String(o.error)}`);
        continue;
      }
      const e = o.error;
      if (!allowed.has(e.code)) v.push(`${this.opName(o)} failed with ${e.code}`);
      if (e.code === 'CRM_AUTH_FAILED' || e.code === 'CRM_UNAVAILABLE') {
        const r = e.retryAfterSeconds;
        if (r === undefined || !Number.isInteger(r) || r < 1) {
          v.push(`${this.opName(o)} ${e.code} without a whole Retry-After (${r})`);
        }
        if (e.retryable !== (e.code === 'CRM_UNAVAILABLE')) {
          v.push(`${this.opName(o)} ${e.code} with retryable ${e.retryable}`);
        }
      }
      if (e.code === 'MISCONFIGURED' && !this.jwtEverUsed) {
        v.push(`${this.opName(o)} MISCONFIGURED although CRM.COM never issued a short token`);
      }
      // Waiters share the error of the login they waited on, which may predate them.
      const shareFrom = o.startedAt - this.leaseMs - this.settings.crmTimeoutMs;
      if (e.code === 'INTERNAL' && !this.storeTroubleDuring(shareFrom, o.endedAt)) {
        v.push(`${this.opName(o)} INTERNAL with no store fault: ${String(e.cause ?? e.message)}`);
      }
    }
  }

  /** Whether CRM.COM was ever told to issue JWTs (possibly shorter than the lead). */
  jwtEverUsed = false;
  /** The largest store latency of the scenario, which stretches every answer. */
  maxLatency = 0;

  private storeTroubleDuring(from: number, to: number): boolean {
    if (this.store.faultsBetween(from, to).length > 0) return true;
    return this.throttledDuring(from, to);
  }

  private throttledDuring(from: number, to: number): boolean {
    let on = false;
    for (const e of this.throttleLog) {
      if (e.at < from) on = e.on;
      else if (e.at <= to && e.on) return true;
    }
    return on;
  }

  /** Invariant 1: login attempts of a profile never overlap, unless a lease lapsed. */
  private checkSingleFlight(v: string[]): void {
    for (const profile of PROFILES) {
      const logins = this.crm.logins.filter((l) => l.username === profile);
      for (const a of logins) {
        const state = this.store.stateAfter(profile, a.mark);
        const lease = state?.lease;
        if (!lease || lease.until <= a.startedAt || lease.owner !== a.caller) {
          v.push(
            `login #${a.id} by ${a.caller} at ${this.t(a.startedAt)} without holding the lease (${JSON.stringify(lease)})`,
          );
        }
      }
      for (let i = 0; i < logins.length; i++) {
        const a = logins[i]!;
        const aEnd = a.endedAt ?? Number.POSITIVE_INFINITY;
        const leaseA = this.store.stateAfter(profile, a.mark)?.lease;
        const leaseEnd = leaseA ? this.leaseEnd(profile, leaseA, a.mark) : 0;
        for (let j = i + 1; j < logins.length; j++) {
          const b = logins[j]!;
          if (b.startedAt >= aEnd) continue;
          if (b.startedAt < leaseEnd || !leaseA) {
            v.push(
              `logins #${a.id} (${a.caller}, ${this.t(a.startedAt)}–${this.t(a.endedAt)}) and #${b.id} (${b.caller}, ${this.t(b.startedAt)}) overlap before the first lease ended (${this.t(leaseEnd)})`,
            );
          }
        }
      }
    }
  }

  /**
   * When a lease stopped protecting its holder: it lapsed, or a revocation dropped it (the
   * release job clears the lease so that a login in flight cannot make its token current).
   */
  private leaseEnd(profile: string, lease: { id: string; until: number }, after: number): number {
    for (let i = after; i < this.store.stateWrites.length; i++) {
      const w = this.store.stateWrites[i]!;
      if (w.at >= lease.until) break;
      if (w.state.profile === profile && w.caller === 'release' && w.state.lease?.id !== lease.id) {
        return w.at;
      }
    }
    return lease.until;
  }

  /**
   * Invariants 1 and 7, "logins minimal": each login attempt had a reason at the moment it was
   * made: no current token, one older than the secret, due for refresh, too short for a request
   * waiting then, or named by a pending invalidation. Never an older secret version.
   */
  private checkLoginsNeeded(v: string[]): void {
    for (const a of this.crm.logins) {
      if (a.startedAt >= this.crashedAt(a.caller)) continue;
      const s = a.startedAt;
      const current = this.store.stateAfter(a.username, a.mark)?.current;
      const loginVersion = passwordVersion(a.password);
      if (!current) continue;
      const currentVersion = version(current.secretVersion);
      if (loginVersion < currentVersion) {
        v.push(
          `login #${a.id} used secret v${loginVersion}, older than the current token's v${currentVersion}`,
        );
        continue;
      }
      if (loginVersion > currentVersion) continue;
      if (isDueForRefresh(current, s, this.settings)) continue;
      const waiting = this.ops.filter(
        (o) =>
          o.profile === a.username &&
          o.startedAt <= s &&
          (o.endedAt ?? Number.POSITIVE_INFINITY) >= s &&
          s < this.crashedAt(o.instance),
      );
      const needed = waiting.some(
        (o) =>
          !canServe(current, s, o.minValidityMs) ||
          (o.kind === 'invalidate' &&
            o.token !== undefined &&
            fingerprint(o.token) === current.fingerprint),
      );
      if (!needed) {
        v.push(
          `login #${a.id} by ${a.caller} at ${this.t(s)} was not needed: current ${current.token} (expires ${this.t(current.expiresAt)}) served every waiting request`,
        );
      }
    }
  }

  /** Invariant 2 (and that a vended token is one CRM.COM issued, for that profile, still live). */
  private checkValidity(v: string[]): void {
    const lead = this.settings.releaseLeadSeconds * 1000;
    for (const o of this.ops) {
      if (!o.result || o.endedAt === undefined) continue;
      const at = o.endedAt;
      const tok = o.result.token;
      if (o.result.profile !== o.profile)
        v.push(`${this.opName(o)} answered profile ${o.result.profile}`);
      if (!(tok.expiresAt - at >= o.minValidityMs && tok.expiresAt > at)) {
        v.push(
          `${this.opName(o)} got ${tok.token} with ${tok.expiresAt - at} ms left at ${this.t(at)}, wanted ≥ ${o.minValidityMs}`,
        );
      }
      const body = tokenBody(o.result, at);
      if (
        body.expiresInSeconds * 1000 > tok.expiresAt - at ||
        body.expiresInSeconds * 1000 < o.minValidityMs
      ) {
        v.push(
          `${this.opName(o)} expiresInSeconds ${body.expiresInSeconds} not rounded down / too small`,
        );
      }
      const issued = this.crm.tokenInfo(tok.token);
      if (!issued) {
        v.push(`${this.opName(o)} got a token CRM.COM never issued`);
        continue;
      }
      if (issued.username !== o.profile)
        v.push(`${this.opName(o)} got a token of ${issued.username}`);
      if (tok.realExpiresAt > issued.realExpiresAt + 999) {
        v.push(
          `${this.opName(o)} ${tok.token} real expiry ${this.t(tok.realExpiresAt)} is after CRM.COM's ${this.t(issued.realExpiresAt)}`,
        );
      }
      if (tok.expiresAt !== tok.realExpiresAt - lead)
        v.push(`${this.opName(o)} expiresAt ≠ real expiry − lead`);
      const login = this.crm.logins.find((l) => l.token === tok.token);
      if (login && `v${passwordVersion(login.password)}` !== tok.secretVersion) {
        v.push(
          `${this.opName(o)} ${tok.token} records secret ${tok.secretVersion}, obtained with ${login.password}`,
        );
      }
      const dead = issued.releasedSeq !== undefined && issued.releasedSeq < (o.endSeq ?? 0);
      if (dead) {
        // Allowed: the memory cache may serve for MEMORY_CACHE_SECONDS a token that another
        // instance invalidated or revoked; and a request that read the table before a
        // revocation cleared it may still be handed the revoked token (the revocation race).
        const excused =
          (o.result.source === 'memory' &&
            (this.ops.some(
              (x) => x.kind === 'invalidate' && x.token === tok.token && x.startedAt <= at,
            ) ||
              this.revokes.some((r) => r.profile === o.profile && r.at <= at))) ||
          this.revokes.some(
            (r) => r.profile === o.profile && r.at <= at && this.revokeClearIndex(r) >= o.startMark,
          );
        if (!excused) {
          v.push(
            `${this.opName(o)} was handed ${tok.token} (source ${o.result.source}) at ${this.t(at)}, released at ${this.t(issued.releasedAt)}`,
          );
        }
      }
    }
  }

  /** Index of the state write with which a revocation cleared the current token. */
  private revokeClearIndex(revoke: { at: number; profile: string }): number {
    return this.store.stateWrites.findIndex(
      (w) => w.caller === 'release' && w.state.profile === revoke.profile && w.at >= revoke.at,
    );
  }

  private handedOut(token: string): OpLog[] {
    return this.ops.filter((o) => o.result?.token.token === token);
  }

  private recordOf(token: string): TokenRecord | undefined {
    const fp = fingerprint(token);
    return this.memory.allTokens().find((r) => r.fingerprint === fp);
  }

  /** Invariant 3: nothing handed out is released before its advertised expiry, unless invalidated or revoked. */
  private checkNoEarlyRelease(v: string[]): void {
    for (const r of this.crm.releases) {
      const record = this.recordOf(r.token);
      const handed = this.handedOut(r.token);
      if (handed.length === 0) continue;
      const expiresAt = record?.expiresAt ?? handed[0]!.result!.token.expiresAt;
      if (r.startedAt >= expiresAt) continue;
      const profile = handed[0]!.profile;
      const excused =
        this.ops.some(
          (o) => o.kind === 'invalidate' && o.token === r.token && o.startedAt <= r.startedAt,
        ) || this.revokes.some((x) => x.profile === profile && x.at <= r.startedAt);
      if (!excused) {
        v.push(
          `${r.token} (handed out by op#${handed[0]!.id}) released by ${r.caller} at ${this.t(r.startedAt)}, before its expiry ${this.t(expiresAt)}`,
        );
      }
    }
  }

  /** Invariants 4 and 8, after the final phase. */
  private checkEveryTokenReleased(v: string[]): void {
    const leakedByCrash = new Map<string, number>();
    for (const issued of this.crm.issued) {
      const token = issued.token;
      const successes = this.crm.successfulReleases(token);
      if (successes > 1) v.push(`${token} released successfully ${successes} times`);
      const record = this.recordOf(token);
      const calls = this.crm.releases.filter((r) => r.token === token);
      // No second release call after one that ended the token, unless a store fault on its
      // record (a write that landed but reported failure) left the service unsure.
      const first = calls.find((c) => c.outcome === 'released' || c.outcome === 'already-invalid');
      const faulted =
        record !== undefined && this.store.faults.some((f) => f.key === record.tokenId);
      const unrecorded =
        record === undefined || this.store.recordHistory(record.tokenId).length === 0;
      if (first && !faulted && !unrecorded) {
        const again = calls.filter((c) => c !== first && c.startedAt >= first.startedAt);
        if (again.length > 0) {
          v.push(
            `${token} released again by ${again.map((c) => `${c.caller}@${this.t(c.startedAt)}`).join(', ')} after ${first.caller}@${this.t(first.startedAt)}`,
          );
        }
      }
      if (!record) {
        const login = this.loginOf(token);
        if (login && login.startedAt <= this.crashedAt(issued.caller)) {
          const crashedAt = this.crashedAt(issued.caller);
          const midLogin =
            login.endedAt === undefined ||
            crashedAt - login.endedAt < 2 * this.leaseMs + 8 * this.maxLatency;
          if (this.crashed(issued.caller) && midLogin) {
            // A holder that dies mid-login may leak that one session (invariant 1).
            const key = `${issued.caller}/${issued.username}`;
            leakedByCrash.set(key, (leakedByCrash.get(key) ?? 0) + 1);
            continue;
          }
        }
        if (calls.length === 0) {
          v.push(`${token} (login by ${issued.caller}) was neither stored nor released: leaked`);
        }
        continue;
      }
      if (record.dueAt !== undefined || record.status === 'live' || record.status === 'claimed') {
        v.push(
          `${token} still pending after the final phase: ${record.status}, due ${this.t(record.dueAt)}`,
        );
        continue;
      }
      if (record.token !== undefined)
        v.push(`${token} record kept the token value after ${record.status}`);
      if (record.status === 'unsupported' && !calls.some((c) => c.outcome === 'unsupported')) {
        v.push(`${token} recorded unsupported without such an answer`);
      }
      if (record.status === 'not-released')
        v.push(`${token} not released although release is enabled`);
      if (record.status === 'abandoned') this.checkAbandoned(v, record, token);
    }
    for (const [key, n] of leakedByCrash) {
      if (n > 1) v.push(`${n} sessions leaked by the crash of ${key} (at most one)`);
    }
    for (const r of this.promptlyDue) {
      const history = this.store.recordHistory(r.tokenId);
      const done = history.find(
        (w) => w.record.dueAt === undefined && w.at >= (this.healedAt ?? 0),
      );
      if (!done || done.at > this.promptCheckAt) {
        v.push(
          `${r.token ?? r.fingerprint} due since ${this.t(this.firstDue(r.tokenId))} not released within ${this.promptWindowMs()} ms of CRM.COM being reachable (${this.t(this.healedAt)})`,
        );
      }
    }
  }

  private loginOf(token: string) {
    return this.crm.logins.find((l) => l.token === token);
  }

  /**
   * Abandoned is right only when no release run could have released it: every run between its
   * due time and its real expiry met an outage, a store fault or a claim by another run.
   */
  private checkAbandoned(v: string[], record: TokenRecord, token: string): void {
    const due = this.firstDue(record.tokenId);
    for (const run of this.runs) {
      if (run.kind === 'revoke' && run.profile !== record.profile) continue;
      // A run that started the instant the token became due may have queried just before.
      if (
        run.endedAt === undefined ||
        run.startedAt <= due ||
        run.endedAt >= record.realExpiresAt
      ) {
        continue;
      }
      if (this.crmOutageDuring(run.startedAt, run.endedAt)) continue;
      if (this.storeTroubleDuring(run.startedAt, run.endedAt)) continue;
      if (this.claimedDuring(record.tokenId, run.startedAt, run.endedAt)) continue;
      v.push(
        `${token} abandoned, although the ${run.kind} run ${this.t(run.startedAt)}–${this.t(run.endedAt)} met no fault between its due time ${this.t(due)} and its real expiry ${this.t(record.realExpiresAt)}`,
      );
      return;
    }
  }

  private crmOutageDuring(from: number, to: number): boolean {
    // A change at the very instant `from` may come before or after the run's first call.
    let mode: CrmMode = { kind: 'ok' };
    for (const m of this.crmModes) {
      if (m.at < from) mode = m.mode;
      else if (m.at <= to && OUTAGE.has(m.mode.kind)) return true;
    }
    return OUTAGE.has(mode.kind) || mode.kind === 'release-unsupported';
  }

  private claimedDuring(tokenId: string, from: number, to: number): boolean {
    let claimed = false;
    for (const w of this.store.recordHistory(tokenId)) {
      const active = w.record.status === 'claimed' && (w.record.claim?.until ?? 0) > from;
      if (w.at <= from) claimed = active;
      else if (w.at <= to && active) return true;
    }
    return claimed;
  }

  /** Invariant 5: a failed request was not one the current token could serve. */
  private checkStaleIfError(v: string[]): void {
    for (const o of this.ops) {
      if (o.kind !== 'vend' || o.error === undefined || o.endedAt === undefined) continue;
      const before = this.store.stateAfter(o.profile, o.startMark)?.current;
      const after = this.store.stateAfter(o.profile, o.endMark ?? 0)?.current;
      if (!before || !after || before.tokenId !== after.tokenId) continue;
      if (!canServe(after, o.endedAt, o.minValidityMs)) continue;
      if (this.store.faultsBetween(o.startedAt, o.endedAt, o.instance).length > 0) continue;
      if (this.throttledDuring(o.startedAt, o.endedAt)) continue;
      const code = o.error instanceof VendorError ? o.error.code : String(o.error);
      v.push(
        `${this.opName(o)} failed (${code}) at ${this.t(o.endedAt)} although the current ${after.token} could serve it (expires ${this.t(after.expiresAt)})`,
      );
    }
  }

  /** Invariants 5 (unavailability backoff) and 6 (auth-failure backoff), across instances. */
  private checkBackoffs(v: string[]): void {
    const authMs = this.settings.authFailureBackoffSeconds * 1000;
    const baseMs = this.settings.unavailableBackoffSeconds * 1000;
    for (const a of this.crm.logins) {
      if (a.endedAt === undefined) continue;
      const end = a.endedAt;
      const outage =
        a.outcome === 'unavailable' || a.outcome === 'timeout' || a.outcome === 'reset';
      if (a.outcome !== 'rejected' && !outage) continue;
      const code = a.outcome === 'rejected' ? 'CRM_AUTH_FAILED' : 'CRM_UNAVAILABLE';
      const recorded = this.store.stateWrites.find(
        (w) =>
          w.state.profile === a.username &&
          w.state.lastAttempt?.at === end &&
          w.state.lastAttempt.error?.code === code,
      );
      // Without the failure on the table, other instances cannot know (a store fault).
      if (!recorded) continue;
      const later = this.crm.logins.filter(
        (b) => b.username === a.username && b.startedAt >= end && b.id > a.id,
      );
      if (a.outcome === 'rejected') {
        const until = recorded.state.authFailure?.until ?? 0;
        if (until < end + authMs)
          v.push(`login #${a.id} rejected at ${this.t(end)}: backoff only until ${this.t(until)}`);
        for (const b of later) {
          if (
            b.startedAt < end + authMs &&
            passwordVersion(b.password) === passwordVersion(a.password)
          ) {
            v.push(
              `login #${b.id} (${b.caller}, ${this.t(b.startedAt)}) with the same secret within ${authMs} ms of rejection #${a.id} (${this.t(end)})`,
            );
          }
        }
      } else {
        const until = recorded.state.unavailable?.until ?? 0;
        if (until < end + baseMs)
          v.push(
            `login #${a.id} unavailable at ${this.t(end)}: backoff only until ${this.t(until)}`,
          );
        const next = later[0];
        if (next && next.startedAt < until) {
          v.push(
            `login #${next.id} (${next.caller}, ${this.t(next.startedAt)}) before the unavailability backoff of #${a.id} ended (${this.t(until)})`,
          );
        }
      }
    }
  }

  /**
   * Invariant 7: an invalidation never answers the token it names, and when its own login
   * replaced that token, the token became due for release at once.
   */
  private checkInvalidate(v: string[]): void {
    for (const o of this.ops) {
      if (o.kind !== 'invalidate' || !o.result) continue;
      if (o.result.token.token === o.token) {
        v.push(`${this.opName(o)} answered the token it invalidated`);
        continue;
      }
      if (o.result.source !== 'login' || o.token === undefined) continue;
      const answer = o.result.token.tokenId;
      const index = this.store.stateWrites.findIndex((w) => w.state.current?.tokenId === answer);
      if (index < 0) continue;
      const replaced = this.store.stateAfter(o.profile, index)?.current;
      // Only a token replaced before its expiry must be made due early.
      if (replaced?.token !== o.token || this.store.stateWrites[index]!.at >= replaced.expiresAt) {
        continue;
      }
      // Unsure whether its write landed, the instance must not make anything due (invariant 3).
      const replacedAt = this.store.stateWrites[index]!.at;
      // (It cannot tell when its check of the state, or the record's update, failed.)
      const unsure = this.store.faults.some(
        (f) =>
          f.key === replaced.tokenId ||
          (f.key === o.profile &&
            f.operation === 'getState' &&
            f.caller === o.instance &&
            f.at >= replacedAt &&
            f.at <= (o.endedAt ?? replacedAt)),
      );
      if (unsure || this.throttledDuring(replacedAt, o.endedAt ?? replacedAt)) continue;
      // markDue reads and writes the record after the state write.
      if (this.firstDue(replaced.tokenId) > replacedAt + 3 * this.maxLatency) {
        v.push(`${this.opName(o)} replaced ${o.token}, which did not become due for release`);
      }
    }
  }

  /** Refresh-ahead: a token due for refresh is not served without a login attempt for it. */
  private checkRefreshAhead(v: string[]): void {
    for (const o of this.ops) {
      // The memory cache may serve what it last read for MEMORY_CACHE_SECONDS.
      if (o.kind !== 'vend' || !o.result || o.endedAt === undefined) continue;
      if (o.result.source === 'memory') continue;
      const state = this.store.stateAfter(o.profile, o.startMark);
      const tok = o.result.token;
      if (state?.current?.tokenId !== tok.tokenId) continue;
      if (!isDueForRefresh(tok, o.startedAt, this.settings)) continue;
      const now = o.startedAt;
      if (state.lease && state.lease.until > now) continue;
      if ((state.unavailable?.until ?? 0) > now || (state.authFailure?.until ?? 0) > now) continue;
      if (this.storeTroubleDuring(o.startedAt, o.endedAt)) continue;
      const end = o.endedAt;
      const attempted = this.crm.logins.some(
        (l) => l.username === o.profile && l.startedAt >= o.startedAt && l.startedAt <= end,
      );
      if (!attempted) {
        v.push(
          `${this.opName(o)} served ${tok.token} (due for refresh since it has ${tok.expiresAt - now} ms left) with no login attempt`,
        );
      }
    }
  }

  /** Invariant 9: a warm vend is at most one store read, none when served from memory. */
  private checkCost(v: string[]): void {
    for (const o of this.ops) {
      if (!o.result || o.endedAt === undefined) continue;
      const end = o.endedAt;
      const alone = !this.ops.some(
        (x) =>
          x !== o &&
          x.instance === o.instance &&
          x.startedAt <= end &&
          (x.endedAt ?? Number.POSITIVE_INFINITY) >= o.startedAt,
      );
      if (!alone) continue;
      const calls = this.store.calls.filter(
        (c) => c.caller === o.instance && c.at >= o.startedAt && c.at <= end,
      );
      if (o.result.source === 'memory' && calls.length > 0) {
        v.push(`${this.opName(o)} served from memory with ${calls.length} store calls`);
      }
      if (o.kind === 'invalidate' && !calls.some((c) => c.operation === 'getState')) {
        v.push(`${this.opName(o)} invalidate did not read the table`);
      }
      if (o.kind !== 'vend') continue;
      const state = this.store.stateAfter(o.profile, o.startMark);
      const current: CurrentToken | undefined = state?.current;
      const warm =
        current !== undefined &&
        // Nobody changed the state meanwhile (a revocation, a login by another instance).
        this.store.stateAfter(o.profile, o.endMark ?? 0)?.gen === state?.gen &&
        // Warm from the request to the answer (a slow table moves the read later).
        canServe(current, end, o.minValidityMs) &&
        !isDueForRefresh(current, end, this.settings) &&
        version(current.secretVersion) === this.secrets.versionAt(o.profile, end);
      if (warm && calls.length > 1) {
        v.push(
          `${this.opName(o)} warm vend made ${calls.length} store calls (${calls.map((c) => c.operation).join(', ')})`,
        );
      }
    }
  }
}

const FakeClock_START = new FakeClock().now();

/** Runs one scenario and returns the invariant violations (empty: all hold) and a trace. */
export async function runScenario(
  scenario: Scenario,
): Promise<{ violations: string[]; world: LifecycleWorld }> {
  const world = new LifecycleWorld(scenario);
  let index = 0;
  for (const command of scenario.commands) {
    if (command.kind === 'storeLatency') world.maxLatency = Math.max(world.maxLatency, command.ms);
    if (command.kind === 'crm' && command.mode.kind === 'jwt') world.jwtEverUsed = true;
    await world.execute(command, index++);
  }
  await world.finish();
  return { violations: world.check(), world };
}

/** The property: every invariant holds after any scenario. Throws with the violations. */
export async function lifecycleHolds(scenario: Scenario): Promise<void> {
  const { violations, world } = await runScenario(scenario);
  if (violations.length > 0) {
    throw new Error(
      `${violations.length} invariant violation(s):\n  ${violations.slice(0, 12).join('\n  ')}\ncommands:\n  ${world.trace.join('\n  ')}\nevents:\n  ${world.dump()}`,
    );
  }
}
