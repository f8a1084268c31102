import { Annotations, CfnOutput, Duration, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { type ITopic, Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';
import { parseSettings } from '../../functions/core/settings.js';
import { entryExists, NodeFunction } from '../constructs/node-function.js';
import { validateProfileName } from '../constructs/profile-secrets.js';
import { profileAliasName, TokenVendor } from '../constructs/token-vendor.js';
import {
  booleanFromContext,
  logLevelFromContext,
  profilesFromContext,
  settingsFromContext,
  stringFromContext,
} from './stack-context.js';

/** Entry of the optional example consumer (`-c exampleConsumer=true`). */
export const EXAMPLE_CONSUMER_ENTRY = 'functions/example-consumer/handler.ts';

/**
 * The deployable token vendor, configured by context (docs/deploy.md): `profiles`, `settings` or
 * individual setting names, `defaultBaseUrl`, `alarmEmail`, `alarmTopicArn`, `logLevel`,
 * `tracing`, `stageName`, `exampleConsumer`. Environment-agnostic; no lookups.
 */
export class TokenVendorStack extends Stack {
  readonly vendor: TokenVendor;

  constructor(scope: Construct, id: string, props: StackProps = {}) {
    super(scope, id, {
      description: 'CRM.COM token vendor: holds CRM.COM credentials, vends session tokens',
      ...props,
    });
    const context = (key: string): unknown => this.node.tryGetContext(key);

    const profileArns = profilesFromContext(context('profiles'));
    const profiles = Object.fromEntries(
      Object.entries(profileArns).map(([name, arn]) => {
        validateProfileName(name);
        return [name, TokenVendor.secretFromArn(this, `ProfileSecret-${name}`, arn)];
      }),
    );
    const settings = parseSettings(settingsFromContext(context('settings'), context), 'deployed');

    this.vendor = new TokenVendor(this, 'TokenVendor', {
      profiles,
      settings,
      defaultBaseUrl: stringFromContext('defaultBaseUrl', context('defaultBaseUrl')),
      logLevel: logLevelFromContext(context('logLevel') ?? context('LOG_LEVEL')),
      tracing: booleanFromContext('tracing', context('tracing')),
      stageName: stringFromContext('stageName', context('stageName')),
      alarmTopic: this.alarmTopic(
        stringFromContext('alarmTopicArn', context('alarmTopicArn')),
        stringFromContext('alarmEmail', context('alarmEmail')),
      ),
    });

    if (booleanFromContext('exampleConsumer', context('exampleConsumer'))) {
      this.addExampleConsumer();
    }

    const vendor = this.vendor;
    new CfnOutput(this, 'ApiUrl', { value: vendor.api.url });
    new CfnOutput(this, 'VendFunctionName', { value: vendor.vendFunction.functionName });
    new CfnOutput(this, 'VendFunctionArn', { value: vendor.vendFunction.functionArn });
    new CfnOutput(this, 'ReleaseFunctionName', { value: vendor.releaseFunction.functionName });
    new CfnOutput(this, 'TableName', { value: vendor.table.tableName });
    new CfnOutput(this, 'ReleaseDeadLetterQueueUrl', { value: vendor.deadLetterQueue.queueUrl });
    new CfnOutput(this, 'DashboardName', { value: vendor.dashboard.dashboardName });
  }

  private alarmTopic(topicArn?: string, email?: string): ITopic | undefined {
    let topic: ITopic | undefined;
    if (topicArn !== undefined) {
      topic = Topic.fromTopicArn(this, 'AlarmTopic', topicArn);
    } else if (email !== undefined) {
      const created = new Topic(this, 'AlarmTopic', {
        displayName: 'CRM.COM token vendor alarms',
        enforceSSL: true,
      });
      Validations.of(created).acknowledge({
        id: 'AwsSolutions-SNS2',
        reason:
          'Alarm notifications carry no secrets, and CloudWatch cannot publish to a topic under the AWS managed key; pass alarmTopicArn for a topic with your own key.',
      });
      topic = created;
    }
    if (topic && email !== undefined) {
      if (!/^[^@\s]+@[^@\s]+$/.test(email)) {
        throw new Error(`context alarmEmail ${JSON.stringify(email)} is not an e-mail address`);
      }
      topic.addSubscription(new EmailSubscription(email));
    }
    return topic;
  }

  /** A sample Lambda that gets tokens of the first profile through its alias. */
  private addExampleConsumer(): void {
    if (!entryExists(EXAMPLE_CONSUMER_ENTRY)) {
      Annotations.of(this).addInfo(
        `exampleConsumer skipped: ${EXAMPLE_CONSUMER_ENTRY} does not exist in this checkout`,
      );
      return;
    }
    const profile = this.vendor.profileNames[0];
    if (profile === undefined) throw new Error('exampleConsumer needs at least one profile');
    const consumer = new NodeFunction(this, 'ExampleConsumer', {
      entry: EXAMPLE_CONSUMER_ENTRY,
      description: `Example consumer of the CRM.COM token vendor (${profileAliasName(profile)})`,
      environment: {
        VENDOR_FUNCTION_NAME: this.vendor.vendFunction.functionName,
        VENDOR_PROFILE: profile,
        NODE_OPTIONS: '--enable-source-maps',
      },
      timeout: Duration.seconds(30),
      memorySize: 256,
      logRetention: RetentionDays.ONE_MONTH,
      tracing: false,
    });
    this.vendor.grantVend(consumer.function, { profiles: [profile] });
    Validations.of(consumer).acknowledge({
      id: 'AwsSolutions-L1',
      reason: 'Same runtime as the vendor functions (Node.js 22, what the code is tested on).',
    });
  }
}
