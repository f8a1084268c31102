// The baseline of the bundle benchmark: a handler that imports only the SDK clients (and the
// commands) the vend function uses, creates the clients at init as the vend function does, and
// returns a constant.
import {
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
} from '@aws-sdk/client-dynamodb';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

const dynamo = new DynamoDBClient({ maxAttempts: 3 });
const secrets = new SecretsManagerClient({ maxAttempts: 2 });
const commands = [GetItemCommand, PutItemCommand, QueryCommand, GetSecretValueCommand];

export const handler = async (): Promise<unknown> => ({
  status: 'ok',
  clients: [dynamo, secrets].length + commands.length,
});
