import { ConfigError } from '../core/errors.js';
import { startLocalService } from './local-service.js';

/** How long shutdown may take before the process exits regardless (CONTRACT §6: within 10 s). */
const SHUTDOWN_LIMIT_MS = 9500;

async function main(): Promise<void> {
  let service: Awaited<ReturnType<typeof startLocalService>>;
  try {
    service = await startLocalService(process.env);
  } catch (error) {
    const message =
      error instanceof ConfigError
        ? `configuration error: ${error.message}`
        : `could not start: ${error instanceof Error ? error.message : 'unknown error'}`;
    process.stderr.write(`${message}\n`);
    process.exit(1);
  }
  process.stdout.write(`listening on ${service.url}\n`);

  const shutdown = (signal: string) => {
    process.stderr.write(`${signal}: shutting down\n`);
    const hard = setTimeout(() => {
      process.stderr.write('shutdown took too long; exiting\n');
      process.exit(1);
    }, SHUTDOWN_LIMIT_MS);
    hard.unref();
    service.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
}

void main();
