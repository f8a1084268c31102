import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SecretError } from '../core/errors.js';
import type { SecretFetcher } from '../core/secret-cache.js';

const PERMANENT = new Set([
  'ResourceNotFoundException',
  'AccessDeniedException',
  'DecryptionFailure',
  'InvalidRequestException',
  'InvalidParameterException',
]);

/** Reads profile secrets from Secrets Manager by ARN (deployed mode). */
export class SecretsManagerFetcher implements SecretFetcher {
  constructor(
    private readonly client: SecretsManagerClient,
    private readonly arns: Readonly<Record<string, string>>,
  ) {}

  has(profile: string): boolean {
    return Object.hasOwn(this.arns, profile);
  }

  async fetch(profile: string): Promise<{ version: string; value: string }> {
    const arn = this.arns[profile];
    if (!arn) throw new SecretError('The profile has no secret');
    let answer: { VersionId?: string; SecretString?: string };
    try {
      answer = await this.client.send(
        new GetSecretValueCommand({ SecretId: arn, VersionStage: 'AWSCURRENT' }),
      );
    } catch (error) {
      const name = error instanceof Error ? error.name : 'Error';
      throw new SecretError(`The secret could not be read (${name})`, {
        retryable: !PERMANENT.has(name),
      });
    }
    if (typeof answer.SecretString !== 'string' || !answer.VersionId) {
      throw new SecretError('The secret has no string value');
    }
    return { version: answer.VersionId, value: answer.SecretString };
  }
}
