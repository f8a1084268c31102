import { InvokeCommand, type InvokeCommandOutput, LambdaClient } from '@aws-sdk/client-lambda';
import { createCachedTokenClient } from './cache.js';
import { isRecord, TokenVendorError } from './errors.js';
import { checkProfileName } from './profile-name.js';
import type { TokenClient, TokenClientOptions, TokenTransport, VendedToken } from './types.js';
import { readVendorAnswer } from './vendor-answer.js';

export interface LambdaTokenClientOptions extends TokenClientOptions {
  /** The vend function's name or ARN (`vend` in local mode). */
  readonly functionName: string;
  /** The CRM.COM profile to get tokens of. */
  readonly profile: string;
  /** @default new LambdaClient({}) */
  readonly lambdaClient?: LambdaClient;
  /**
   * Alias or version to invoke. `false` invokes the unqualified function (a consumer granted
   * every profile). Ignored when `functionName` already carries a qualifier.
   * @default `profile-${profile}`, the alias a consumer granted only that profile may invoke
   */
  readonly qualifier?: string | false;
}

/** A token client that invokes the vend function directly (CONTRACT §5). */
export function createTokenClient(options: LambdaTokenClientOptions): TokenClient {
  return createCachedTokenClient(options.profile, createLambdaTransport(options), options);
}

/** The direct-invoke transport alone, for callers that bring their own caching. */
export function createLambdaTransport(options: LambdaTokenClientOptions): TokenTransport {
  const profile = checkProfileName(options.profile);
  const functionName = options.functionName;
  if (typeof functionName !== 'string' || functionName === '') {
    throw new TokenVendorError('INVALID_REQUEST', 'functionName is required');
  }
  const lambda = options.lambdaClient ?? new LambdaClient({});
  const qualifier = hasQualifier(functionName)
    ? undefined
    : options.qualifier === false
      ? undefined
      : (options.qualifier ?? `profile-${profile}`);
  const target = qualifier === undefined ? functionName : `${functionName}:${qualifier}`;

  const invoke = async (payload: Record<string, unknown>): Promise<VendedToken> => {
    let output: InvokeCommandOutput;
    try {
      output = await lambda.send(
        new InvokeCommand({
          FunctionName: functionName,
          Qualifier: qualifier,
          InvocationType: 'RequestResponse',
          Payload: new TextEncoder().encode(JSON.stringify(payload)),
        }),
      );
    } catch (error) {
      throw fromInvokeError(error, target);
    }
    if (output.FunctionError) {
      // Unhandled: the function crashed or timed out. Its error payload is not echoed.
      throw new TokenVendorError(
        'INTERNAL',
        `The vendor function failed (${output.FunctionError})`,
        {
          retryable: true,
        },
      );
    }
    return readVendorAnswer(parsePayload(output.Payload));
  };

  return {
    getToken: (minValiditySeconds) =>
      invoke(
        minValiditySeconds === undefined
          ? { action: 'getToken', profile }
          : { action: 'getToken', profile, minValiditySeconds },
      ),
    invalidate: (token) => invoke({ action: 'invalidate', profile, token }),
  };
}

function parsePayload(payload: Uint8Array | undefined): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(payload ?? new Uint8Array()));
  } catch {
    throw new TokenVendorError('INTERNAL', 'The vendor answered with a payload that is not JSON', {
      retryable: true,
    });
  }
}

/** `name:qualifier`, `account:function:name:qualifier` or a full ARN with a qualifier. */
function hasQualifier(functionName: string): boolean {
  const parts = functionName.split(':');
  return parts[0] === 'arn' ? parts.length >= 8 : parts.length === 2 || parts.length === 4;
}

/** Maps an SDK or network failure of the Invoke call itself to a TokenVendorError. */
export function fromInvokeError(error: unknown, target: string): TokenVendorError {
  if (error instanceof TokenVendorError) return error;
  const name = error instanceof Error ? error.name : 'Error';
  const metadata = isRecord(error) && isRecord(error.$metadata) ? error.$metadata : undefined;
  const httpStatus =
    typeof metadata?.httpStatusCode === 'number' ? metadata.httpStatusCode : undefined;
  const options = { cause: error };
  if (name === 'ResourceNotFoundException' || httpStatus === 404) {
    return new TokenVendorError(
      'NOT_FOUND',
      `The vendor function ${target} was not found`,
      options,
    );
  }
  if (name === 'AccessDeniedException' || httpStatus === 403) {
    return new TokenVendorError('FORBIDDEN', `Not allowed to invoke ${target}`, options);
  }
  if (name === 'TooManyRequestsException' || httpStatus === 429) {
    const after = isRecord(error) ? Number(error.retryAfterSeconds) : Number.NaN;
    return new TokenVendorError('THROTTLED', `Invoking ${target} was throttled`, {
      ...options,
      retryable: true,
      retryAfterSeconds: Number.isFinite(after) && after >= 0 ? after : undefined,
    });
  }
  if (name === 'RequestTooLargeException' || httpStatus === 413) {
    return new TokenVendorError(
      'PAYLOAD_TOO_LARGE',
      'The request to the vendor is too large',
      options,
    );
  }
  if (httpStatus !== undefined && httpStatus >= 400 && httpStatus < 500) {
    return new TokenVendorError('INVALID_REQUEST', `Invoking ${target} failed (${name})`, options);
  }
  const reached = httpStatus === undefined ? 'Could not invoke' : 'Invoking failed:';
  return new TokenVendorError('INTERNAL', `${reached} ${target} (${name})`, {
    ...options,
    retryable: true,
  });
}
