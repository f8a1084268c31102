/** CloudWatch namespace of the functions' EMF metrics (`POWERTOOLS_METRICS_NAMESPACE`). */
export const METRICS_NAMESPACE = 'CrmTokenVendor';

/** `POWERTOOLS_SERVICE_NAME`, also the metrics' only dimension, `service`. */
export const SERVICE_NAME = 'crm-token-vendor';

/**
 * Every metric the functions emit (all Count, except `LoginLatency` in Milliseconds). The one
 * list that the code, the alarms and the dashboard share, so a renamed metric cannot leave an
 * alarm watching nothing.
 */
export const METRIC = {
  vendMemoryHit: 'VendMemoryHit',
  vendTableHit: 'VendTableHit',
  vendLogin: 'VendLogin',
  vendErrors: 'VendErrors',
  logins: 'Logins',
  loginFailuresRejected: 'LoginFailuresRejected',
  loginFailuresUnavailable: 'LoginFailuresUnavailable',
  loginLatency: 'LoginLatency',
  leaseWaits: 'LeaseWaits',
  leaseTakeovers: 'LeaseTakeovers',
  leakedTokenReleases: 'LeakedTokenReleases',
  releasesReleased: 'ReleasesReleased',
  releasesAlreadyInvalid: 'ReleasesAlreadyInvalid',
  releasesUnsupported: 'ReleasesUnsupported',
  releasesRetry: 'ReleasesRetry',
  releasesAbandoned: 'ReleasesAbandoned',
  releasesSkippedDisabled: 'ReleasesSkippedDisabled',
  releaseFailures: 'ReleaseFailures',
  releaseRecordFailures: 'ReleaseRecordFailures',
  releaseRunErrors: 'ReleaseRunErrors',
  releaseRunItemsRead: 'ReleaseRunItemsRead',
  dueTokens: 'DueTokens',
} as const;

export type MetricName = (typeof METRIC)[keyof typeof METRIC];
