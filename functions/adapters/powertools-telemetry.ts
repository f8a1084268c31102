import { AsyncLocalStorage } from 'node:async_hooks';
import { Logger, LogLevelThreshold } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { METRICS_NAMESPACE, SERVICE_NAME } from '../core/metric-names.js';
import type { Telemetry } from '../core/types.js';

/** Request-scoped log fields; kept per async context so concurrent local requests don't mix. */
export const requestScope = new AsyncLocalStorage<Record<string, string>>();

export interface Observability {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly telemetry: Telemetry;
}

/** Structured JSON logs and EMF metrics through Powertools for AWS Lambda. */
export function createObservability(
  options: { logLevel?: string; functionName?: string } = {},
): Observability {
  const logger = new Logger({
    serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? SERVICE_NAME,
    ...(options.logLevel ? { logLevel: normaliseLevel(options.logLevel) } : {}),
  });
  const metrics = new Metrics({
    namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? METRICS_NAMESPACE,
    serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? SERVICE_NAME,
  });
  const scoped = (fields?: Record<string, unknown>) => {
    const scope = requestScope.getStore();
    return scope ? { ...scope, ...fields } : (fields ?? {});
  };
  const telemetry: Telemetry = {
    count(name, value = 1) {
      metrics.addMetric(name, MetricUnit.Count, value);
    },
    timing(name, ms) {
      metrics.addMetric(name, MetricUnit.Milliseconds, ms);
    },
    log(level, message, fields) {
      // A line the current level drops (the debug line of every vend, at INFO) costs neither the
      // scope merge nor Powertools' formatting. `logger.level` follows runtime level changes
      // and debug sampling; no log buffer is configured, so nothing below the level is kept.
      if (THRESHOLDS[level] < logger.level) return;
      logger[level](message, scoped(fields));
    },
  };
  return { logger, metrics, telemetry };
}

const THRESHOLDS = {
  debug: LogLevelThreshold.DEBUG,
  info: LogLevelThreshold.INFO,
  warn: LogLevelThreshold.WARN,
  error: LogLevelThreshold.ERROR,
} as const;

const LEVELS = new Set(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'SILENT', 'CRITICAL']);

function normaliseLevel(level: string): 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'SILENT' {
  const upper = level.toUpperCase();
  return (LEVELS.has(upper) ? upper : 'INFO') as 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'SILENT';
}
