import { CrmRejectedError, CrmUnavailableError } from '../../functions/core/errors.js';
import type {
  Clock,
  Credentials,
  CrmClient,
  LoginResult,
  ReleaseOutcome,
} from '../../functions/core/types.js';

/**
 * How CRM.COM behaves for the calls that start while the mode is set. `reject` and `jwt` apply to
 * logins only (releases work); the outage modes (`unavailable`, `hang`, `reset`) to both calls.
 */
export type CrmMode =
  | { readonly kind: 'ok' }
  /** `LOGIN_FAILED` for every login, whatever the password. */
  | { readonly kind: 'reject' }
  /** HTTP 5xx. */
  | { readonly kind: 'unavailable' }
  /** No answer: the client gives up after its timeout. */
  | { readonly kind: 'hang' }
  /** The connection is reset after the usual latency. */
  | { readonly kind: 'reset' }
  /**
   * R12+: a JWT whose `exp − iat` is `lifetimeSeconds` (shorter than the settings expect), its
   * `iat` on a CRM.COM clock that is `skewSeconds` off.
   */
  | {
      readonly kind: 'jwt';
      readonly lifetimeSeconds: number;
      readonly skewSeconds: number;
      /** A JWT with `exp` only (then read on the local clock). */
      readonly withoutIat?: boolean;
    }
  /** Logins work; release answers HTTP 404 (R12+). */
  | { readonly kind: 'release-unsupported' };

export type LoginOutcomeKind = 'ok' | 'rejected' | 'unavailable' | 'timeout' | 'reset' | 'frozen';

export interface LoginCall {
  readonly id: number;
  /** Who called (an instance name): calls of a frozen caller never answer. */
  readonly caller: string;
  readonly username: string;
  readonly password: string;
  readonly startedAt: number;
  /** `options.mark()` when the call arrived: a position in another log (e.g. store writes). */
  readonly mark: number;
  endedAt?: number;
  outcome?: LoginOutcomeKind;
  token?: string;
}

export interface IssuedToken {
  readonly token: string;
  readonly caller: string;
  readonly username: string;
  /** When CRM.COM issued it (after the request arrived). */
  readonly issuedAt: number;
  /** When CRM.COM stops accepting it, on the real clock. */
  readonly realExpiresAt: number;
  /** Whether the login's answer reached the caller (false: its caller was frozen meanwhile). */
  delivered: boolean;
  releasedAt?: number;
  /** `options.sequence()` when CRM.COM ended it: orders the release within one instant. */
  releasedSeq?: number;
}

export interface ReleaseCall {
  readonly caller: string;
  readonly token: string;
  readonly startedAt: number;
  endedAt?: number;
  outcome?: ReleaseOutcome['kind'];
  /** CRM.COM ended a live token with this call: a successful release. */
  processed?: boolean;
}

/**
 * A CRM.COM double on the fake clock whose behaviour per call follows the mode a test (or a
 * property's command sequence) sets, optionally overridden per call by `script`. It checks
 * passwords (so rotations can be modelled), records every login, every token issued and every
 * release call, and can freeze a caller: its calls never answer, as for a process killed mid-call.
 */
export class ScriptedCrm {
  mode: CrmMode = { kind: 'ok' };
  /** Behaviours for the next login calls, in order; the mode applies once it is empty. */
  readonly script: CrmMode[] = [];
  /** Time CRM.COM takes to answer a call (a hang lasts the client's timeout instead). */
  latencyMs = 100;
  readonly logins: LoginCall[] = [];
  readonly issued: IssuedToken[] = [];
  readonly releases: ReleaseCall[] = [];
  private readonly passwords = new Map<string, string>();
  private readonly frozen = new Set<string>();
  private counter = 0;

  constructor(
    private readonly clock: Clock,
    private readonly options: {
      /** The client's timeout (`CRM_TIMEOUT_MS`): how long a hanging call takes to fail. */
      readonly timeoutMs: number;
      /** How long an opaque token really works. */
      readonly tokenLifetimeSeconds: number;
      /** Orders calls against another log within one instant of the fake clock. */
      readonly mark?: () => number;
      /** A global event counter, to order releases against other events of the same instant. */
      readonly sequence?: () => number;
    },
  ) {}

  /** The password CRM.COM accepts for `username` (unset: any password). */
  setPassword(username: string, password: string): void {
    this.passwords.set(username, password);
  }

  /** A CrmClient whose calls are recorded as `caller`'s. */
  client(caller: string): CrmClient {
    return {
      login: (_baseUrl, credentials) => this.login(caller, credentials),
      release: (_baseUrl, token) => this.release(caller, token),
    };
  }

  /** From now on `caller`'s calls, pending ones included, never answer. */
  freeze(caller: string): void {
    this.frozen.add(caller);
  }

  /** The record of a token CRM.COM issued. */
  tokenInfo(token: string): IssuedToken | undefined {
    return this.issued.find((t) => t.token === token);
  }

  /** Release calls that ended `token` while it was live (invariant 4: at most one). */
  successfulReleases(token: string): number {
    return this.releases.filter((r) => r.token === token && r.processed).length;
  }

  private async login(caller: string, credentials: Credentials): Promise<LoginResult> {
    const username = credentials.kind === 'password' ? credentials.username : 'web-api-key';
    const password = credentials.kind === 'password' ? credentials.password : credentials.webApiKey;
    const call: LoginCall = {
      id: this.logins.length + 1,
      caller,
      username,
      password,
      startedAt: this.clock.now(),
      mark: this.options.mark?.() ?? 0,
    };
    this.logins.push(call);
    if (this.frozen.has(caller)) return this.never(call);
    const mode = this.script.shift() ?? this.mode;
    if (mode.kind === 'hang') {
      await this.clock.sleep(this.options.timeoutMs);
      if (this.frozen.has(caller)) return this.never(call);
      this.end(call, 'timeout');
      throw new CrmUnavailableError('timeout', 'CRM.COM did not answer in time');
    }
    await this.clock.sleep(this.latencyMs);
    if (mode.kind === 'reset') return this.fail(caller, call, 'reset');
    if (mode.kind === 'unavailable') return this.fail(caller, call, 'unavailable');
    const expected = this.passwords.get(username);
    if (mode.kind === 'reject' || (expected !== undefined && expected !== password)) {
      return this.fail(caller, call, 'rejected');
    }
    // CRM.COM processed the login: the token exists whether or not the answer arrives.
    const now = this.clock.now();
    this.counter += 1;
    const token = `TOKEN-${this.counter.toString().padStart(4, '0')}`;
    let result: LoginResult = { token };
    let realExpiresAt = now + this.options.tokenLifetimeSeconds * 1000;
    if (mode.kind === 'jwt') {
      const iat = Math.floor(now / 1000) + mode.skewSeconds;
      const exp = iat + mode.lifetimeSeconds;
      result = { token, jwt: mode.withoutIat ? { exp } : { iat, exp } };
      // CRM.COM's own clock reaches `exp` this long after the (whole-second) `iat`.
      realExpiresAt = (exp - mode.skewSeconds) * 1000;
    }
    const issued: IssuedToken = {
      token,
      caller,
      username,
      issuedAt: now,
      realExpiresAt,
      delivered: false,
    };
    this.issued.push(issued);
    call.token = token;
    if (this.frozen.has(caller)) return this.never(call);
    issued.delivered = true;
    this.end(call, 'ok');
    return result;
  }

  private async release(caller: string, token: string): Promise<ReleaseOutcome> {
    const call: ReleaseCall = { caller, token, startedAt: this.clock.now() };
    this.releases.push(call);
    if (this.frozen.has(caller)) return new Promise<never>(() => {});
    const mode = this.mode;
    if (mode.kind === 'hang') {
      await this.clock.sleep(this.options.timeoutMs);
      return this.answer(call, { kind: 'retry', reason: 'timeout' });
    }
    await this.clock.sleep(this.latencyMs);
    if (this.frozen.has(caller)) return new Promise<never>(() => {});
    if (mode.kind === 'unavailable')
      return this.answer(call, { kind: 'retry', reason: 'http-503' });
    if (mode.kind === 'reset') return this.answer(call, { kind: 'retry', reason: 'network' });
    if (mode.kind === 'release-unsupported') {
      return this.answer(call, { kind: 'unsupported', httpStatus: 404 });
    }
    const issued = this.tokenInfo(token);
    const now = this.clock.now();
    if (!issued || issued.releasedAt !== undefined || issued.realExpiresAt <= now) {
      return this.answer(call, { kind: 'already-invalid', crmCode: 'INVALID_TOKEN' });
    }
    issued.releasedAt = now;
    issued.releasedSeq = this.options.sequence?.() ?? 0;
    call.processed = true;
    return this.answer(call, { kind: 'released' });
  }

  private answer(call: ReleaseCall, outcome: ReleaseOutcome): ReleaseOutcome {
    call.endedAt = this.clock.now();
    call.outcome = outcome.kind;
    return outcome;
  }

  private end(call: LoginCall, outcome: LoginOutcomeKind): void {
    call.endedAt = this.clock.now();
    call.outcome = outcome;
  }

  private fail(
    caller: string,
    call: LoginCall,
    outcome: 'rejected' | 'unavailable' | 'reset',
  ): Promise<never> {
    if (this.frozen.has(caller)) return this.never(call);
    this.end(call, outcome);
    if (outcome === 'rejected') throw new CrmRejectedError('LOGIN_FAILED', 200);
    if (outcome === 'reset') throw new CrmUnavailableError('network', 'connection reset');
    throw new CrmUnavailableError('server-error', 'CRM.COM answered 503', 503);
  }

  private never(call: LoginCall): Promise<never> {
    call.outcome = 'frozen';
    return new Promise<never>(() => {});
  }
}
