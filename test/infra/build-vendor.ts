import { App, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Key } from 'aws-cdk-lib/aws-kms';
import { type ISecret, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { TokenVendor, type TokenVendorProps } from '../../lib/constructs/token-vendor.js';

export const ALPHA_ARN =
  'arn:aws:secretsmanager:eu-west-1:111122223333:secret:crm-token-vendor/alpha-AbCdEf';

/** An ARN of an imported profile secret. */
export function profileArn(name: string): string {
  return `arn:aws:secretsmanager:eu-west-1:111122223333:secret:crm-token-vendor/${name}-Ab12Cd`;
}

export interface BuiltVendor {
  readonly app: App;
  readonly stack: Stack;
  readonly vendor: TokenVendor;
  readonly template: Template;
}

/**
 * A stack holding one TokenVendor. `profiles` receives the stack to create or import secrets in;
 * `after` runs before synthesis (grants, extra resources).
 */
export function buildVendor(options: {
  profiles: (stack: Stack) => Record<string, ISecret>;
  props?: (stack: Stack) => Omit<TokenVendorProps, 'profiles'>;
  after?: (stack: Stack, vendor: TokenVendor) => void;
}): BuiltVendor {
  const app = new App();
  const stack = new Stack(app, 'Test');
  const vendor = new TokenVendor(stack, 'Vendor', {
    profiles: options.profiles(stack),
    ...options.props?.(stack),
  });
  options.after?.(stack, vendor);
  return { app, stack, vendor, template: Template.fromStack(stack) };
}

/** A secret created in the stack (its ARN is a deploy-time token), encrypted with its own key. */
export function inStackSecret(stack: Stack, id: string): Secret {
  const key = new Key(stack, `${id}Key`, { enableKeyRotation: true });
  const secret = new Secret(stack, id, { encryptionKey: key });
  Validations.of(secret).acknowledge({
    id: 'AwsSolutions-SMG4',
    reason: 'Test fixture; CRM.COM passwords are rotated by hand.',
  });
  return secret;
}
