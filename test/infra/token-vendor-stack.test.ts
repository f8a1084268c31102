import { Annotations, App, Stack } from 'aws-cdk-lib';
import { Annotations as AnnotationsOf, Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { entryExists } from '../../lib/constructs/node-function.js';
import {
  booleanFromContext,
  logLevelFromContext,
  PLACEHOLDER_PROFILES,
  profilesFromContext,
  settingsFromContext,
} from '../../lib/stacks/stack-context.js';
import { EXAMPLE_CONSUMER_ENTRY, TokenVendorStack } from '../../lib/stacks/token-vendor-stack.js';
import { synthesizeStrictly } from '../../lib/synth-checks.js';
import { profileArn } from './build-vendor.js';
import {
  actionsOf,
  asArray,
  environmentOf,
  functionByPrefix,
  resourcesOf,
  roleOf,
  statementsOfRole,
} from './helpers.js';

const hasConsumer = entryExists(EXAMPLE_CONSUMER_ENTRY);

describe('TokenVendorStack configured by context', () => {
  let stack: TokenVendorStack;
  let template: Template;

  beforeAll(() => {
    // Prepare: context as the CLI passes it (-c key=value gives strings).
    const app = new App({
      context: {
        profiles: JSON.stringify({ first: profileArn('first'), second: profileArn('second') }),
        settings: JSON.stringify({ RELEASE_INTERVAL_SECONDS: 240, RELEASE_LEAD_SECONDS: 900 }),
        RELEASE_INTERVAL_SECONDS: '180',
        logLevel: 'debug',
        alarmEmail: 'platform@example.com',
        defaultBaseUrl: 'https://tenant.crm.com/crmapi/rest/v2',
        exampleConsumer: 'true',
      },
    });
    stack = new TokenVendorStack(app, 'Vendor');
    template = Template.fromStack(stack);
  });

  it('applies settings, individual keys over the settings object', () => {
    const [, vend] = functionByPrefix(template, 'TokenVendorVendFunction');
    expect(environmentOf(vend)).toMatchObject({
      RELEASE_INTERVAL_SECONDS: '180',
      RELEASE_LEAD_SECONDS: '900',
      LOG_LEVEL: 'DEBUG',
      CRM_BASE_URL: 'https://tenant.crm.com/crmapi/rest/v2',
    });
    template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(3 minutes)' });
  });

  it('creates one alias per context profile', () => {
    const names = Object.values(resourcesOf(template, 'AWS::Lambda::Alias')).map(
      (alias) => alias.Properties?.Name,
    );
    expect(names.sort()).toEqual(['profile-first', 'profile-second']);
  });

  it('sends alarms to a TLS-only topic with the e-mail subscribed', () => {
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'platform@example.com',
    });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });

  it('outputs the API URL and the function and table names', () => {
    const outputs = Object.keys(template.findOutputs('*'));
    for (const name of ['ApiUrl', 'VendFunctionName', 'ReleaseFunctionName', 'TableName']) {
      expect(outputs).toContain(name);
    }
  });

  it.runIf(hasConsumer)('adds the example consumer, granted the first profile only', () => {
    const [vendId] = functionByPrefix(template, 'TokenVendorVendFunction');
    const [, consumer] = functionByPrefix(template, 'ExampleConsumerFunction');
    expect(environmentOf(consumer)).toMatchObject({
      VENDOR_FUNCTION_NAME: { Ref: vendId },
      VENDOR_PROFILE: 'first',
    });
    const statements = statementsOfRole(template, roleOf(consumer));
    const invoke = statements.filter((s) => actionsOf(s).includes('lambda:InvokeFunction'));
    expect(invoke.flatMap((s) => asArray(s.Resource))).toHaveLength(1);
    const text = JSON.stringify(statements);
    expect(text).toContain('/prod/GET/v1/tokens/first"');
    expect(text).not.toContain('second');
    expect(text).not.toContain('secretsmanager');
  });

  it('passes the cdk-nag AwsSolutions checks', () => {
    const report = new AwsSolutionsChecks(stack).validateScope(stack);
    expect(report.violations.map((violation) => violation.ruleName)).toEqual([]);
  });

  it('carries no warning or error annotation', () => {
    AnnotationsOf.fromStack(stack).hasNoWarning('*', Match.anyValue());
    AnnotationsOf.fromStack(stack).hasNoError('*', Match.anyValue());
  });
});

describe('stack context parsing', () => {
  it('falls back to the documented placeholder profile', () => {
    expect(profilesFromContext(undefined)).toEqual(PLACEHOLDER_PROFILES);
  });

  it('accepts profiles as an object or as JSON text, and rejects anything else', () => {
    const arn = profileArn('a');
    expect(profilesFromContext({ a: arn })).toEqual({ a: arn });
    expect(profilesFromContext(JSON.stringify({ a: arn }))).toEqual({ a: arn });
    expect(() => profilesFromContext('{nope')).toThrow(/profiles must be a JSON object/);
    expect(() => profilesFromContext('[1]')).toThrow(/profiles must be a JSON object/);
    expect(() => profilesFromContext({ a: 1 })).toThrow(/profiles.a must be a secret ARN/);
  });

  it('rejects an unknown setting name instead of ignoring a typo', () => {
    expect(() => settingsFromContext({ RELEASE_INTERVAL: 60 }, () => undefined)).toThrow(
      /settings.RELEASE_INTERVAL is not a setting/,
    );
  });

  it('reads boolean flags and log levels', () => {
    expect(booleanFromContext('f', 'true')).toBe(true);
    expect(booleanFromContext('f', undefined)).toBe(false);
    expect(() => booleanFromContext('f', 'yes')).toThrow(/f must be true or false/);
    expect(logLevelFromContext('warn')).toBe('WARN');
    expect(() => logLevelFromContext('loud')).toThrow(/logLevel/);
  });

  it('fails the synth on a bad setting in context, naming it', () => {
    const app = new App({ context: { RELEASE_INTERVAL_SECONDS: '90' } });
    expect(() => new TokenVendorStack(app, 'Vendor')).toThrow(/RELEASE_INTERVAL_SECONDS/);
  });

  it('fails the synth on a bad profile ARN in context', () => {
    const app = new App({ context: { profiles: '{"a":"crm-token-vendor/a"}' } });
    expect(() => new TokenVendorStack(app, 'Vendor')).toThrow(/not a complete Secrets Manager/);
  });
});

describe('synthesizeStrictly', () => {
  it('throws on a warning annotation', () => {
    const app = new App();
    const stack = new Stack(app, 'Warned');
    Annotations.of(stack).addWarningV2('test:warning', 'something is off');
    expect(() => synthesizeStrictly(app)).toThrow(/1 warning or error annotation/);
  });

  it('passes a clean app', () => {
    const app = new App();
    new Stack(app, 'Clean');
    expect(() => synthesizeStrictly(app)).not.toThrow();
  });
});
