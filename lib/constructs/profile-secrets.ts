import { Token } from 'aws-cdk-lib';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';

/** Profile names of CONTRACT §2. */
export const PROFILE_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** Lambda's limit on the total size of a function's environment variables. */
export const LAMBDA_ENVIRONMENT_LIMIT_BYTES = 4096;

/**
 * How many characters an unresolved token (a `Ref` or `Fn::GetAtt`) is assumed to take once
 * CloudFormation resolves it: a Secrets Manager ARN with a long name, or a generated table name.
 */
export const TOKEN_SIZE_ESTIMATE = 100;

/** Throws unless `name` is a valid profile name. */
export function validateProfileName(name: string): void {
  if (!PROFILE_NAME_PATTERN.test(name)) {
    throw new Error(
      `TokenVendor: profile name ${JSON.stringify(name)} is invalid: use 1-64 characters of [A-Za-z0-9_-]`,
    );
  }
}

/** The profile → secret ARN maps, split by where the vend function finds them. */
export interface ProfileSecretMaps {
  /** ARNs known as plain strings at synth: bundled into the vend code (`__PROFILE_SECRETS__`). */
  readonly bundled: Readonly<Record<string, string>>;
  /** ARNs that only resolve at deploy time (CDK tokens): passed in the `PROFILE_SECRETS` env var. */
  readonly deployTime: Readonly<Record<string, string>>;
}

/** Splits the profiles by whether their secret ARN is a literal or a deploy-time token. */
export function splitProfileSecrets(
  profiles: Readonly<Record<string, ISecret>>,
): ProfileSecretMaps {
  const bundled: Record<string, string> = {};
  const deployTime: Record<string, string> = {};
  for (const [name, secret] of Object.entries(profiles)) {
    validateProfileName(name);
    const arn = secret.secretFullArn ?? secret.secretArn;
    if (Token.isUnresolved(arn)) deployTime[name] = arn;
    else bundled[name] = arn;
  }
  return { bundled, deployTime };
}

/**
 * Estimated size of an environment once deployed, counted as its JSON (a little more than Lambda
 * counts). `estimates` gives the size of values that are tokens; any other token counts
 * {@link TOKEN_SIZE_ESTIMATE} characters.
 */
export function estimateEnvironmentSize(
  environment: Readonly<Record<string, string>>,
  estimates: Readonly<Record<string, number>> = {},
): number {
  const entries = Object.entries(environment);
  // Braces, and a colon per entry plus a comma between entries.
  let size = 2 + Math.max(0, 2 * entries.length - 1);
  for (const [key, value] of entries) {
    const valueSize =
      estimates[key] ??
      (Token.isUnresolved(value)
        ? JSON.stringify(value.replace(/\$\{Token\[[^\]]*\]\}/g, 'x'.repeat(TOKEN_SIZE_ESTIMATE)))
            .length
        : JSON.stringify(value).length);
    size += JSON.stringify(key).length + valueSize;
  }
  return size;
}

/** Estimated size of the `PROFILE_SECRETS` JSON once its token ARNs resolve. */
export function estimateProfileMapSize(map: Readonly<Record<string, string>>): number {
  const placeholder = 'x'.repeat(TOKEN_SIZE_ESTIMATE);
  const resolved = Object.fromEntries(Object.keys(map).map((name) => [name, placeholder]));
  // The value is itself a JSON string inside the environment's JSON: count its escaping too.
  return JSON.stringify(JSON.stringify(resolved)).length;
}

/** Throws when a function's environment would exceed Lambda's 4 KB limit. */
export function checkEnvironmentSize(functionName: string, size: number): void {
  if (size >= LAMBDA_ENVIRONMENT_LIMIT_BYTES) {
    throw new Error(
      `TokenVendor: the ${functionName} function's environment would take about ${size} bytes, ` +
        `over Lambda's ${LAMBDA_ENVIRONMENT_LIMIT_BYTES}-byte limit. Profiles whose secret ARN is a ` +
        'deploy-time token (a secret created in the same app) go into the environment; import such ' +
        'secrets by their complete ARN (TokenVendor.secretFromArn) so they are bundled into the code.',
    );
  }
}
