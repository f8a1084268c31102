import { describe, expect, it } from 'vitest';
import {
  isTokenVendorError,
  TokenVendorError,
  VENDOR_ERROR_STATUS,
} from '../../../functions/client/index.js';
import { ERROR_STATUS } from '../../../functions/core/errors.js';

describe('TokenVendorError', () => {
  it('maps every code to its §4 status, in step with the service', () => {
    // Prepare
    const contract = {
      NOT_FOUND: 404,
      METHOD_NOT_ALLOWED: 405,
      PAYLOAD_TOO_LARGE: 413,
      INVALID_REQUEST: 400,
      FORBIDDEN_PROFILE: 403,
      UNKNOWN_PROFILE: 404,
      CRM_AUTH_FAILED: 502,
      CRM_UNAVAILABLE: 503,
      MISCONFIGURED: 500,
      INTERNAL: 500,
      FORBIDDEN: 403,
      THROTTLED: 429,
    };

    // Act
    const statuses = Object.fromEntries(
      Object.keys(VENDOR_ERROR_STATUS).map((code) => [
        code,
        new TokenVendorError(code as keyof typeof VENDOR_ERROR_STATUS, 'm').status,
      ]),
    );

    // Assess
    expect(statuses).toStrictEqual(contract);
    expect(VENDOR_ERROR_STATUS).toMatchObject(ERROR_STATUS);
  });

  it('tells its code through is() and isTokenVendorError()', () => {
    // Prepare
    const error = new TokenVendorError('CRM_UNAVAILABLE', 'down', {
      retryable: true,
      retryAfterSeconds: 2,
    });

    // Act & Assess
    expect(error.is('CRM_UNAVAILABLE', 'CRM_AUTH_FAILED')).toBe(true);
    expect(error.is('INTERNAL')).toBe(false);
    expect(isTokenVendorError(error)).toBe(true);
    expect(isTokenVendorError(error, 'INTERNAL')).toBe(false);
    expect(isTokenVendorError(new Error('x'))).toBe(false);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('TokenVendorError');
  });
});
