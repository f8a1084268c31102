import type { InvokeCommandOutput } from '@aws-sdk/client-lambda';

/** The vendor's success body for `token`, valid `expiresInSeconds` more seconds. */
export function vended(token: string, expiresInSeconds = 3000, profile = 'default') {
  return {
    token,
    profile,
    issuedAt: '2026-01-01T00:00:00.000Z',
    expiresAt: '2026-01-01T00:50:00.000Z',
    expiresInSeconds,
  };
}

/** The vendor's error body. */
export function vendorError(
  code: string,
  options: { retryable?: boolean; retryAfterSeconds?: number; message?: string } = {},
) {
  return {
    error: {
      code,
      message: options.message ?? `${code} happened`,
      retryable: options.retryable ?? false,
      ...(options.retryAfterSeconds === undefined
        ? {}
        : { retryAfterSeconds: options.retryAfterSeconds }),
    },
  };
}

/** An Invoke result carrying `body` as JSON (or raw text), as the SDK hands it back. */
export function invokeResult(body: unknown, extra: Partial<InvokeCommandOutput> = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const bytes = new TextEncoder().encode(text);
  const payload = Object.assign(bytes, {
    transformToString: () => text,
  }) as unknown as NonNullable<InvokeCommandOutput['Payload']>;
  return { StatusCode: 200, Payload: payload, $metadata: {}, ...extra } as InvokeCommandOutput;
}

/** The JSON payload an Invoke call was sent with. */
export function sentPayload(payload: unknown): unknown {
  if (!(payload instanceof Uint8Array)) throw new Error('payload is not bytes');
  return JSON.parse(new TextDecoder().decode(payload));
}

/** A monotonic clock that only moves when told (milliseconds). */
export class ManualClock {
  private current = 1_000_000;
  now(): number {
    return this.current;
  }
  advanceSeconds(seconds: number): void {
    this.current += seconds * 1000;
  }
}

/** A promise with its resolve exposed, to hold a fake call open. */
export function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** A CRM.COM answer refusing the token. */
export const rejectedAnswer = {
  status: { code: 'INVALID_TOKEN', message: 'The token is invalid' },
};
/** A CRM.COM OK answer. */
export const okAnswer = { status: { code: 'OK', message: '' }, data: [{ id: 1 }] };
