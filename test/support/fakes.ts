import { CrmRejectedError, CrmUnavailableError, SecretError } from '../../functions/core/errors.js';
import { parseSettings, type Settings } from '../../functions/core/settings.js';
import type {
  Clock,
  Credentials,
  CrmClient,
  LoginResult,
  ProfileSecret,
  ReleaseOutcome,
  SecretSource,
} from '../../functions/core/types.js';

/** Short settings that satisfy every constraint, so tests run in seconds of fake time. */
export function testSettings(overrides: Record<string, string | number | boolean> = {}): Settings {
  return parseSettings(
    {
      TOKEN_LIFETIME_SECONDS: 120,
      RELEASE_LEAD_SECONDS: 20,
      REFRESH_AHEAD_SECONDS: 30,
      MIN_VALIDITY_SECONDS: 10,
      AUTH_FAILURE_BACKOFF_SECONDS: 60,
      UNAVAILABLE_BACKOFF_SECONDS: 1,
      RELEASE_INTERVAL_SECONDS: 5,
      CRM_TIMEOUT_MS: 1000,
      MEMORY_CACHE_SECONDS: 5,
      SECRET_CACHE_SECONDS: 300,
      ...overrides,
    },
    'local',
  );
}

export type LoginBehaviour =
  | { kind: 'ok'; token?: string; jwt?: { exp?: number; iat?: number } }
  | { kind: 'reject' }
  | { kind: 'unavailable' }
  | { kind: 'hang' };

/**
 * A CRM.COM double on the fake clock: logins take `latencyMs`, behaviours are queued or
 * default, and every call is counted.
 */
export class FakeCrm implements CrmClient {
  logins = 0;
  loginAttempts = 0;
  readonly credentialsSeen: Credentials[] = [];
  readonly releases: string[] = [];
  releaseOutcome: ReleaseOutcome = { kind: 'released' };
  behaviour: LoginBehaviour = { kind: 'ok' };
  readonly queue: LoginBehaviour[] = [];
  latencyMs = 100;
  private counter = 0;

  constructor(
    private readonly clock: Clock,
    private readonly timeoutMs = 1000,
  ) {}

  async login(_baseUrl: string, credentials: Credentials): Promise<LoginResult> {
    this.loginAttempts += 1;
    this.credentialsSeen.push(credentials);
    const behaviour = this.queue.shift() ?? this.behaviour;
    if (behaviour.kind === 'hang') {
      await this.clock.sleep(this.timeoutMs);
      throw new CrmUnavailableError('timeout', 'CRM.COM did not answer in time');
    }
    await this.clock.sleep(this.latencyMs);
    if (behaviour.kind === 'reject') throw new CrmRejectedError('LOGIN_FAILED', 200);
    if (behaviour.kind === 'unavailable') {
      throw new CrmUnavailableError('server-error', 'CRM.COM answered 503', 503);
    }
    this.logins += 1;
    this.counter += 1;
    const token = behaviour.token ?? `TOKEN-${this.counter.toString().padStart(4, '0')}`;
    return behaviour.jwt ? { token, jwt: behaviour.jwt } : { token };
  }

  async release(_baseUrl: string, token: string): Promise<ReleaseOutcome> {
    await this.clock.sleep(10);
    if (this.releaseOutcome.kind === 'released' || this.releaseOutcome.kind === 'already-invalid') {
      this.releases.push(token);
    }
    return this.releaseOutcome;
  }
}

/** Profile secrets in memory, with rotation and faults. */
export class FakeSecrets implements SecretSource {
  reads = 0;
  failing = false;
  private readonly values = new Map<string, ProfileSecret>();

  constructor(profiles: string[] = ['default']) {
    for (const p of profiles) this.set(p, 'v1', 'secret-1');
  }

  set(profile: string, version: string, password: string): void {
    this.values.set(profile, {
      version,
      credentials: {
        kind: 'password',
        username: 'user',
        password,
        organisation: 'ORG',
        baseUrl: 'http://crm.test/crmapi/rest/v2',
      },
    });
  }

  has(profile: string): boolean {
    return this.values.has(profile);
  }

  async get(profile: string): Promise<ProfileSecret> {
    this.reads += 1;
    const value = this.values.get(profile);
    if (this.failing || !value) throw new SecretError('The secret could not be read');
    return value;
  }

  invalidate(): void {}
}
