import { StoreError } from '../../functions/core/errors.js';
import type {
  Clock,
  DuePage,
  ProfileState,
  TokenRecord,
  TokenStore,
} from '../../functions/core/types.js';

export type StoreOperation = 'getState' | 'putState' | 'getToken' | 'putToken' | 'queryPending';

/**
 * - `cas-false`: a conditional write answers "condition failed" and writes nothing;
 * - `throttle`: the call throws a StoreError (ProvisionedThroughputExceeded) and does nothing;
 * - `ghost-false`: the write lands, then answers "condition failed" (an SDK retry of a write
 *   whose first attempt landed after a timeout);
 * - `ghost-throw`: the write lands, then throws (a timeout after the write).
 * Reads only get `throttle`.
 */
export type StoreFaultKind = 'cas-false' | 'throttle' | 'ghost-false' | 'ghost-throw';

export interface StoreFaultPlan {
  readonly kind: StoreFaultKind;
  /** @default any operation the fault applies to */
  readonly operation?: StoreOperation;
  /** @default any caller */
  readonly caller?: string;
  /** Matching calls to let through first. @default 0 */
  readonly skip?: number;
}

export interface StoreCall {
  readonly at: number;
  readonly caller: string;
  readonly operation: StoreOperation;
}

export interface StoreFaultEvent extends StoreCall {
  readonly kind: StoreFaultKind;
  /** The profile (state calls) or token id (record calls) the call was about. */
  readonly key?: string;
}

/** A successful write as the inner store applied it (ghost writes included). */
export interface StateWrite {
  readonly at: number;
  readonly caller: string;
  readonly state: ProfileState;
}

export interface RecordWrite {
  readonly at: number;
  readonly caller: string;
  readonly record: TokenRecord;
}

interface PendingFault {
  readonly plan: StoreFaultPlan;
  skip: number;
}

const WRITES: readonly StoreOperation[] = ['putState', 'putToken'];

/**
 * A TokenStore wrapper that injects faults: one-shot faults planned with `inject`, a throttling
 * window (`throttling`), latency on the (fake) clock before each call takes effect, and callers
 * that freeze (a killed process: its calls never answer, pending writes never land). It records
 * every call, every fault and every write that landed, so tests can reconstruct what the table
 * held at any moment.
 */
export class FaultyStore implements TokenStore {
  /** Every call waits this long before it takes effect. */
  latencyMs = 0;
  /** While true, every call throws a StoreError (a throttled or unreachable table). */
  throttling = false;
  readonly calls: StoreCall[] = [];
  readonly faults: StoreFaultEvent[] = [];
  readonly stateWrites: StateWrite[] = [];
  readonly recordWrites: RecordWrite[] = [];
  private readonly pending: PendingFault[] = [];
  private readonly frozen = new Set<string>();

  constructor(
    readonly inner: TokenStore,
    private readonly clock: Clock,
  ) {}

  /** Plans a one-shot fault for the next matching call. */
  inject(plan: StoreFaultPlan): void {
    this.pending.push({ plan, skip: plan.skip ?? 0 });
  }

  /** Drops planned faults and ends throttling and latency. */
  heal(): void {
    this.pending.length = 0;
    this.throttling = false;
    this.latencyMs = 0;
  }

  get plannedFaults(): number {
    return this.pending.length;
  }

  /** From now on `caller`'s calls, pending ones included, never answer nor take effect. */
  freeze(caller: string): void {
    this.frozen.add(caller);
  }

  /** The store as `caller` sees it: the same table, with calls recorded under that name. */
  view(caller: string): TokenStore {
    return {
      getState: (profile) =>
        this.call(caller, 'getState', profile, () => this.inner.getState(profile)),
      putState: (state, expectedGen) =>
        this.call(
          caller,
          'putState',
          state.profile,
          () => this.inner.putState(state, expectedGen),
          () => ({ kind: 'state', value: state }),
        ),
      getToken: (tokenId, now) =>
        this.call(caller, 'getToken', tokenId, () => this.inner.getToken(tokenId, now)),
      putToken: (record, expectedRev) =>
        this.call(
          caller,
          'putToken',
          record.tokenId,
          () => this.inner.putToken(record, expectedRev),
          () => ({ kind: 'record', value: record }),
        ),
      queryPending: (options) =>
        this.call(caller, 'queryPending', undefined, () => this.inner.queryPending(options)),
    };
  }

  getState(profile: string): Promise<ProfileState | undefined> {
    return this.view('direct').getState(profile);
  }

  putState(state: ProfileState, expectedGen: number): Promise<boolean> {
    return this.view('direct').putState(state, expectedGen);
  }

  getToken(tokenId: string, now: number): Promise<TokenRecord | undefined> {
    return this.view('direct').getToken(tokenId, now);
  }

  putToken(record: TokenRecord, expectedRev: number): Promise<boolean> {
    return this.view('direct').putToken(record, expectedRev);
  }

  queryPending(options: Parameters<TokenStore['queryPending']>[0]): Promise<DuePage> {
    return this.view('direct').queryPending(options);
  }

  /** The profile's state as the table held it at `at` (after every write up to then). */
  stateAt(profile: string, at: number): ProfileState | undefined {
    let found: ProfileState | undefined;
    for (const write of this.stateWrites) {
      if (write.at > at) break;
      if (write.state.profile === profile) found = write.state;
    }
    return found;
  }

  /** The profile's state after the first `writes` state writes (a `stateWrites.length` taken earlier). */
  stateAfter(profile: string, writes: number): ProfileState | undefined {
    for (let i = Math.min(writes, this.stateWrites.length) - 1; i >= 0; i--) {
      const write = this.stateWrites[i]!;
      if (write.state.profile === profile) return write.state;
    }
    return undefined;
  }

  /** Every version of a token record that landed, oldest first. */
  recordHistory(tokenId: string): RecordWrite[] {
    return this.recordWrites.filter((w) => w.record.tokenId === tokenId);
  }

  /** Faults that hit calls between `from` and `to` (inclusive). */
  faultsBetween(from: number, to: number, caller?: string): StoreFaultEvent[] {
    return this.faults.filter(
      (f) => f.at >= from && f.at <= to && (caller === undefined || f.caller === caller),
    );
  }

  private async call<T>(
    caller: string,
    operation: StoreOperation,
    key: string | undefined,
    run: () => Promise<T>,
    written?: () => { kind: 'state'; value: ProfileState } | { kind: 'record'; value: TokenRecord },
  ): Promise<T> {
    if (this.frozen.has(caller)) return never<T>();
    if (this.latencyMs > 0) await this.clock.sleep(this.latencyMs);
    if (this.frozen.has(caller)) return never<T>();
    const at = this.clock.now();
    this.calls.push({ at, caller, operation });
    const fault = this.throttling ? 'throttle' : this.takeFault(caller, operation);
    if (fault) this.faults.push({ at, caller, operation, kind: fault, ...(key ? { key } : {}) });
    if (fault === 'throttle') {
      throw new StoreError(`${operation} throttled (ProvisionedThroughputExceededException)`);
    }
    if (fault === 'cas-false') return false as T;
    const result = await run();
    if (result === true && written) {
      const w = written();
      if (w.kind === 'state') {
        this.stateWrites.push({ at, caller, state: structuredClone(w.value) });
      } else {
        this.recordWrites.push({ at, caller, record: structuredClone(w.value) });
      }
    }
    if (fault === 'ghost-false') return false as T;
    if (fault === 'ghost-throw') throw new StoreError(`${operation} timed out after it was sent`);
    return result;
  }

  private takeFault(caller: string, operation: StoreOperation): StoreFaultKind | undefined {
    const isWrite = WRITES.includes(operation);
    for (let i = 0; i < this.pending.length; i++) {
      const entry = this.pending[i]!;
      const { plan } = entry;
      if (plan.operation !== undefined && plan.operation !== operation) continue;
      if (plan.caller !== undefined && plan.caller !== caller) continue;
      // Only writes can fail conditionally or land before failing.
      if (!isWrite && plan.kind !== 'throttle') continue;
      if (entry.skip > 0) {
        entry.skip -= 1;
        continue;
      }
      this.pending.splice(i, 1);
      return plan.kind;
    }
    return undefined;
  }
}

function never<T>(): Promise<T> {
  return new Promise<T>(() => {});
}
