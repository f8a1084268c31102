#!/usr/bin/env node
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { TokenVendorStack } from '../lib/stacks/token-vendor-stack.js';
import { synthesizeStrictly } from '../lib/synth-checks.js';

const app = new App();
const account = app.node.tryGetContext('account') as string | undefined;
const region = app.node.tryGetContext('region') as string | undefined;
new TokenVendorStack(
  app,
  (app.node.tryGetContext('stackName') as string | undefined) ?? 'CrmTokenVendor',
  {
    // Environment-agnostic unless both are given: synth needs no credentials and does no lookups.
    env: account && region ? { account, region } : undefined,
  },
);
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
synthesizeStrictly(app);
