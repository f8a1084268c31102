/** CRM.COM `status.code` values that mean the token itself was refused (invalid, expired…). */
const TOKEN_REJECTION = /TOKEN|SESSION|EXPIRED|AUTHENTICAT|UNAUTHORI/i;
const MAX_DEPTH = 3;

/**
 * Whether `answer` is CRM.COM refusing the session token: a non-OK answer whose `status.code`
 * names the token, the session, an expiry or authentication (`INVALID_TOKEN`, `EXPIRED_TOKEN`,
 * `TOKEN_EXPIRED`, `INVALID_SESSION`, `UNAUTHORIZED`…).
 *
 * Accepts a parsed body (`{"status":{"code":...}}`), its JSON text, or an object carrying one
 * in `crmAnswer` or `body` (a thrown error, an API Gateway-style `{statusCode, body}` result),
 * nested at most three deep. Anything else, a fetch `Response` included (its body is a stream:
 * parse it first), is not a rejection. Never throws.
 */
export function isTokenRejected(answer: unknown): boolean {
  try {
    return rejected(answer, 0);
  } catch {
    return false;
  }
}

function rejected(answer: unknown, depth: number): boolean {
  if (depth > MAX_DEPTH) return false;
  if (typeof answer === 'string') return rejected(parseJson(answer), depth + 1);
  if (typeof answer !== 'object' || answer === null) return false;
  const value = answer as Record<string, unknown>;
  const status = value.status;
  if (typeof status === 'object' && status !== null) {
    const code = (status as Record<string, unknown>).code;
    if (typeof code === 'string') {
      return code.trim().toUpperCase() !== 'OK' && TOKEN_REJECTION.test(code);
    }
  }
  if ('crmAnswer' in value && rejected(value.crmAnswer, depth + 1)) return true;
  return 'body' in value && rejected(value.body, depth + 1);
}

function parseJson(text: string): unknown {
  const trimmed = text.trimStart();
  if (!trimmed.startsWith('{')) return undefined;
  try {
    return JSON.parse(trimmed);
  } catch {
    return undefined;
  }
}

/**
 * An error carrying CRM.COM's answer, for code that prefers throwing over returning a non-OK
 * answer: `withToken` recognises it through `crmAnswer`. The message holds the status code only.
 */
export class CrmAnswerError extends Error {
  readonly crmAnswer: unknown;
  readonly httpStatus: number | undefined;

  constructor(crmAnswer: unknown, httpStatus?: number) {
    super(`CRM.COM answered ${crmStatusCode(crmAnswer) ?? 'without a status code'}`);
    this.name = 'CrmAnswerError';
    this.crmAnswer = crmAnswer;
    this.httpStatus = httpStatus;
  }
}

/** CRM.COM's `status.code` of a parsed answer, if it has one. */
export function crmStatusCode(answer: unknown): string | undefined {
  if (typeof answer !== 'object' || answer === null) return undefined;
  const status = (answer as Record<string, unknown>).status;
  if (typeof status !== 'object' || status === null) return undefined;
  const code = (status as Record<string, unknown>).code;
  return typeof code === 'string' ? code : undefined;
}
