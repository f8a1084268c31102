/** Consumer client of the CRM.COM token vendor: one import for a consumer Lambda. */
export { createCachedTokenClient, DEFAULT_REFRESH_AHEAD_SECONDS } from './cache.js';
export { CrmAnswerError, crmStatusCode, isTokenRejected } from './crm-answers.js';
export {
  isTokenVendorError,
  TokenVendorError,
  type TokenVendorErrorCode,
  VENDOR_ERROR_STATUS,
} from './errors.js';
export {
  createHttpTokenClient,
  createHttpTransport,
  type HttpTokenClientOptions,
  type SigningCredentials,
} from './http-token-client.js';
export {
  type VendorTokenContext,
  type VendorTokenMiddlewareOptions,
  type VendorTokenOptions,
  vendorToken,
  type WithVendorTokenOptions,
  withVendorToken,
} from './middleware.js';
export { PROFILE_NAME } from './profile-name.js';
export {
  createLambdaTransport,
  createTokenClient,
  type LambdaTokenClientOptions,
} from './token-client.js';
export type {
  GetTokenOptions,
  MonotonicClock,
  TokenClient,
  TokenClientOptions,
  TokenTransport,
  VendedToken,
} from './types.js';
