import { TokenVendorError } from './errors.js';

/** CONTRACT §2: 1–64 characters of `[A-Za-z0-9_-]`. */
export const PROFILE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Returns `profile` when it is a valid profile name; throws INVALID_REQUEST otherwise. */
export function checkProfileName(profile: unknown): string {
  if (typeof profile !== 'string' || !PROFILE_NAME.test(profile)) {
    throw new TokenVendorError('INVALID_REQUEST', 'profile must be 1–64 characters of A-Za-z0-9_-');
  }
  return profile;
}
