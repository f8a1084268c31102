import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { MiddlewareObj } from '@middy/core';

/**
 * Flushes the EMF metrics an invocation recorded, once, after it or on error. Unlike
 * Powertools' own logMetrics it stays quiet when an invocation recorded none (health checks).
 */
export function flushMetrics(metrics: Metrics): MiddlewareObj {
  let coldStart = true;
  const flush = () => {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  };
  return {
    before: () => {
      if (coldStart) {
        coldStart = false;
        metrics.captureColdStartMetric();
      }
    },
    after: flush,
    onError: flush,
  };
}
