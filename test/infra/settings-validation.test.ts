import { App, Lazy, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { AttributeType, Table } from 'aws-cdk-lib/aws-dynamodb';
import { describe, expect, it } from 'vitest';
import { parseSettings } from '../../functions/core/settings.js';
import {
  checkEnvironmentSize,
  estimateEnvironmentSize,
  estimateProfileMapSize,
} from '../../lib/constructs/profile-secrets.js';
import { releaseMaxEventAgeSeconds, vendTimeoutSeconds } from '../../lib/constructs/timeouts.js';
import {
  TokenVendor,
  type TokenVendorProps,
  type TokenVendorSettings,
} from '../../lib/constructs/token-vendor.js';
import { ALPHA_ARN } from './build-vendor.js';

// Every case here throws before any function is bundled, so they cost no synthesis.
function construct(props: Partial<TokenVendorProps> = {}): void {
  const stack = new Stack(new App(), 'Test');
  new TokenVendor(stack, 'Vendor', {
    profiles: { alpha: TokenVendor.secretFromArn(stack, 'Alpha', ALPHA_ARN) },
    ...props,
  });
}

describe('TokenVendor settings validation at synth', () => {
  it.each<[string, TokenVendorSettings, RegExp]>([
    [
      'an interval not a multiple of 60',
      { releaseIntervalSeconds: 90 },
      /RELEASE_INTERVAL_SECONDS \(90\) must be a multiple of 60/,
    ],
    [
      'an interval not below the lead',
      { releaseIntervalSeconds: 600 },
      /RELEASE_INTERVAL_SECONDS \(600\) must be less than RELEASE_LEAD_SECONDS/,
    ],
    [
      'a minimum validity above refresh-ahead',
      { minValiditySeconds: 700 },
      /MIN_VALIDITY_SECONDS \(700\) must not exceed REFRESH_AHEAD_SECONDS/,
    ],
    [
      'refresh-ahead beyond the advertised lifetime',
      { tokenLifetimeSeconds: 1200 },
      /REFRESH_AHEAD_SECONDS \(600\) must be less than TOKEN_LIFETIME_SECONDS/,
    ],
    [
      'a CRM.COM timeout out of range',
      { crmTimeoutMs: 50 },
      /CRM_TIMEOUT_MS must be between 100 and 10000/,
    ],
    [
      'a fractional value',
      { memoryCacheSeconds: 1.5 },
      /MEMORY_CACHE_SECONDS must be a whole number/,
    ],
    [
      'a negative value',
      { authFailureBackoffSeconds: -1 },
      /AUTH_FAILURE_BACKOFF_SECONDS must be a whole number/,
    ],
  ])('fails on %s, naming the setting', (_, settings, message) => {
    expect(() => construct({ settings })).toThrow(message);
  });

  it('accepts an interval that is a multiple of 60 when release is disabled', () => {
    expect(() =>
      parseSettings({ RELEASE_INTERVAL_SECONDS: '600', RELEASE_ENABLED: 'false' }, 'deployed'),
    ).not.toThrow();
  });

  it.each([['bad name'], ['a/b'], [''], ['x'.repeat(65)]])(
    'fails on the profile name %j',
    (name) => {
      const stack = new Stack(new App(), 'Test');
      expect(
        () =>
          new TokenVendor(stack, 'Vendor', {
            profiles: { [name]: TokenVendor.secretFromArn(stack, 'S', ALPHA_ARN) },
          }),
      ).toThrow(/profile name .* is invalid/);
    },
  );

  it.each([
    ['a secret name', 'crm-token-vendor/alpha'],
    [
      'a partial ARN',
      'arn:aws:secretsmanager:eu-west-1:111122223333:secret:crm-token-vendor/alpha',
    ],
    ['another service', 'arn:aws:ssm:eu-west-1:111122223333:parameter/alpha-AbCdEf'],
  ])('secretFromArn refuses %s', (_, arn) => {
    const stack = new Stack(new App(), 'Test');
    expect(() => TokenVendor.secretFromArn(stack, 'S', arn)).toThrow(
      /not a complete Secrets Manager/,
    );
  });

  it('fails on a default base URL that is not http(s)', () => {
    expect(() => construct({ defaultBaseUrl: 'ftp://tenant.crm.com' })).toThrow(/defaultBaseUrl/);
    expect(() => construct({ defaultBaseUrl: 'not a url' })).toThrow(/defaultBaseUrl/);
  });

  it('refuses table options together with an existing table', () => {
    const stack = new Stack(new App(), 'Test');
    const table = new Table(stack, 'T', {
      partitionKey: { name: 'pk', type: AttributeType.STRING },
    });
    expect(
      () =>
        new TokenVendor(stack, 'Vendor', {
          profiles: {},
          table,
          removalPolicy: RemovalPolicy.DESTROY,
        }),
    ).toThrow(/apply to a new table only/);
  });
});

describe('vend timeout', () => {
  it('exceeds the lease and stays under API Gateway for every allowed CRM_TIMEOUT_MS', () => {
    for (const crm of [100, 1000, 5000, 8000, 10_000]) {
      const settings = parseSettings({ CRM_TIMEOUT_MS: String(crm) }, 'deployed');
      const timeout = vendTimeoutSeconds(settings);
      expect(timeout * 1000).toBeGreaterThan(crm + 3000);
      expect(timeout).toBeLessThanOrEqual(28);
    }
  });

  it('covers waiting out a lease and logging in (23 s with the defaults)', () => {
    expect(vendTimeoutSeconds(parseSettings({}, 'deployed'))).toBe(23);
  });

  it('keeps the schedule event age below the interval, at least 60 s', () => {
    expect(releaseMaxEventAgeSeconds(parseSettings({}, 'deployed'))).toBe(150);
    expect(
      releaseMaxEventAgeSeconds(
        parseSettings({ RELEASE_INTERVAL_SECONDS: '60', RELEASE_LEAD_SECONDS: '300' }, 'deployed'),
      ),
    ).toBe(60);
  });
});

describe('environment size estimate', () => {
  it('counts keys, values and tokens, and fails at 4 KB', () => {
    expect(estimateEnvironmentSize({ A: 'bc', D: 'e' })).toBe('{"A":"bc","D":"e"}'.length);
    expect(estimateEnvironmentSize({ A: Lazy.string({ produce: () => 'x' }) })).toBe(
      '{"A":""}'.length + 100,
    );
    expect(estimateProfileMapSize({ p: Lazy.string({ produce: () => 'x' }) })).toBeGreaterThan(100);
    expect(() => checkEnvironmentSize('vend', 4095)).not.toThrow();
    expect(() => checkEnvironmentSize('vend', 4096)).toThrow(/4096-byte limit/);
  });
});
