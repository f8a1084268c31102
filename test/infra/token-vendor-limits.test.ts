import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { projectPath } from '../../lib/constructs/node-function.js';
import { TokenVendor } from '../../lib/constructs/token-vendor.js';
import { type BuiltVendor, buildVendor, inStackSecret, profileArn } from './build-vendor.js';
import {
  actionsOf,
  allIdentityStatements,
  asArray,
  type CfnResource,
  environmentOf,
  environmentSize,
  functionByPrefix,
  type Json,
  refSizeOf,
  resolvedDocument,
  resourcesOf,
  roleOf,
  statementsOfRole,
} from './helpers.js';

const IMPORTED = Array.from({ length: 95 }, (_, i) => `tenant-${String(i).padStart(3, '0')}`);
const IN_STACK = ['local-a', 'local-b', 'local-c', 'local-d', 'local-e'];
const ALL = [...IMPORTED, ...IN_STACK];

/** IAM quotas: a role's inline policies together, and one managed policy (whitespace aside). */
const ROLE_INLINE_LIMIT = 10_240;
const MANAGED_POLICY_LIMIT = 6_144;

/** Whether the vend code reads the bundled map (it is only inlined where it is referenced). */
function vendCodeReadsBundledMap(): boolean {
  const environment = projectPath('functions/adapters/environment.ts');
  return (
    existsSync(environment) && readFileSync(environment, 'utf8').includes('__PROFILE_SECRETS__')
  );
}

describe('TokenVendor with 100 profiles (tracing on, 2-minute schedule)', () => {
  let built: BuiltVendor;
  let vend: [string, CfnResource];
  let release: [string, CfnResource];

  beforeAll(() => {
    // Prepare: 95 imported secrets (bundled) and 5 created in the stack (in the environment),
    // and one consumer granted every profile by name.
    built = buildVendor({
      profiles: (stack) => ({
        ...Object.fromEntries(
          IMPORTED.map((name) => [
            name,
            TokenVendor.secretFromArn(stack, `Secret-${name}`, profileArn(name)),
          ]),
        ),
        ...Object.fromEntries(
          IN_STACK.map((name) => [name, inStackSecret(stack, `Secret-${name}`)]),
        ),
      }),
      props: () => ({
        tracing: true,
        stageName: 'live',
        settings: {
          releaseIntervalSeconds: 120,
          releaseLeadSeconds: 300,
          refreshAheadSeconds: 300,
        },
      }),
      after: (stack, vendor) => {
        const consumer = new Role(stack, 'BigConsumer', {
          assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
        });
        vendor.grantVend(consumer, { profiles: ALL });
      },
    });
    vend = functionByPrefix(built.template, 'VendorVendFunction');
    release = functionByPrefix(built.template, 'VendorReleaseFunction');
  });

  it('creates one alias per profile', () => {
    built.template.resourceCountIs('AWS::Lambda::Alias', 100);
  });

  it('keeps each function environment under 4 KB', () => {
    for (const fn of Object.values(resourcesOf(built.template, 'AWS::Lambda::Function'))) {
      expect(environmentSize(fn)).toBeLessThan(4096);
    }
  });

  it('puts only the deploy-time profiles in PROFILE_SECRETS', () => {
    const map = environmentOf(vend[1]).PROFILE_SECRETS as { 'Fn::Join': [string, Json[]] };
    const text = JSON.stringify(map);
    for (const name of IN_STACK) expect(text).toContain(`\\"${name}\\"`);
    expect(text).not.toContain('tenant-000');
  });

  it.runIf(vendCodeReadsBundledMap())('bundles the literal profile ARNs into the vend code', () => {
    const code = vend[1].Properties?.Code as { S3Key: string };
    const asset = join(built.app.outdir, `asset.${code.S3Key.replace(/\.zip$/, '')}`, 'index.mjs');
    const bundle = readFileSync(asset, 'utf8');
    expect(bundle).toContain(profileArn('tenant-000'));
    expect(bundle).toContain(profileArn('tenant-094'));
  });

  it('lets the vend role read all 100 secrets and nothing else of Secrets Manager', () => {
    const resources = statementsOfRole(built.template, roleOf(vend[1]))
      .filter((s) => actionsOf(s).some((action) => action.startsWith('secretsmanager:')))
      .flatMap((s) => asArray(s.Resource));
    expect(new Set(resources.map((r) => JSON.stringify(r))).size).toBe(100);
  });

  it('keeps every role within the IAM policy size limits', () => {
    const refSize = refSizeOf(built.template);
    const size = (policy: CfnResource) =>
      JSON.stringify(resolvedDocument(policy.Properties?.PolicyDocument as Json, refSize)).length;
    const inlineByRole = new Map<string, number>();
    for (const policy of Object.values(resourcesOf(built.template, 'AWS::IAM::Policy'))) {
      for (const role of (policy.Properties?.Roles ?? []) as { Ref: string }[]) {
        inlineByRole.set(role.Ref, (inlineByRole.get(role.Ref) ?? 0) + size(policy));
      }
    }
    expect(inlineByRole.size).toBeGreaterThan(0);
    for (const size of inlineByRole.values()) expect(size).toBeLessThan(ROLE_INLINE_LIMIT);
    const managed = Object.values(resourcesOf(built.template, 'AWS::IAM::ManagedPolicy'));
    // CDK moved what does not fit inline into managed policies (the vend role and the consumer).
    expect(managed.length).toBeGreaterThan(0);
    for (const policy of managed) expect(size(policy)).toBeLessThan(MANAGED_POLICY_LIMIT);
  });

  it('uses a "*" resource only for X-Ray, which supports no resource-level permissions', () => {
    const starred = allIdentityStatements(built.template).filter((s) =>
      asArray(s.Resource).includes('*'),
    );
    expect(starred.length).toBeGreaterThan(0);
    for (const statement of starred) {
      for (const action of actionsOf(statement)) expect(action).toMatch(/^xray:/);
    }
  });

  it('keeps the release role away from Secrets Manager with 100 profiles too', () => {
    const actions = statementsOfRole(built.template, roleOf(release[1])).flatMap(actionsOf);
    expect(actions.filter((action) => action.startsWith('secretsmanager:'))).toEqual([]);
  });

  it('grants the consumer each profile alias and its paths on the configured stage', () => {
    const roles = resourcesOf(built.template, 'AWS::IAM::Role');
    const roleId = Object.keys(roles).find((id) => id.startsWith('BigConsumer')) ?? '';
    const statements = statementsOfRole(built.template, roleId);
    const invoke = statements.filter((s) => actionsOf(s).includes('lambda:InvokeFunction'));
    const paths = statements
      .filter((s) => actionsOf(s).includes('execute-api:Invoke'))
      .flatMap((s) => asArray(s.Resource));
    expect(invoke.flatMap((s) => asArray(s.Resource))).toHaveLength(100);
    expect(paths).toHaveLength(200);
    expect(JSON.stringify(paths)).toContain('/live/GET/v1/tokens/tenant-042"');
  });

  it('schedules the release job at the configured interval', () => {
    built.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(2 minutes)',
    });
    const [, rule] = Object.entries(resourcesOf(built.template, 'AWS::Events::Rule'))[0] ?? [];
    expect(JSON.stringify(rule?.Properties?.Targets)).toContain('"MaximumEventAgeInSeconds":60');
  });

  it('traces both functions and the stage', () => {
    expect(vend[1].Properties?.TracingConfig).toEqual({ Mode: 'Active' });
    expect(release[1].Properties?.TracingConfig).toEqual({ Mode: 'Active' });
    built.template.hasResourceProperties('AWS::ApiGateway::Stage', { TracingEnabled: true });
  });

  it('passes the cdk-nag AwsSolutions checks', () => {
    const report = new AwsSolutionsChecks(built.app).validateScope(built.stack);
    expect(report.violations.map((violation) => violation.ruleName)).toEqual([]);
  });
});

describe('TokenVendor environment limit', () => {
  it('fails the synth, before bundling, when deploy-time ARNs would overflow the environment', () => {
    expect(() =>
      buildVendor({
        profiles: (stack) =>
          Object.fromEntries(
            Array.from({ length: 40 }, (_, i) => [`p${i}`, new Secret(stack, `S${i}`)]),
          ),
      }),
    ).toThrow(/vend function's environment would take about \d+ bytes, over Lambda's 4096-byte/);
  });
});
