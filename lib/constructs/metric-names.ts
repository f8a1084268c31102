export { METRIC, METRICS_NAMESPACE, SERVICE_NAME } from '../../functions/core/metric-names.js';
