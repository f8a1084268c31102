import { CrmAnswerError, createTokenClient, crmStatusCode } from '../client/index.js';

/**
 * Example consumer: lists CRM.COM contacts with a vended token. Environment (read once, at cold
 * start): VENDOR_FUNCTION_NAME (the vend function's name or ARN), VENDOR_PROFILE (the profile it
 * was granted, invoked through its `profile-<name>` alias), CRM_BASE_URL (the CRM.COM REST root,
 * e.g. https://tenant.crm.com/crmapi/rest/v2).
 *
 * Against `npm start`, no code change is needed: the AWS SDK reads `AWS_ENDPOINT_URL_LAMBDA`
 * (e.g. http://127.0.0.1:3000) for the LambdaClient's endpoint, plus the usual AWS_REGION and
 * credential variables (any static keys work locally).
 */
const config = readConfig(process.env);
const vendor = createTokenClient({
  functionName: config.functionName,
  profile: config.profile,
});

export interface ContactsSummary {
  readonly profile: string;
  /** CRM.COM's `status.code`. */
  readonly crmStatus: string;
  /** Contacts on the first page, when CRM.COM answered OK. */
  readonly contacts: number | undefined;
}

export const handler = async (): Promise<ContactsSummary> => {
  // withToken invalidates a token CRM.COM rejects and runs the call once more with a new one.
  const answer = await vendor.withToken((token) => listContacts(config.crmBaseUrl, token));
  const data: unknown = Reflect.get(answer, 'data');
  return {
    profile: config.profile,
    crmStatus: crmStatusCode(answer) ?? 'UNKNOWN',
    contacts: Array.isArray(data) ? data.length : undefined,
  };
};

async function listContacts(crmBaseUrl: string, token: string): Promise<object> {
  const url = new URL(`${crmBaseUrl.replace(/\/+$/, '')}/contacts/list`);
  url.searchParams.set('token', token);
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const body: unknown = await response.json().catch(() => undefined);
  if (typeof body !== 'object' || body === null) {
    // Not CRM.COM's JSON: report the status only, never the URL (it holds the token).
    throw new Error(`CRM.COM answered HTTP ${response.status} without a JSON body`);
  }
  // withToken recognises a rejected token both in a returned answer and in a CrmAnswerError.
  if (!response.ok) throw new CrmAnswerError(body, response.status);
  return body;
}

function readConfig(env: NodeJS.ProcessEnv): {
  functionName: string;
  profile: string;
  crmBaseUrl: string;
} {
  const required = (name: string): string => {
    const value = env[name];
    if (!value) throw new Error(`${name} must be set`);
    return value;
  };
  return {
    functionName: required('VENDOR_FUNCTION_NAME'),
    profile: required('VENDOR_PROFILE'),
    crmBaseUrl: required('CRM_BASE_URL'),
  };
}
