import { DynamoDBClient } from '@aws-sdk/client-dynamodb';

/**
 * A DynamoDB client with bounded calls: a store call must finish well inside the login lease
 * (CRM_TIMEOUT_MS + 3 s), so each attempt times out after 1 s and the SDK retries twice.
 */
export function createDynamoDbClient(
  options: { endpoint?: string | undefined } = {},
): DynamoDBClient {
  return new DynamoDBClient({
    maxAttempts: 3,
    requestHandler: { connectionTimeout: 1000, requestTimeout: 1000 },
    ...(options.endpoint
      ? {
          endpoint: options.endpoint,
          region: process.env.AWS_REGION ?? 'us-east-1',
          credentials: {
            accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'local',
            secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'local',
          },
        }
      : {}),
  });
}
