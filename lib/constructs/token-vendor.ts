import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type { RestApi } from 'aws-cdk-lib/aws-apigateway';
import type { Alarm, Dashboard } from 'aws-cdk-lib/aws-cloudwatch';
import {
  AttributeType,
  BillingMode,
  type ITable,
  ProjectionType,
  Table,
  TableEncryption,
} from 'aws-cdk-lib/aws-dynamodb';
import { Rule, RuleTargetInput, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { Grant, type IGrantable } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Alias, type IAlias, type IFunction, type Runtime } from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { type ISecret, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { type IQueue, Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  parseSettings,
  SETTING_VARIABLES,
  type Settings,
  type SettingsInput,
} from '../../functions/core/settings.js';
import { METRICS_NAMESPACE, SERVICE_NAME } from './metric-names.js';
import { NodeFunction } from './node-function.js';
import {
  checkEnvironmentSize,
  estimateEnvironmentSize,
  estimateProfileMapSize,
  splitProfileSecrets,
  validateProfileName,
} from './profile-secrets.js';
import {
  RELEASE_TIMEOUT_SECONDS,
  releaseMaxEventAgeSeconds,
  vendTimeoutSeconds,
} from './timeouts.js';
import { TOKEN_PATH, TokenVendorApi } from './token-vendor-api.js';
import { TokenVendorMonitoring } from './token-vendor-monitoring.js';

/** Token lifecycle settings of CONTRACT §3; each unset one takes the contract's default. */
export interface TokenVendorSettings {
  /** @default 3600 */
  readonly tokenLifetimeSeconds?: number;
  /** @default 600 */
  readonly releaseLeadSeconds?: number;
  /** @default 600 */
  readonly refreshAheadSeconds?: number;
  /** @default 300 */
  readonly minValiditySeconds?: number;
  /** @default 60 */
  readonly authFailureBackoffSeconds?: number;
  /** @default 1 */
  readonly unavailableBackoffSeconds?: number;
  /** How often the release job runs; a multiple of 60. @default 300 */
  readonly releaseIntervalSeconds?: number;
  /** `false` for CRM.COM R12+, where release is deprecated. @default true */
  readonly releaseEnabled?: boolean;
  /** @default 5000 */
  readonly crmTimeoutMs?: number;
  /** @default 5 */
  readonly memoryCacheSeconds?: number;
  /** @default 300 */
  readonly secretCacheSeconds?: number;
  /** How many tokens one release run releases in parallel. @default 10 */
  readonly releaseConcurrency?: number;
}

/** Log level of both functions (`LOG_LEVEL`). */
export type TokenVendorLogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

export interface TokenVendorProps {
  /**
   * Profile name → secret holding its CRM.COM credentials (CONTRACT §2). Names are 1-64
   * characters of `[A-Za-z0-9_-]`. Import existing secrets with {@link TokenVendor.secretFromArn}.
   */
  readonly profiles: Readonly<Record<string, ISecret>>;
  /** Token lifecycle settings, validated at synth. @default - the contract's defaults */
  readonly settings?: TokenVendorSettings;
  /**
   * REST root used by profiles whose secret has no `baseUrl`,
   * e.g. `https://tenant.crm.com/crmapi/rest/v2` (`CRM_BASE_URL`).
   * @default - every secret must carry its own `baseUrl`
   */
  readonly defaultBaseUrl?: string;
  /** @default 'INFO' */
  readonly logLevel?: TokenVendorLogLevel;
  /**
   * An existing table (partition key `pk` String, TTL on `ttl`, sparse GSI `due-index` on
   * `dueShard` String / `dueAt` Number, projection ALL), to keep stateful resources in their own
   * stack. `tableEncryptionKey` and `removalPolicy` must then be unset.
   * @default - a new table
   */
  readonly table?: ITable;
  /** Customer managed key of the new table. @default - an AWS owned key */
  readonly tableEncryptionKey?: IKey;
  /** What happens to the new table when it leaves the stack. @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: RemovalPolicy;
  /** Topic that receives alarm and OK notifications. @default - alarms notify nobody */
  readonly alarmTopic?: ITopic;
  /** Stage of the REST API. @default 'prod' */
  readonly stageName?: string;
  /** Steady-state request rate of the stage, per second. @default 50 */
  readonly apiRateLimit?: number;
  /** Burst of the stage. @default 100 */
  readonly apiBurstLimit?: number;
  /** X-Ray tracing of the API and both functions. @default false */
  readonly tracing?: boolean;
  /** Retention of function and access logs. @default RetentionDays.ONE_MONTH */
  readonly logRetention?: RetentionDays;
  /** @default 512 */
  readonly vendMemorySize?: number;
  /** @default 256 */
  readonly releaseMemorySize?: number;
  /** Reserved concurrency of the release function (runs tolerate overlap). @default - none */
  readonly releaseReservedConcurrency?: number;
  /** Node.js runtime of both functions; the bundle targets the same version. @default NODEJS_22_X */
  readonly runtime?: Runtime;
}

/** Which profiles a consumer may get tokens of. */
export interface GrantVendOptions {
  /** Profile names; each must be one of the construct's profiles. @default - all profiles */
  readonly profiles?: readonly string[];
}

/** Name of the sparse index of token records pending release. */
export const DUE_INDEX_NAME = 'due-index';

/** Alias of the vend function that serves only one profile (CONTRACT §7). */
export function profileAliasName(profile: string): string {
  return `profile-${profile}`;
}

const VEND_TABLE_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:ConditionCheckItem',
];
const RELEASE_TABLE_ACTIONS = [...VEND_TABLE_ACTIONS, 'dynamodb:Query'];

/**
 * CRM.COM token vendor (CONTRACT §7): a table, the vend function behind an IAM-authorized REST
 * API and per-profile aliases, the scheduled release function with its dead-letter queue, alarms
 * and a dashboard. Use {@link TokenVendor.grantVend} to let a consumer get tokens.
 */
export class TokenVendor extends Construct {
  /** Imports a secret by its complete ARN (with the 6-character suffix Secrets Manager adds). */
  static secretFromArn(scope: Construct, id: string, arn: string, encryptionKey?: IKey): ISecret {
    if (!/^arn:[\w-]+:secretsmanager:[\w-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$/.test(arn)) {
      throw new Error(
        `TokenVendor: ${JSON.stringify(arn)} is not a complete Secrets Manager secret ARN ` +
          '(arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 characters>)',
      );
    }
    return Secret.fromSecretAttributes(scope, id, { secretCompleteArn: arn, encryptionKey });
  }

  readonly table: ITable;
  readonly vendFunction: IFunction;
  readonly releaseFunction: IFunction;
  readonly api: RestApi;
  readonly deadLetterQueue: IQueue;
  readonly schedule: Rule;
  readonly alarms: readonly Alarm[];
  readonly dashboard: Dashboard;
  /** The validated settings, with defaults applied. */
  readonly settings: Settings;
  /** Names of the configured profiles. */
  readonly profileNames: readonly string[];
  /** Stage of the REST API that `grantVend` grants paths of. */
  readonly stageName: string;
  private readonly aliases = new Map<string, Alias>();

  constructor(scope: Construct, id: string, props: TokenVendorProps) {
    super(scope, id);
    // Everything that can be wrong with the props is checked before any resource is created.
    this.settings = resolveSettings(props.settings);
    const vendTimeout = vendTimeoutSeconds(this.settings);
    const profileMaps = splitProfileSecrets(props.profiles);
    this.profileNames = Object.keys(props.profiles);
    this.stageName = props.stageName ?? 'prod';
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(this.stageName)) {
      throw new Error(`TokenVendor: stageName ${JSON.stringify(this.stageName)} is invalid`);
    }
    if (props.defaultBaseUrl !== undefined) checkBaseUrl(props.defaultBaseUrl);
    if (props.table && (props.tableEncryptionKey || props.removalPolicy)) {
      throw new Error(
        'TokenVendor: tableEncryptionKey and removalPolicy apply to a new table only; unset them when passing table',
      );
    }

    this.table = props.table ?? this.createTable(props);
    const logRetention = props.logRetention ?? RetentionDays.ONE_MONTH;
    const tracing = props.tracing ?? false;

    const common: Record<string, string> = {
      TABLE_NAME: this.table.tableName,
      ...settingsEnvironment(this.settings),
      LOG_LEVEL: props.logLevel ?? 'INFO',
      POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
      POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
      NODE_OPTIONS: '--enable-source-maps',
    };
    const vendEnvironment: Record<string, string> = { ...common };
    if (props.defaultBaseUrl !== undefined) vendEnvironment.CRM_BASE_URL = props.defaultBaseUrl;
    const estimates: Record<string, number> = {};
    if (Object.keys(profileMaps.deployTime).length > 0) {
      vendEnvironment.PROFILE_SECRETS = Stack.of(this).toJsonString(profileMaps.deployTime);
      estimates.PROFILE_SECRETS = estimateProfileMapSize(profileMaps.deployTime);
    }
    checkEnvironmentSize('vend', estimateEnvironmentSize(vendEnvironment, estimates));
    checkEnvironmentSize('release', estimateEnvironmentSize(common));

    const vend = new NodeFunction(this, 'Vend', {
      entry: 'functions/handlers/vend.ts',
      description: 'CRM.COM token vendor: vends session tokens (API Gateway and direct invoke)',
      environment: vendEnvironment,
      timeout: Duration.seconds(vendTimeout),
      memorySize: props.vendMemorySize ?? 512,
      logRetention,
      tracing,
      runtime: props.runtime,
      // The literal ARNs live in the code, not the 4 KB environment (100+ profiles must fit).
      define: { __PROFILE_SECRETS__: JSON.stringify(JSON.stringify(profileMaps.bundled)) },
    });
    this.vendFunction = vend.function;
    Grant.addToPrincipal({
      grantee: vend.function,
      actions: VEND_TABLE_ACTIONS,
      resourceArns: [this.table.tableArn],
    });
    this.table.encryptionKey?.grantEncryptDecrypt(vend.function);
    // Only the vend role may read the credentials (KMS decrypt comes along for keyed secrets).
    for (const secret of Object.values(props.profiles)) secret.grantRead(vend.function);

    for (const name of this.profileNames) {
      this.aliases.set(
        name,
        new Alias(this, `Profile-${name}`, {
          aliasName: profileAliasName(name),
          version: vend.function.currentVersion,
          description: `Serves only the ${name} profile`,
        }),
      );
    }

    const release = new NodeFunction(this, 'Release', {
      entry: 'functions/handlers/release.ts',
      description: 'CRM.COM token vendor: releases tokens that are due (scheduled)',
      environment: common,
      timeout: Duration.seconds(RELEASE_TIMEOUT_SECONDS),
      memorySize: props.releaseMemorySize ?? 256,
      logRetention,
      tracing,
      runtime: props.runtime,
      reservedConcurrentExecutions: props.releaseReservedConcurrency,
    });
    this.releaseFunction = release.function;
    Grant.addToPrincipal({
      grantee: release.function,
      actions: RELEASE_TABLE_ACTIONS,
      resourceArns: [this.table.tableArn, `${this.table.tableArn}/index/${DUE_INDEX_NAME}`],
    });
    this.table.encryptionKey?.grantEncryptDecrypt(release.function);

    this.deadLetterQueue = new Queue(this, 'ReleaseDeadLetters', {
      // SSE-SQS: EventBridge cannot send to a queue encrypted with the AWS managed KMS key.
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    const maxEventAge = Duration.seconds(releaseMaxEventAgeSeconds(this.settings));
    // A failed run is retried by the next scheduled one (claims expire), not by Lambda, so runs
    // do not pile up; failures land in the dead-letter queue, which is alarmed.
    release.function.configureAsyncInvoke({
      retryAttempts: 0,
      maxEventAge,
      onFailure: new SqsDestination(this.deadLetterQueue),
    });
    this.schedule = new Rule(this, 'ReleaseSchedule', {
      description: 'Runs the CRM.COM token release job',
      schedule: Schedule.rate(Duration.minutes(this.settings.releaseIntervalSeconds / 60)),
      targets: [
        new LambdaFunction(release.function, {
          event: RuleTargetInput.fromObject({}),
          retryAttempts: 2,
          maxEventAge,
          deadLetterQueue: this.deadLetterQueue,
        }),
      ],
    });

    const api = new TokenVendorApi(this, 'Http', {
      handler: vend.function,
      stageName: this.stageName,
      rateLimit: props.apiRateLimit ?? 50,
      burstLimit: props.apiBurstLimit ?? 100,
      tracing,
      logRetention,
    });
    this.api = api.api;

    const monitoring = new TokenVendorMonitoring(this, 'Monitoring', {
      vendFunction: vend.function,
      releaseFunction: release.function,
      api: this.api,
      deadLetterQueue: this.deadLetterQueue,
      releaseIntervalSeconds: this.settings.releaseIntervalSeconds,
      alarmTopic: props.alarmTopic,
    });
    this.alarms = monitoring.alarms;
    this.dashboard = monitoring.dashboard;

    this.acknowledgeNagRules(api, vend, release, tracing);
  }

  /** The alias of the vend function that serves only `profile`. */
  profileAlias(profile: string): IAlias {
    const alias = this.aliases.get(profile);
    if (!alias) throw unknownProfile(profile, this.profileNames);
    return alias;
  }

  /**
   * Lets `grantee` get tokens of the named profiles (all when omitted): `lambda:InvokeFunction` on
   * those profiles' aliases (the function and all its aliases for all profiles) and
   * `execute-api:Invoke` on their token paths. Never the release function, never health.
   */
  grantVend(grantee: IGrantable, options: GrantVendOptions = {}): Grant {
    const stage = this.stageName;
    const tokenPaths = (profile: string) => [
      this.api.arnForExecuteApi('GET', `${TOKEN_PATH}/${profile}`, stage),
      this.api.arnForExecuteApi('POST', `${TOKEN_PATH}/${profile}/invalidate`, stage),
    ];
    const grant = (actions: string[], resourceArns: string[]) =>
      Grant.addToPrincipal({ grantee, actions, resourceArns });
    if (options.profiles === undefined) {
      const fn = this.vendFunction.functionArn;
      return grant(['lambda:InvokeFunction'], [fn, `${fn}:*`]).combine(
        grant(['execute-api:Invoke'], tokenPaths('*')),
      );
    }
    const names = [...new Set(options.profiles)];
    if (names.length === 0) throw new Error('TokenVendor.grantVend: profiles is empty');
    const aliases = names.map((name) => this.profileAlias(name));
    // One statement per profile: IAM cannot split one statement's resources over policies, while
    // CDK merges small statements and moves what overflows into managed policies.
    return names
      .map((name, i) =>
        grant(['lambda:InvokeFunction'], [aliases[i]!.functionArn]).combine(
          grant(['execute-api:Invoke'], tokenPaths(name)),
        ),
      )
      .reduce((all, next) => all.combine(next));
  }

  private createTable(props: TokenVendorProps): Table {
    const table = new Table(this, 'Table', {
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      timeToLiveAttribute: 'ttl',
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: props.tableEncryptionKey
        ? TableEncryption.CUSTOMER_MANAGED
        : TableEncryption.DEFAULT,
      encryptionKey: props.tableEncryptionKey,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    // Sparse: only token records pending release carry `dueShard`/`dueAt` (invariant 9).
    table.addGlobalSecondaryIndex({
      indexName: DUE_INDEX_NAME,
      partitionKey: { name: 'dueShard', type: AttributeType.STRING },
      sortKey: { name: 'dueAt', type: AttributeType.NUMBER },
      projectionType: ProjectionType.ALL,
    });
    return table;
  }

  private acknowledgeNagRules(
    api: TokenVendorApi,
    vend: NodeFunction,
    release: NodeFunction,
    tracing: boolean,
  ): void {
    Validations.of(api).acknowledge(
      {
        id: 'AwsSolutions-APIG2',
        reason:
          'The vend handler validates every request itself so that errors keep the CONTRACT §4 shape and order.',
      },
      {
        id: 'AwsSolutions-APIG3',
        reason:
          'Every method requires SigV4 (IAM) and the stage is throttled; attach a WAF web ACL per deployment if wanted.',
      },
      {
        id: 'AwsSolutions-APIG6',
        reason:
          'Access logs are on; execution logging needs the account-wide API Gateway CloudWatch role, which this stack does not own.',
      },
      {
        id: 'AwsSolutions-COG4',
        reason: 'Callers are AWS principals: every method uses IAM authorization, not Cognito.',
      },
    );
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself the dead-letter queue of the release schedule.',
    });
    for (const fn of [vend, release]) {
      Validations.of(fn).acknowledge({
        id: 'AwsSolutions-L1',
        reason:
          'Node.js 22 is the runtime the bundle targets and the code is tested on; newer ones via the runtime prop.',
      });
      if (tracing) {
        // X-Ray's PutTraceSegments/PutTelemetryRecords have no resource-level permissions.
        Validations.of(fn.role).acknowledge({
          id: 'AwsSolutions-IAM5[Resource::*]',
          reason: 'X-Ray trace upload supports no resource-level permissions; AWS requires "*".',
        });
      }
    }
  }
}

function resolveSettings(input: TokenVendorSettings = {}): Settings {
  const environment: SettingsInput = {};
  for (const [key, name] of Object.entries(SETTING_VARIABLES)) {
    const value = input[key as keyof TokenVendorSettings];
    if (value !== undefined) environment[name] = String(value);
  }
  return parseSettings(environment, 'deployed');
}

/** Every setting as the environment variable of CONTRACT §3, resolved values included. */
function settingsEnvironment(settings: Settings): Record<string, string> {
  return Object.fromEntries(
    Object.entries(SETTING_VARIABLES).map(([key, name]) => [
      name,
      String(settings[key as keyof Settings]),
    ]),
  );
}

function checkBaseUrl(url: string): void {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')) {
    throw new Error(`TokenVendor: defaultBaseUrl ${JSON.stringify(url)} is not an http(s) URL`);
  }
}

function unknownProfile(profile: string, known: readonly string[]): Error {
  validateProfileName(profile);
  return new Error(
    `TokenVendor: unknown profile ${JSON.stringify(profile)}; configured profiles: ${known.join(', ') || '(none)'}`,
  );
}
