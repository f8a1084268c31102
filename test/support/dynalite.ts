import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ensureTable } from '../../functions/adapters/table-schema.js';

/** The part of dynalite's (untyped, CommonJS) API used here. */
type DynaliteFactory = (options: {
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
}) => Server;

const require = createRequire(import.meta.url);

export interface LocalDynamo {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  readonly client: DynamoDBClient;
  /** The token table, ACTIVE and empty (its name is unique per call unless one was given). */
  readonly tableName: string;
  /** Destroys the client and stops the server; the data is gone. */
  close(): Promise<void>;
}

export interface StartDynaliteOptions {
  /** @default a unique name per call (see uniqueTableName) */
  readonly tableName?: string;
  /** @default 0, a free port */
  readonly port?: number;
}

/**
 * Starts an in-memory dynalite on 127.0.0.1 and creates the token table in it. No test framework
 * involved, so the local server can use it for its embedded mode.
 */
export async function startDynalite(options: StartDynaliteOptions = {}): Promise<LocalDynamo> {
  const dynalite = require('dynalite') as DynaliteFactory;
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  const client = localDynamoClient(endpoint);
  const tableName = options.tableName ?? uniqueTableName();
  const close = async (): Promise<void> => {
    client.destroy();
    // Idle keep-alive sockets would otherwise hold close() open.
    server.closeAllConnections();
    await new Promise<void>((resolve, reject) =>
      server.close((error) => (error ? reject(error) : resolve())),
    );
  };
  try {
    await ensureTable(client, tableName);
  } catch (error) {
    await close();
    throw error;
  }
  return { endpoint, client, tableName, close };
}

/** A client for a local endpoint: dummy static credentials, us-east-1, few quick retries. */
export function localDynamoClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 3,
  });
}

/** A table name no other call (or process) uses: `token-vendor-<pid>-<random>`. */
export function uniqueTableName(prefix = 'token-vendor'): string {
  return `${prefix}-${process.pid}-${randomBytes(6).toString('hex')}`;
}
