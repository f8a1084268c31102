/** CloudWatch namespace of the functions' EMF metrics (`POWERTOOLS_METRICS_NAMESPACE`). */
export const METRICS_NAMESPACE = 'CrmTokenVendor';

/** `POWERTOOLS_SERVICE_NAME`, also the metrics' only dimension, `service`. */
export const SERVICE_NAME = 'crm-token-vendor';

/** Names of the metrics the functions emit (all Count, except `LoginLatency` in Milliseconds). */
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
  releaseFailures: 'ReleaseFailures',
  dueTokens: 'DueTokens',
} as const;
