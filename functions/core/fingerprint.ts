import { createHash, randomUUID } from 'node:crypto';

/** SHA-256 of a token, hex: what records keep once the token itself is gone. */
export function fingerprint(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** The short form that logs show instead of a token. */
export function shortFingerprint(tokenOrFingerprint: string, isFingerprint = false): string {
  return (isFingerprint ? tokenOrFingerprint : fingerprint(tokenOrFingerprint)).slice(0, 8);
}

export function newId(): string {
  return randomUUID();
}
