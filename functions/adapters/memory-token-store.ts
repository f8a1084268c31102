import { StoreError } from '../core/errors.js';
import {
  type DuePage,
  isPastTtl,
  type PendingQuery,
  type ProfileState,
  type TokenRecord,
  type TokenStore,
} from '../core/types.js';

/**
 * The token store in process memory: the same contract as the DynamoDB store, used by unit
 * tests and property tests. Values are deep-copied in and out, as a real store would.
 */
export class MemoryTokenStore implements TokenStore {
  private readonly states = new Map<string, ProfileState>();
  private readonly tokens = new Map<string, TokenRecord>();
  /** Items handed out by reads, for cost assertions. */
  itemsRead = 0;

  async getState(profile: string): Promise<ProfileState | undefined> {
    const state = this.states.get(profile);
    if (state) this.itemsRead += 1;
    return state ? structuredClone(state) : undefined;
  }

  async putState(state: ProfileState, expectedGen: number): Promise<boolean> {
    const stored = this.states.get(state.profile);
    if ((stored?.gen ?? 0) !== expectedGen) return false;
    this.states.set(state.profile, structuredClone(state));
    return true;
  }

  async getToken(tokenId: string, now: number): Promise<TokenRecord | undefined> {
    const record = this.tokens.get(tokenId);
    if (!record || isPastTtl(record, now)) return undefined;
    this.itemsRead += 1;
    return structuredClone(record);
  }

  async putToken(record: TokenRecord, expectedRev: number): Promise<boolean> {
    const stored = this.tokens.get(record.tokenId);
    if ((stored?.rev ?? 0) !== expectedRev) return false;
    this.tokens.set(record.tokenId, structuredClone(record));
    return true;
  }

  async queryPending(options: PendingQuery): Promise<DuePage> {
    const { now, dueBy, profile, limit = 100 } = options;
    // Resume after the last key read (as DynamoDB's ExclusiveStartKey does), not at an offset:
    // records released between pages leave the index and must not shift the next page.
    const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
    const pending = [...this.tokens.values()]
      .filter((r) => r.dueAt !== undefined && (dueBy === undefined || r.dueAt <= dueBy))
      .sort(byIndexKey)
      .filter((r) => after === undefined || byIndexKey(r, after) > 0);
    const page = pending.slice(0, limit);
    this.itemsRead += page.length;
    const records = page
      .filter((r) => !isPastTtl(r, now) && (profile === undefined || r.profile === profile))
      .map((r) => structuredClone(r));
    const last = page[page.length - 1];
    return last && pending.length > limit
      ? { records, itemsRead: page.length, cursor: encodeCursor(last) }
      : { records, itemsRead: page.length };
  }

  /** Every record, for assertions in tests. */
  allTokens(): TokenRecord[] {
    return [...this.tokens.values()].map((r) => structuredClone(r));
  }
}

type IndexKey = Pick<TokenRecord, 'dueAt' | 'tokenId'>;

function byIndexKey(a: IndexKey, b: IndexKey): number {
  return (a.dueAt ?? 0) - (b.dueAt ?? 0) || a.tokenId.localeCompare(b.tokenId);
}

function encodeCursor(record: TokenRecord): string {
  return Buffer.from(JSON.stringify([record.dueAt, record.tokenId])).toString('base64url');
}

function decodeCursor(cursor: string): IndexKey {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(parsed) &&
      parsed.length === 2 &&
      typeof parsed[0] === 'number' &&
      typeof parsed[1] === 'string'
    ) {
      return { dueAt: parsed[0], tokenId: parsed[1] };
    }
  } catch {
    // reported below
  }
  throw new StoreError('Malformed queryPending cursor');
}
