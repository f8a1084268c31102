import { Match } from 'aws-cdk-lib/assertions';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { SETTING_VARIABLES } from '../../functions/core/settings.js';
import { TokenVendor } from '../../lib/constructs/token-vendor.js';
import { ALPHA_ARN, type BuiltVendor, buildVendor, inStackSecret } from './build-vendor.js';
import {
  actionsOf,
  allIdentityStatements,
  asArray,
  type CfnResource,
  environmentOf,
  functionByPrefix,
  type Json,
  only,
  resourcesOf,
  roleOf,
  statementsOfRole,
} from './helpers.js';

const ALARM_TOPIC_ARN = 'arn:aws:sns:eu-west-1:111122223333:crm-token-vendor-alarms';
const SETTING_NAMES = Object.values(SETTING_VARIABLES);
const COMMON_ENV = [
  'TABLE_NAME',
  ...SETTING_NAMES,
  'LOG_LEVEL',
  'POWERTOOLS_SERVICE_NAME',
  'POWERTOOLS_METRICS_NAMESPACE',
  'NODE_OPTIONS',
];

describe('TokenVendor (two profiles, one granted consumer)', () => {
  let built: BuiltVendor;
  let vend: [string, CfnResource];
  let release: [string, CfnResource];

  beforeAll(() => {
    // Prepare: one profile imported by ARN (bundled), one created in the stack (deploy-time).
    built = buildVendor({
      profiles: (stack) => ({
        alpha: TokenVendor.secretFromArn(stack, 'AlphaSecret', ALPHA_ARN),
        beta: inStackSecret(stack, 'BetaSecret'),
      }),
      props: (stack) => ({
        defaultBaseUrl: 'https://tenant.crm.com/crmapi/rest/v2',
        alarmTopic: Topic.fromTopicArn(stack, 'Alarms', ALARM_TOPIC_ARN),
      }),
      after: (stack, vendor) => {
        const lambda = new ServicePrincipal('lambda.amazonaws.com');
        vendor.grantVend(new Role(stack, 'AlphaConsumer', { assumedBy: lambda }), {
          profiles: ['alpha'],
        });
        vendor.grantVend(new Role(stack, 'AnyConsumer', { assumedBy: lambda }));
      },
    });
    vend = functionByPrefix(built.template, 'VendorVendFunction');
    release = functionByPrefix(built.template, 'VendorReleaseFunction');
  });

  describe('table', () => {
    it('has pk, TTL on ttl, the sparse due index, on-demand billing, PITR and RETAIN', () => {
      built.template.hasResource('AWS::DynamoDB::Table', {
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
        Properties: {
          KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
          TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
          BillingMode: 'PAY_PER_REQUEST',
          PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
          GlobalSecondaryIndexes: [
            {
              IndexName: 'due-index',
              KeySchema: [
                { AttributeName: 'dueShard', KeyType: 'HASH' },
                { AttributeName: 'dueAt', KeyType: 'RANGE' },
              ],
              Projection: { ProjectionType: 'ALL' },
            },
          ],
          AttributeDefinitions: Match.arrayWith([
            { AttributeName: 'dueShard', AttributeType: 'S' },
            { AttributeName: 'dueAt', AttributeType: 'N' },
          ]),
        },
      });
    });

    it('is encrypted with an AWS owned key by default', () => {
      built.template.hasResourceProperties('AWS::DynamoDB::Table', {
        SSESpecification: { SSEEnabled: false },
      });
    });
  });

  describe('functions', () => {
    it('run Node.js 22 on ARM64 from ESM bundles', () => {
      for (const [, fn] of [vend, release]) {
        expect(fn.Properties).toMatchObject({
          Runtime: 'nodejs22.x',
          Architectures: ['arm64'],
          Handler: 'index.handler',
        });
      }
    });

    it('give vend a timeout above the lease and below API Gateway, release 60 s', () => {
      const lease = 5000 + 3000;
      const vendTimeout = vend[1].Properties?.Timeout as number;
      expect(vendTimeout * 1000).toBeGreaterThan(lease);
      expect(vendTimeout).toBeLessThan(29);
      expect(release[1].Properties?.Timeout).toBe(60);
    });

    it('pass every setting by its contract name, plus the service variables', () => {
      const env = environmentOf(vend[1]);
      for (const name of COMMON_ENV) expect(env).toHaveProperty(name);
      expect(env).toMatchObject({
        POWERTOOLS_SERVICE_NAME: 'crm-token-vendor',
        POWERTOOLS_METRICS_NAMESPACE: 'CrmTokenVendor',
        NODE_OPTIONS: '--enable-source-maps',
        LOG_LEVEL: 'INFO',
        RELEASE_INTERVAL_SECONDS: '300',
        CRM_TIMEOUT_MS: '5000',
        CRM_BASE_URL: 'https://tenant.crm.com/crmapi/rest/v2',
      });
    });

    it('put only deploy-time profile ARNs in PROFILE_SECRETS, as a JSON document', () => {
      const value = JSON.stringify(environmentOf(vend[1]).PROFILE_SECRETS);
      expect(value).toContain('beta');
      expect(value).toContain('BetaSecret');
      expect(value).not.toContain('alpha');
    });

    it('give release no profile map, no base URL and nothing beyond the common variables', () => {
      expect(Object.keys(environmentOf(release[1])).sort()).toEqual([...COMMON_ENV].sort());
    });

    it('put no secret-like value in any environment variable', () => {
      const functions = resourcesOf(built.template, 'AWS::Lambda::Function');
      for (const fn of Object.values(functions)) {
        for (const [name, value] of Object.entries(environmentOf(fn))) {
          expect(name).not.toMatch(/PASSWORD|USERNAME|API_KEY|CREDENTIAL|TOKEN$/i);
          const text = JSON.stringify(value);
          expect(text).not.toMatch(/resolve:secretsmanager|password|webApiKey/i);
          if (name === 'PROFILE_SECRETS') continue;
          // Everything else is a literal setting, a name or a reference to the table.
          expect(typeof value === 'string' || 'Ref' in (value as Record<string, Json>)).toBe(true);
        }
      }
    });

    it('has one alias profile-<name> per profile, on the current version', () => {
      const aliases = Object.values(resourcesOf(built.template, 'AWS::Lambda::Alias'));
      expect(aliases.map((alias) => alias.Properties?.Name).sort()).toEqual([
        'profile-alpha',
        'profile-beta',
      ]);
      const [versionId] = only(resourcesOf(built.template, 'AWS::Lambda::Version'));
      for (const alias of aliases) {
        expect(alias.Properties).toMatchObject({
          FunctionName: { Ref: vend[0] },
          FunctionVersion: { 'Fn::GetAtt': [versionId, 'Version'] },
        });
      }
    });
  });

  describe('least privilege', () => {
    it('gives the release role no Secrets Manager access at all', () => {
      const statements = statementsOfRole(built.template, roleOf(release[1]));
      expect(statements.length).toBeGreaterThan(0);
      for (const statement of statements) {
        for (const action of actionsOf(statement)) expect(action).not.toMatch(/^secretsmanager:/);
      }
    });

    it('lets the vend role read exactly the profile secrets', () => {
      const statements = statementsOfRole(built.template, roleOf(vend[1])).filter((statement) =>
        actionsOf(statement).some((action) => action.startsWith('secretsmanager:')),
      );
      const actions = new Set(statements.flatMap(actionsOf));
      expect([...actions].sort()).toEqual([
        'secretsmanager:DescribeSecret',
        'secretsmanager:GetSecretValue',
      ]);
      const resources = statements.flatMap((statement) => asArray(statement.Resource));
      const [betaId] = only(
        Object.fromEntries(
          Object.entries(resourcesOf(built.template, 'AWS::SecretsManager::Secret')),
        ),
      );
      expect(resources).toHaveLength(2);
      expect(resources).toEqual(expect.arrayContaining([ALPHA_ARN, { Ref: betaId }]));
    });

    it('lets the vend role (only) decrypt a keyed secret, through Secrets Manager', () => {
      // Same-stack key: CDK grants in the key policy, scoped to Secrets Manager by kms:ViaService.
      const [, key] = only(resourcesOf(built.template, 'AWS::KMS::Key'));
      const statements = (key.Properties!.KeyPolicy as { Statement: Record<string, Json>[] })
        .Statement;
      const decrypters = statements
        .filter((statement) => JSON.stringify(statement.Principal).includes('Role'))
        .map((statement) => ({ principal: statement.Principal, action: statement.Action }));
      expect(decrypters).toEqual([
        { principal: { AWS: { 'Fn::GetAtt': [roleOf(vend[1]), 'Arn'] } }, action: 'kms:Decrypt' },
      ]);
    });

    it('scopes table access: vend to the table, release also to the due index', () => {
      const [tableId] = only(resourcesOf(built.template, 'AWS::DynamoDB::Table'));
      const tableArn = { 'Fn::GetAtt': [tableId, 'Arn'] };
      const dynamo = (fn: CfnResource) =>
        statementsOfRole(built.template, roleOf(fn)).filter((statement) =>
          actionsOf(statement).some((action) => action.startsWith('dynamodb:')),
        );
      const [vendStatement] = dynamo(vend[1]);
      expect(dynamo(vend[1])).toHaveLength(1);
      expect(vendStatement?.Resource).toEqual(tableArn);
      expect(actionsOf(vendStatement!)).not.toContain('dynamodb:Scan');
      expect(actionsOf(vendStatement!)).not.toContain('dynamodb:Query');
      const [releaseStatement] = dynamo(release[1]);
      expect(releaseStatement?.Resource).toEqual([
        tableArn,
        { 'Fn::Join': ['', [tableArn, '/index/due-index']] },
      ]);
      expect(actionsOf(releaseStatement!)).not.toContain('dynamodb:Scan');
    });

    it('uses no "*" resource anywhere (tracing is off)', () => {
      for (const statement of allIdentityStatements(built.template)) {
        expect(asArray(statement.Resource)).not.toContain('*');
      }
    });

    it('lets nothing but API Gateway and EventBridge invoke the functions', () => {
      const permissions = Object.values(resourcesOf(built.template, 'AWS::Lambda::Permission'));
      expect(permissions.map((p) => p.Properties?.Principal).sort()).toEqual([
        'apigateway.amazonaws.com',
        'events.amazonaws.com',
      ]);
    });
  });

  describe('grantVend', () => {
    const consumerStatements = (roleIdPrefix: string) => {
      const roles = resourcesOf(built.template, 'AWS::IAM::Role');
      const [roleId] = only(
        Object.fromEntries(Object.entries(roles).filter(([id]) => id.startsWith(roleIdPrefix))),
      );
      return statementsOfRole(built.template, roleId);
    };

    it('grants invoke on the named profile alias and execute-api on its two paths only', () => {
      const aliases = resourcesOf(built.template, 'AWS::Lambda::Alias');
      const [alphaAlias] = only(
        Object.fromEntries(
          Object.entries(aliases).filter(([, a]) => a.Properties?.Name === 'profile-alpha'),
        ),
      );
      const statements = consumerStatements('AlphaConsumer');
      expect(statements).toHaveLength(2);
      expect(statements).toContainEqual({
        Effect: 'Allow',
        Action: 'lambda:InvokeFunction',
        Resource: { Ref: alphaAlias },
      });
      const api = statements.find((s) => s.Action === 'execute-api:Invoke');
      const paths = asArray(api?.Resource as Json).map((arn) => JSON.stringify(arn));
      expect(paths).toHaveLength(2);
      expect(paths[0]).toContain('/prod/GET/v1/tokens/alpha"');
      expect(paths[1]).toContain('/prod/POST/v1/tokens/alpha/invalidate"');
      expect(JSON.stringify(statements)).not.toContain('beta');
      expect(JSON.stringify(statements)).not.toContain(release[0]);
    });

    it('grants all profiles as the function and its aliases, and all token paths', () => {
      const statements = consumerStatements('AnyConsumer');
      expect(statements).toHaveLength(2);
      const invoke = statements.find((s) => s.Action === 'lambda:InvokeFunction');
      expect(invoke?.Resource).toEqual([
        { 'Fn::GetAtt': [vend[0], 'Arn'] },
        { 'Fn::Join': ['', [{ 'Fn::GetAtt': [vend[0], 'Arn'] }, ':*']] },
      ]);
      const api = statements.find((s) => s.Action === 'execute-api:Invoke');
      const paths = asArray(api?.Resource as Json).map((arn) => JSON.stringify(arn));
      expect(paths).toHaveLength(2);
      expect(paths[0]).toContain('/prod/GET/v1/tokens/*"');
      expect(paths[1]).toContain('/prod/POST/v1/tokens/*/invalidate"');
    });

    it('throws at synth for a profile that is not configured', () => {
      const grantee = new Role(built.stack, 'Stranger', {
        assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      });
      expect(() => built.vendor.grantVend(grantee, { profiles: ['gamma'] })).toThrow(
        /unknown profile "gamma"/,
      );
      expect(() => built.vendor.grantVend(grantee, { profiles: [] })).toThrow(/empty/);
    });
  });

  describe('REST API', () => {
    it('uses AWS_IAM on every method', () => {
      const methods = Object.values(resourcesOf(built.template, 'AWS::ApiGateway::Method'));
      expect(methods.length).toBeGreaterThan(0);
      for (const method of methods) {
        expect(method.Properties?.AuthorizationType).toBe('AWS_IAM');
      }
    });

    it('routes every method, catch-alls included, to the unqualified vend function', () => {
      const methods = Object.values(resourcesOf(built.template, 'AWS::ApiGateway::Method'));
      for (const method of methods) {
        const integration = method.Properties?.Integration as Record<string, Json>;
        expect(integration.Type).toBe('AWS_PROXY');
        expect(JSON.stringify(integration.Uri)).toContain(`"Fn::GetAtt":["${vend[0]}","Arn"]`);
        expect(JSON.stringify(integration.Uri)).not.toContain('profile-');
      }
    });

    it('defines the contract routes, ANY everywhere and {proxy+} catch-alls', () => {
      const resources = resourcesOf(built.template, 'AWS::ApiGateway::Resource');
      const pathOf = (ref: Json): string => {
        if (ref !== null && typeof ref === 'object' && 'Ref' in ref) {
          const resource = resources[(ref as { Ref: string }).Ref];
          return `${pathOf(resource?.Properties?.ParentId as Json)}/${resource?.Properties?.PathPart}`;
        }
        return '';
      };
      const routes = Object.values(resourcesOf(built.template, 'AWS::ApiGateway::Method')).map(
        (method) =>
          `${method.Properties?.HttpMethod} ${pathOf(method.Properties?.ResourceId as Json) || '/'}`,
      );
      expect(routes.sort()).toEqual(
        [
          'ANY /',
          'ANY /{proxy+}',
          'ANY /v1',
          'ANY /v1/{proxy+}',
          'ANY /v1/tokens',
          'GET /v1/tokens/{profile}',
          'ANY /v1/tokens/{profile}',
          'ANY /v1/tokens/{profile}/{proxy+}',
          'POST /v1/tokens/{profile}/invalidate',
          'ANY /v1/tokens/{profile}/invalidate',
          'ANY /v1/tokens/{profile}/invalidate/{proxy+}',
          'GET /v1/health',
          'ANY /v1/health',
          'ANY /v1/health/{proxy+}',
        ].sort(),
      );
    });

    it('throttles the stage and writes JSON access logs', () => {
      const [, stage] = only(resourcesOf(built.template, 'AWS::ApiGateway::Stage'));
      expect(stage.Properties).toMatchObject({
        StageName: 'prod',
        MethodSettings: [
          expect.objectContaining({ ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 }),
        ],
        AccessLogSetting: { DestinationArn: expect.anything() },
      });
      const format = (stage.Properties!.AccessLogSetting as { Format: string }).Format;
      expect(JSON.parse(format)).toMatchObject({
        requestId: '$context.requestId',
        status: '$context.status',
      });
    });

    it.each([
      ['ACCESS_DENIED', 'FORBIDDEN', false],
      ['MISSING_AUTHENTICATION_TOKEN', 'FORBIDDEN', false],
      ['INVALID_SIGNATURE', 'FORBIDDEN', false],
      ['EXPIRED_TOKEN', 'FORBIDDEN', false],
      ['UNAUTHORIZED', 'FORBIDDEN', false],
      ['THROTTLED', 'THROTTLED', true],
      ['QUOTA_EXCEEDED', 'THROTTLED', true],
      ['RESOURCE_NOT_FOUND', 'NOT_FOUND', false],
      ['DEFAULT_4XX', 'INVALID_REQUEST', false],
      ['DEFAULT_5XX', 'INTERNAL', true],
    ])('maps the %s gateway response to the error shape (%s)', (type, code, retryable) => {
      const responses = Object.values(
        resourcesOf(built.template, 'AWS::ApiGateway::GatewayResponse'),
      ).filter((response) => response.Properties?.ResponseType === type);
      expect(responses).toHaveLength(1);
      const properties = responses[0]?.Properties as Record<string, Record<string, string>>;
      expect(properties.ResponseParameters).toMatchObject({
        'gatewayresponse.header.Content-Type': "'application/json'",
      });
      const template = properties.ResponseTemplates?.['application/json'] ?? '';
      // API Gateway substitutes the quoted message; the rest must already be the contract shape.
      const body = JSON.parse(template.replace('$context.error.messageString', '"m"'));
      expect(body).toEqual({ error: { code, message: 'm', retryable } });
    });
  });

  describe('release schedule', () => {
    it('runs every 5 minutes with {} , retries and a dead-letter queue', () => {
      const [queueId] = only(resourcesOf(built.template, 'AWS::SQS::Queue'));
      built.template.hasResourceProperties('AWS::Events::Rule', {
        ScheduleExpression: 'rate(5 minutes)',
        Targets: [
          Match.objectLike({
            Arn: { 'Fn::GetAtt': [release[0], 'Arn'] },
            Input: '{}',
            RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 150 },
            DeadLetterConfig: { Arn: { 'Fn::GetAtt': [queueId, 'Arn'] } },
          }),
        ],
      });
    });

    it('keeps an encrypted dead-letter queue that denies non-TLS access', () => {
      built.template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true });
      built.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
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

    it('sends failed runs to the dead-letter queue instead of retrying them', () => {
      built.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
        FunctionName: { Ref: release[0] },
        MaximumRetryAttempts: 0,
        DestinationConfig: { OnFailure: { Destination: Match.anyValue() } },
      });
    });
  });

  describe('monitoring', () => {
    it('alarms on the service metrics, treating missing data as not breaching', () => {
      const alarms = Object.values(resourcesOf(built.template, 'AWS::CloudWatch::Alarm'));
      for (const alarm of alarms) {
        expect(alarm.Properties?.TreatMissingData).toBe('notBreaching');
      }
      const serviceMetrics = alarms
        .filter((alarm) => alarm.Properties?.Namespace === 'CrmTokenVendor')
        .map((alarm) => {
          expect(alarm.Properties?.Dimensions).toEqual([
            { Name: 'service', Value: 'crm-token-vendor' },
          ]);
          return alarm.Properties?.MetricName;
        });
      expect(serviceMetrics.sort()).toEqual(
        [
          'ReleaseFailures',
          'ReleasesAbandoned',
          'VendErrors',
          'LoginFailuresRejected',
          'LoginFailuresUnavailable',
        ].sort(),
      );
      const others = alarms
        .filter((alarm) => alarm.Properties?.Namespace !== 'CrmTokenVendor')
        .map((alarm) => `${alarm.Properties?.Namespace}/${alarm.Properties?.MetricName}`);
      expect(others.sort()).toEqual(
        [
          'AWS/Lambda/Errors',
          'AWS/Lambda/Errors',
          'AWS/Lambda/Throttles',
          'AWS/Lambda/Throttles',
          'AWS/ApiGateway/5XXError',
          'AWS/SQS/ApproximateNumberOfMessagesVisible',
        ].sort(),
      );
    });

    it('notifies the alarm topic on alarm and OK', () => {
      const alarms = Object.values(resourcesOf(built.template, 'AWS::CloudWatch::Alarm'));
      expect(alarms).toHaveLength(11);
      for (const alarm of alarms) {
        expect(alarm.Properties?.AlarmActions).toEqual([ALARM_TOPIC_ARN]);
        expect(alarm.Properties?.OKActions).toEqual([ALARM_TOPIC_ARN]);
      }
    });

    it('has a dashboard', () => {
      built.template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    });
  });

  it('passes the cdk-nag AwsSolutions checks (acknowledged findings aside)', () => {
    const report = new AwsSolutionsChecks(built.app).validateScope(built.stack);
    const findings = report.violations.flatMap((violation) =>
      violation.violatingResources.map((r) => `${violation.ruleName} at ${r.constructPath}`),
    );
    // Granting all profiles is a wildcard by design; its consumer acknowledges that (deploy.md).
    expect(findings.filter((finding) => !finding.includes('Test/AnyConsumer/'))).toEqual([]);
  });
});
