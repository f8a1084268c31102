/**
 * A CRM.COM Web API simulator on 127.0.0.1: the authentication calls, one data call, and faults
 * that tests and local mode can switch at run time, in process or through an admin HTTP API.
 *
 * CRM.COM codes it answers (all with `{"status":{"code","message","description"},"data"}`):
 * - `OK` (HTTP 200) on success;
 * - `LOGIN_FAILED` (HTTP 200) for wrong credentials or web API key, and the `reject` login fault;
 * - `INVALID_TOKEN` (HTTP 200) for an unknown, released or expired token (release, data call);
 * - `INVALID_REQUEST` (HTTP 400) for a body that is not a JSON object or lacks a mandatory field;
 * - `PERMISSION_DENIED` (HTTP 200) for the `reject` release fault;
 * - `SERVICE_UNAVAILABLE` (HTTP 503) and `TOO_MANY_REQUESTS` (HTTP 429) for those faults.
 */
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

export const REST_ROOT_PATH = '/crmapi/rest/v2';
export const ADMIN_PATH = '/__simulator';

/** How the simulator answers a login or release call. */
export type SimulatorFault =
  | 'none'
  /** A CRM.COM rejection: `LOGIN_FAILED` for a login, `PERMISSION_DENIED` for a release. */
  | 'reject'
  /** HTTP 503 with a JSON error. */
  | 'unavailable'
  /** HTTP 429 with a JSON error. */
  | 'throttle'
  /** HTTP 500 with an HTML page. */
  | 'server-error'
  /** Never answers, until the client gives up or the simulator closes. */
  | 'hang'
  /** Destroys the connection (TCP RST) without answering. */
  | 'reset'
  /** HTTP 200 with an HTML page. */
  | 'non-json'
  | 'not-found'
  | 'method-not-allowed'
  /** Release only: answers `INVALID_TOKEN` and ends the token. Ignored for logins. */
  | 'invalid-token';

export const SIMULATOR_FAULTS: readonly SimulatorFault[] = [
  'none',
  'reject',
  'unavailable',
  'throttle',
  'server-error',
  'hang',
  'reset',
  'non-json',
  'not-found',
  'method-not-allowed',
  'invalid-token',
];

export interface SimulatorFaults {
  readonly login: SimulatorFault;
  readonly release: SimulatorFault;
  /** Delay before answering a login (faulted or not). */
  readonly loginDelayMs: number;
  readonly releaseDelayMs: number;
  /**
   * Faulted calls left: each login or release call that a fault or delay applies to uses one;
   * at zero every fault and delay reverts to none. Undefined: until changed.
   */
  readonly count?: number;
}

export interface SimulatorUser {
  readonly username: string;
  readonly password: string;
  readonly organisation: string;
  readonly unit?: string;
}

export interface SimulatorOptions {
  /** @default 0 (an ephemeral port) */
  readonly port?: number;
  /** @default one user: demo / demo, organisation DEMO */
  readonly users?: readonly SimulatorUser[];
  /** @default ['demo-web-api-key'] */
  readonly webApiKeys?: readonly string[];
  /** `opaque`: 32 upper-case hex characters (R10/R11); `jwt`: an HS256 JWT (R12+). @default 'opaque' */
  readonly tokenMode?: 'opaque' | 'jwt';
  /** How long a token really works, on the simulator's clock. @default 3600 */
  readonly tokenLifetimeSeconds?: number;
  /** JWT mode: `exp`/`iat` as JSON strings. @default false */
  readonly jwtClaimsAsStrings?: boolean;
  /** JWT mode: shifts `iat` and `exp`, as a CRM.COM clock that is off would. @default 0 */
  readonly iatSkewSeconds?: number;
  /** JWT mode: `exp − iat`, when it differs from the real lifetime. @default tokenLifetimeSeconds */
  readonly jwtLifetimeSeconds?: number;
  /** `false`: release answers 404, as on R12+. @default true */
  readonly releaseSupported?: boolean;
  readonly faults?: Partial<SimulatorFaults>;
  /** The simulator's clock (epoch ms). @default Date.now */
  readonly now?: () => number;
  /** Larger request bodies get HTTP 413. @default 65536 */
  readonly maxBodyBytes?: number;
}

export interface IssuedTokenStats {
  /** First 12 hex characters of the token's SHA-256. */
  readonly fingerprint: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly releasedAt?: number;
  /** Ended by the `invalid-token` release fault. */
  readonly invalidatedAt?: number;
}

/** Counters since start or the last reset; never a token, only fingerprints. */
export interface SimulatorStats {
  readonly loginAttempts: number;
  readonly logins: number;
  readonly loginRejections: number;
  readonly releaseAttempts: number;
  readonly releases: number;
  /** Release calls CRM.COM processed (answered OK or INVALID_TOKEN), per token fingerprint. */
  readonly releaseCountsByToken: Record<string, number>;
  readonly issued: readonly IssuedTokenStats[];
  readonly liveTokens: number;
  readonly dataCalls: number;
  /** TCP connections accepted (keep-alive reuse shows as fewer connections than calls). */
  readonly connections: number;
}

/** A request as received, secrets included: in process only, for assertions. */
export interface RecordedRequest {
  readonly method: string;
  /** Path and query string. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly body: string;
}

export interface CrmSimulator {
  /** The REST root, `http://127.0.0.1:PORT/crmapi/rest/v2`. */
  readonly url: string;
  /** `http://127.0.0.1:PORT`, where the admin API lives under `/__simulator`. */
  readonly origin: string;
  readonly port: number;
  /** Merges `partial` into the faults; `count` is set from `partial` on every call. */
  setFaults(partial: Partial<SimulatorFaults>): void;
  faults(): SimulatorFaults;
  stats(): SimulatorStats;
  /** The tokens issued, in order (in process only: never over HTTP). */
  issuedTokens(): string[];
  /** The latest requests received, oldest first (at most 200). */
  requests(): RecordedRequest[];
  /** Adds a user or replaces the one with the same user name (password rotation). */
  setUser(user: SimulatorUser): void;
  setWebApiKeys(keys: readonly string[]): void;
  /** Moves the simulator's clock forward, so tokens expire without waiting. */
  advanceClock(ms: number): void;
  /** Back to the start options: faults, users, keys, clock; tokens and stats forgotten. */
  reset(): void;
  /** Stops the server and drops every connection, hanging ones included. */
  close(): Promise<void>;
}

interface TokenEntry {
  readonly fingerprint: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
  releasedAt?: number;
  invalidatedAt?: number;
}

interface Counters {
  loginAttempts: number;
  logins: number;
  loginRejections: number;
  releaseAttempts: number;
  releases: number;
  dataCalls: number;
  connections: number;
}

type Body =
  | { readonly kind: 'ok'; readonly text: string }
  | { readonly kind: 'too-large' }
  | { readonly kind: 'aborted' };

const DEFAULT_USERS: readonly SimulatorUser[] = [
  { username: 'demo', password: 'demo', organisation: 'DEMO' },
];
const DEFAULT_WEB_API_KEYS: readonly string[] = ['demo-web-api-key'];
const NO_FAULTS: SimulatorFaults = {
  login: 'none',
  release: 'none',
  loginDelayMs: 0,
  releaseDelayMs: 0,
};
const MAX_RECORDED_REQUESTS = 200;
const JSON_TYPE = 'application/json;charset=UTF-8';
const HTML_TYPE = 'text/html;charset=UTF-8';

/** Starts a simulator on 127.0.0.1; resolves once it listens. */
export async function startCrmSimulator(options: SimulatorOptions = {}): Promise<CrmSimulator> {
  const simulator = new Simulator(options);
  await simulator.listen(options.port ?? 0);
  return simulator;
}

/** First 12 hex characters of the token's SHA-256, as the simulator's stats name tokens. */
export function simulatorFingerprint(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 12);
}

class Simulator implements CrmSimulator {
  private readonly options: SimulatorOptions;
  private readonly server = createServer();
  private readonly sockets = new Set<Socket>();
  private readonly waits = new Set<{ timer: NodeJS.Timeout; done: () => void }>();
  private readonly jwtSecret = randomBytes(32);
  private readonly maxBodyBytes: number;
  private readonly lifetimeSeconds: number;
  private currentFaults: SimulatorFaults = NO_FAULTS;
  private users = new Map<string, SimulatorUser>();
  private webApiKeys = new Set<string>();
  private tokens = new Map<string, TokenEntry>();
  private releaseCounts: Record<string, number> = {};
  private recorded: RecordedRequest[] = [];
  private counters: Counters = zeroCounters();
  private clockOffset = 0;
  private closing = false;
  private boundPort = 0;

  constructor(options: SimulatorOptions) {
    this.options = options;
    this.maxBodyBytes = options.maxBodyBytes ?? 64 * 1024;
    this.lifetimeSeconds = options.tokenLifetimeSeconds ?? 3600;
    this.applyStartOptions();
    this.server.on('connection', (socket: Socket) => {
      this.counters.connections += 1;
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch(() => {
        if (!res.headersSent && !res.destroyed) sendHtml(res, 500, 'Internal Server Error');
        else res.destroy();
      });
    });
  }

  get port(): number {
    return this.boundPort;
  }

  get origin(): string {
    return `http://127.0.0.1:${this.boundPort}`;
  }

  get url(): string {
    return `${this.origin}${REST_ROOT_PATH}`;
  }

  listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        this.boundPort = (this.server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  setFaults(partial: Partial<SimulatorFaults>): void {
    const current = this.currentFaults;
    const merged: SimulatorFaults = {
      login: partial.login ?? current.login,
      release: partial.release ?? current.release,
      loginDelayMs: partial.loginDelayMs ?? current.loginDelayMs,
      releaseDelayMs: partial.releaseDelayMs ?? current.releaseDelayMs,
    };
    this.currentFaults = partial.count === undefined ? merged : { ...merged, count: partial.count };
  }

  faults(): SimulatorFaults {
    return { ...this.currentFaults };
  }

  stats(): SimulatorStats {
    const now = this.now();
    const issued: IssuedTokenStats[] = [];
    let liveTokens = 0;
    for (const entry of this.tokens.values()) {
      issued.push({ ...entry });
      if (isLive(entry, now)) liveTokens += 1;
    }
    return {
      ...this.counters,
      releaseCountsByToken: { ...this.releaseCounts },
      issued,
      liveTokens,
    };
  }

  issuedTokens(): string[] {
    return [...this.tokens.keys()];
  }

  requests(): RecordedRequest[] {
    return [...this.recorded];
  }

  setUser(user: SimulatorUser): void {
    this.users.set(user.username, { ...user });
  }

  setWebApiKeys(keys: readonly string[]): void {
    this.webApiKeys = new Set(keys);
  }

  advanceClock(ms: number): void {
    this.clockOffset += ms;
  }

  reset(): void {
    this.applyStartOptions();
    this.tokens = new Map();
    this.releaseCounts = {};
    this.recorded = [];
    this.counters = zeroCounters();
    this.clockOffset = 0;
  }

  close(): Promise<void> {
    this.closing = true;
    for (const wait of this.waits) {
      clearTimeout(wait.timer);
      wait.done();
    }
    this.waits.clear();
    return new Promise((resolve) => {
      if (!this.server.listening) {
        resolve();
        return;
      }
      this.server.close(() => resolve());
      for (const socket of this.sockets) socket.destroy();
      this.sockets.clear();
    });
  }

  private applyStartOptions(): void {
    this.users = new Map((this.options.users ?? DEFAULT_USERS).map((u) => [u.username, { ...u }]));
    this.webApiKeys = new Set(this.options.webApiKeys ?? DEFAULT_WEB_API_KEYS);
    this.currentFaults = NO_FAULTS;
    if (this.options.faults) this.setFaults(this.options.faults);
  }

  private now(): number {
    return (this.options.now ?? Date.now)() + this.clockOffset;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const body = await readBody(req, this.maxBodyBytes);
    if (body.kind === 'aborted') return;
    if (body.kind === 'too-large') {
      res.setHeader('Connection', 'close');
      sendJson(res, 413, crmError('INVALID_REQUEST', 'Request body too large'));
      return;
    }
    this.record(req, url, body.text);
    const path = url.pathname.replace(/\/+$/, '');
    const method = req.method ?? 'GET';
    if (path.startsWith(`${ADMIN_PATH}/`)) {
      this.handleAdmin(path.slice(ADMIN_PATH.length), method, body.text, res);
      return;
    }
    if (!path.startsWith(`${REST_ROOT_PATH}/`)) {
      sendHtml(res, 404, 'Not Found');
      return;
    }
    const route = path.slice(REST_ROOT_PATH.length);
    switch (route) {
      case '/authentication/token':
        if (allow(method, ['POST'], res)) await this.passwordLogin(body.text, res);
        return;
      case '/authentication/web_api_key/token':
        if (allow(method, ['POST'], res)) await this.webApiKeyLogin(req, body.text, res);
        return;
      case '/authentication/token/release':
        if (allow(method, ['POST'], res)) await this.release(body.text, res);
        return;
      case '/contacts/list':
        if (allow(method, ['GET', 'POST'], res)) this.dataCall(url, body.text, res);
        return;
      default:
        sendHtml(res, 404, 'Not Found');
    }
  }

  private async passwordLogin(text: string, res: ServerResponse): Promise<void> {
    this.counters.loginAttempts += 1;
    if (await this.faulted('login', res)) return;
    const body = parseObject(text);
    const { username, password, organisation, unit } = body ?? {};
    if (
      typeof username !== 'string' ||
      typeof password !== 'string' ||
      typeof organisation !== 'string' ||
      (unit !== undefined && typeof unit !== 'string')
    ) {
      this.counters.loginRejections += 1;
      sendJson(
        res,
        400,
        crmError('INVALID_REQUEST', 'username, password and organisation are mandatory'),
      );
      return;
    }
    const user = this.users.get(username);
    if (!user || user.password !== password || user.organisation !== organisation) {
      this.rejectLogin(res);
      return;
    }
    this.sendToken(res, username);
  }

  private async webApiKeyLogin(
    req: IncomingMessage,
    text: string,
    res: ServerResponse,
  ): Promise<void> {
    this.counters.loginAttempts += 1;
    if (await this.faulted('login', res)) return;
    const body = text.trim() === '' ? {} : parseObject(text);
    if (body === undefined || (body.unit !== undefined && typeof body.unit !== 'string')) {
      this.counters.loginRejections += 1;
      sendJson(res, 400, crmError('INVALID_REQUEST', 'The body must be a JSON object'));
      return;
    }
    const key = basicUser(req.headers.authorization);
    if (key === undefined || !this.webApiKeys.has(key)) {
      this.rejectLogin(res);
      return;
    }
    this.sendToken(res, `web-api-key:${simulatorFingerprint(key)}`);
  }

  private rejectLogin(res: ServerResponse): void {
    this.counters.loginRejections += 1;
    sendJson(res, 200, crmError('LOGIN_FAILED', 'Login failed'));
  }

  private sendToken(res: ServerResponse, subject: string): void {
    const now = this.now();
    const token = this.options.tokenMode === 'jwt' ? this.jwt(subject, now) : opaqueToken();
    this.tokens.set(token, {
      fingerprint: simulatorFingerprint(token),
      issuedAt: now,
      expiresAt: now + this.lifetimeSeconds * 1000,
    });
    this.counters.logins += 1;
    sendJson(res, 200, crmOk({ token }));
  }

  private jwt(subject: string, now: number): string {
    const iat = Math.floor(now / 1000) + (this.options.iatSkewSeconds ?? 0);
    const exp = iat + (this.options.jwtLifetimeSeconds ?? this.lifetimeSeconds);
    const asClaim = (n: number): number | string =>
      this.options.jwtClaimsAsStrings ? String(n) : n;
    const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
    const payload = base64url(
      JSON.stringify({
        sub: subject,
        iss: 'crm-simulator',
        jti: randomUUID(),
        iat: asClaim(iat),
        exp: asClaim(exp),
      }),
    );
    const signature = createHmac('sha256', this.jwtSecret)
      .update(`${header}.${payload}`)
      .digest('base64url');
    return `${header}.${payload}.${signature}`;
  }

  private async release(text: string, res: ServerResponse): Promise<void> {
    this.counters.releaseAttempts += 1;
    if (this.options.releaseSupported === false) {
      sendHtml(res, 404, 'Not Found');
      return;
    }
    const fault = this.currentFaults.release;
    if (await this.faulted('release', res)) return;
    const body = parseObject(text);
    const token = body?.token;
    if (typeof token !== 'string' || token === '') {
      sendJson(res, 400, crmError('INVALID_REQUEST', 'token is mandatory'));
      return;
    }
    const fingerprint = simulatorFingerprint(token);
    this.releaseCounts[fingerprint] = (this.releaseCounts[fingerprint] ?? 0) + 1;
    const entry = this.tokens.get(token);
    const now = this.now();
    if (!entry || !isLive(entry, now)) {
      sendJson(res, 200, invalidToken());
      return;
    }
    if (fault === 'invalid-token') {
      entry.invalidatedAt = now;
      sendJson(res, 200, invalidToken());
      return;
    }
    entry.releasedAt = now;
    this.counters.releases += 1;
    sendJson(res, 200, crmOk({}));
  }

  private dataCall(url: URL, text: string, res: ServerResponse): void {
    this.counters.dataCalls += 1;
    const fromBody = parseObject(text)?.token;
    const token = url.searchParams.get('token') ?? (typeof fromBody === 'string' ? fromBody : '');
    const entry = this.tokens.get(token);
    if (!entry || !isLive(entry, this.now())) {
      sendJson(res, 200, invalidToken());
      return;
    }
    sendJson(res, 200, crmOk([]));
  }

  /**
   * Applies the current fault and delay of `call`; true when the fault answered (or will never
   * answer). `invalid-token` is left to the release handler.
   */
  private async faulted(call: 'login' | 'release', res: ServerResponse): Promise<boolean> {
    const faults = this.currentFaults;
    let fault = call === 'login' ? faults.login : faults.release;
    if (call === 'login' && fault === 'invalid-token') fault = 'none';
    const delayMs = call === 'login' ? faults.loginDelayMs : faults.releaseDelayMs;
    if ((fault !== 'none' || delayMs > 0) && faults.count !== undefined) {
      this.currentFaults = faults.count <= 1 ? NO_FAULTS : { ...faults, count: faults.count - 1 };
    }
    if (delayMs > 0) {
      await this.wait(delayMs);
      if (this.closing || res.destroyed) return true;
    }
    switch (fault) {
      case 'none':
      case 'invalid-token':
        return false;
      case 'reject':
        if (call === 'login') this.rejectLogin(res);
        else sendJson(res, 200, crmError('PERMISSION_DENIED', 'Not allowed'));
        return true;
      case 'unavailable':
        res.setHeader('Retry-After', '1');
        sendJson(res, 503, crmError('SERVICE_UNAVAILABLE', 'Service temporarily unavailable'));
        return true;
      case 'throttle':
        res.setHeader('Retry-After', '1');
        sendJson(res, 429, crmError('TOO_MANY_REQUESTS', 'Too many requests'));
        return true;
      case 'server-error':
        sendHtml(res, 500, 'Internal Server Error');
        return true;
      case 'hang':
        return true;
      case 'reset': {
        const socket = res.socket;
        if (socket && typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
        else socket?.destroy();
        return true;
      }
      case 'non-json':
        sendHtml(res, 200, 'Service Maintenance');
        return true;
      case 'not-found':
        sendHtml(res, 404, 'Not Found');
        return true;
      case 'method-not-allowed':
        res.setHeader('Allow', 'GET');
        sendHtml(res, 405, 'Method Not Allowed');
        return true;
    }
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wait = {
        timer: setTimeout(() => {
          this.waits.delete(wait);
          resolve();
        }, ms),
        done: resolve,
      };
      this.waits.add(wait);
    });
  }

  private handleAdmin(route: string, method: string, text: string, res: ServerResponse): void {
    const routes: Record<string, string> = {
      '/faults': 'POST',
      '/stats': 'GET',
      '/reset': 'POST',
      '/users': 'POST',
      '/clock': 'POST',
    };
    const expected = routes[route];
    if (expected === undefined) {
      sendJson(res, 404, { error: 'unknown simulator route' });
      return;
    }
    if (method !== expected) {
      res.setHeader('Allow', expected);
      sendJson(res, 405, { error: 'method not allowed' });
      return;
    }
    if (route === '/stats') {
      sendJson(res, 200, this.stats());
      return;
    }
    if (route === '/reset') {
      this.reset();
      sendJson(res, 200, { ok: true });
      return;
    }
    const body = parseObject(text);
    if (body === undefined) {
      sendJson(res, 400, { error: 'the body must be a JSON object' });
      return;
    }
    const problem =
      route === '/faults'
        ? this.adminFaults(body)
        : route === '/users'
          ? this.adminUsers(body)
          : this.adminClock(body);
    if (problem) sendJson(res, 400, { error: problem });
    else sendJson(res, 200, route === '/faults' ? this.faults() : { ok: true });
  }

  private adminFaults(body: Record<string, unknown>): string | undefined {
    const partial: { -readonly [K in keyof SimulatorFaults]?: SimulatorFaults[K] } = {};
    for (const [key, value] of Object.entries(body)) {
      if (key === 'login' || key === 'release') {
        if (!SIMULATOR_FAULTS.includes(value as SimulatorFault)) return `bad ${key} fault`;
        partial[key] = value as SimulatorFault;
      } else if (key === 'loginDelayMs' || key === 'releaseDelayMs') {
        if (!isNonNegativeInteger(value)) return `bad ${key}`;
        partial[key] = value;
      } else if (key === 'count') {
        if (value === null) continue;
        if (!isNonNegativeInteger(value) || value === 0) return 'bad count';
        partial.count = value;
      } else {
        return `unknown field ${key}`;
      }
    }
    this.setFaults(partial);
    return undefined;
  }

  private adminUsers(body: Record<string, unknown>): string | undefined {
    const { username, password, organisation, unit, webApiKeys } = body;
    if (webApiKeys !== undefined) {
      if (!Array.isArray(webApiKeys) || !webApiKeys.every((k) => typeof k === 'string')) {
        return 'webApiKeys must be an array of strings';
      }
      this.setWebApiKeys(webApiKeys);
    }
    if (username === undefined && webApiKeys !== undefined) return undefined;
    if (typeof username !== 'string' || typeof password !== 'string') {
      return 'username and password are mandatory';
    }
    if (organisation !== undefined && typeof organisation !== 'string') return 'bad organisation';
    if (unit !== undefined && typeof unit !== 'string') return 'bad unit';
    const org = typeof organisation === 'string' ? organisation : undefined;
    this.setUser({
      username,
      password,
      organisation: org ?? this.users.get(username)?.organisation ?? 'DEMO',
      ...(typeof unit === 'string' ? { unit } : {}),
    });
    return undefined;
  }

  private adminClock(body: Record<string, unknown>): string | undefined {
    const { advanceMs } = body;
    if (typeof advanceMs !== 'number' || !Number.isFinite(advanceMs))
      return 'advanceMs must be a number';
    this.advanceClock(advanceMs);
    return undefined;
  }

  private record(req: IncomingMessage, url: URL, body: string): void {
    this.recorded.push({
      method: req.method ?? 'GET',
      path: `${url.pathname}${url.search}`,
      headers: {
        authorization: req.headers.authorization,
        'content-type': req.headers['content-type'],
        accept: req.headers.accept,
      },
      body,
    });
    if (this.recorded.length > MAX_RECORDED_REQUESTS) this.recorded.shift();
  }
}

function zeroCounters(): Counters {
  return {
    loginAttempts: 0,
    logins: 0,
    loginRejections: 0,
    releaseAttempts: 0,
    releases: 0,
    dataCalls: 0,
    connections: 0,
  };
}

function isLive(entry: TokenEntry, now: number): boolean {
  return (
    entry.releasedAt === undefined && entry.invalidatedAt === undefined && now < entry.expiresAt
  );
}

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

function opaqueToken(): string {
  return randomBytes(16).toString('hex').toUpperCase();
}

function base64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

/** The user name of an HTTP Basic header with an empty password, as CRM.COM expects a key. */
function basicUser(header: string | undefined): string | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0 || colon !== decoded.length - 1) return undefined;
  return decoded.slice(0, colon);
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function crmOk(data: unknown): unknown {
  return { status: { code: 'OK', message: null, description: null }, data };
}

function crmError(code: string, message: string): unknown {
  return { status: { code, message, description: null }, data: null };
}

function invalidToken(): unknown {
  return crmError('INVALID_TOKEN', 'The token is invalid or has expired');
}

function allow(method: string, methods: readonly string[], res: ServerResponse): boolean {
  if (methods.includes(method)) return true;
  res.setHeader('Allow', methods.join(', '));
  sendHtml(res, 405, 'Method Not Allowed');
  return false;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.destroyed || res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': JSON_TYPE, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function sendHtml(res: ServerResponse, status: number, title: string): void {
  if (res.destroyed || res.headersSent) return;
  const text = `<!doctype html><html><head><title>${title}</title></head><body><h1>HTTP Status ${status} – ${title}</h1></body></html>`;
  res.writeHead(status, { 'Content-Type': HTML_TYPE, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: IncomingMessage, maxBytes: number): Promise<Body> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (body: Body): void => {
      if (settled) return;
      settled = true;
      resolve(body);
    };
    req.on('data', (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size > maxBytes) {
        chunks.length = 0;
        settle({ kind: 'too-large' });
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => settle({ kind: 'ok', text: Buffer.concat(chunks).toString('utf8') }));
    req.on('error', () => settle({ kind: 'aborted' }));
    req.on('close', () => settle({ kind: 'aborted' }));
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: process.env.CRM_SIMULATOR_PORT ?? '0' },
      'token-mode': { type: 'string', default: 'opaque' },
      'lifetime-seconds': { type: 'string' },
      'no-release': { type: 'boolean', default: false },
    },
  });
  const tokenMode = values['token-mode'] === 'jwt' ? 'jwt' : 'opaque';
  const lifetime = values['lifetime-seconds'];
  const simulator = await startCrmSimulator({
    port: Number(values.port),
    tokenMode,
    releaseSupported: !values['no-release'],
    ...(lifetime === undefined ? {} : { tokenLifetimeSeconds: Number(lifetime) }),
  });
  process.stdout.write(`simulator on ${simulator.url}\n`);
  const stop = (): void => {
    simulator.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

function runDirectly(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(resolvePath(script))).href;
  } catch {
    return false;
  }
}

if (runDirectly()) {
  main().catch((error: unknown) => {
    process.stderr.write(`simulator failed to start: ${String(error)}\n`);
    process.exit(1);
  });
}
