import { Duration } from 'aws-cdk-lib';
import type { RestApi } from 'aws-cdk-lib/aws-apigateway';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  MathExpression,
  Metric,
  SingleValueWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRIC, METRICS_NAMESPACE, SERVICE_NAME } from './metric-names.js';

export interface TokenVendorMonitoringProps {
  readonly vendFunction: IFunction;
  readonly releaseFunction: IFunction;
  readonly api: RestApi;
  readonly deadLetterQueue: IQueue;
  readonly releaseIntervalSeconds: number;
  readonly alarmTopic?: ITopic;
}

interface AlarmSpec {
  readonly id: string;
  readonly metric: IMetric;
  readonly threshold: number;
  readonly evaluationPeriods?: number;
  readonly description: string;
}

const FIVE_MINUTES = Duration.minutes(5);

/** The service's alarms (to an optional SNS topic) and its CloudWatch dashboard. */
export class TokenVendorMonitoring extends Construct {
  readonly alarms: Alarm[] = [];
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: TokenVendorMonitoringProps) {
    super(scope, id);
    const vend = props.vendFunction;
    const release = props.releaseFunction;
    // A release metric is emitted once per run: look at windows that hold at least one run.
    const releasePeriod = Duration.seconds(Math.max(300, props.releaseIntervalSeconds));
    const service = (name: string, statistic = 'Sum', period = FIVE_MINUTES) =>
      new Metric({
        namespace: METRICS_NAMESPACE,
        metricName: name,
        dimensionsMap: { service: SERVICE_NAME },
        statistic,
        period,
      });

    const specs: AlarmSpec[] = [
      {
        id: 'ReleaseFailures',
        metric: service(METRIC.releaseFailures, 'Sum', releasePeriod),
        threshold: 1,
        evaluationPeriods: 2,
        description: 'Release runs failed to release due tokens in two windows in a row.',
      },
      {
        id: 'ReleasesAbandoned',
        metric: service(METRIC.releasesAbandoned, 'Sum', releasePeriod),
        threshold: 1,
        description: 'Tokens expired before they could be released (sessions left open).',
      },
      {
        id: 'VendErrors',
        metric: service(METRIC.vendErrors),
        threshold: 5,
        description: 'The vend function answered 5 or more errors in 5 minutes.',
      },
      {
        id: 'LoginFailuresRejected',
        metric: service(METRIC.loginFailuresRejected),
        threshold: 1,
        description: 'CRM.COM rejected a profile\u2019s credentials: check the secret (rotation?).',
      },
      {
        id: 'LoginFailuresUnavailable',
        metric: service(METRIC.loginFailuresUnavailable),
        threshold: 3,
        description: 'CRM.COM was unavailable for 3 or more logins in 5 minutes.',
      },
      {
        id: 'VendFunctionErrors',
        metric: vend.metricErrors({ period: FIVE_MINUTES }),
        threshold: 1,
        description: 'The vend function crashed or timed out.',
      },
      {
        id: 'VendFunctionThrottles',
        metric: vend.metricThrottles({ period: FIVE_MINUTES }),
        threshold: 1,
        description: 'The vend function was throttled.',
      },
      {
        id: 'ReleaseFunctionErrors',
        metric: release.metricErrors({ period: releasePeriod }),
        threshold: 1,
        description: 'A release run crashed or timed out.',
      },
      {
        id: 'ReleaseFunctionThrottles',
        metric: release.metricThrottles({ period: releasePeriod }),
        threshold: 1,
        description: 'A release run was throttled.',
      },
      {
        id: 'Api5xx',
        metric: props.api.metricServerError({ period: FIVE_MINUTES, statistic: 'Sum' }),
        threshold: 5,
        description: 'The REST API answered 5 or more 5XX responses in 5 minutes.',
      },
      {
        id: 'ReleaseDeadLetters',
        metric: props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
          period: FIVE_MINUTES,
          statistic: 'Maximum',
        }),
        threshold: 1,
        description:
          'Release runs were not delivered or failed (messages in the dead-letter queue).',
      },
    ];
    const action = props.alarmTopic ? new SnsAction(props.alarmTopic) : undefined;
    for (const spec of specs) {
      const alarm = new Alarm(this, spec.id, {
        metric: spec.metric,
        threshold: spec.threshold,
        evaluationPeriods: spec.evaluationPeriods ?? 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        alarmDescription: spec.description,
      });
      if (action) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
      this.alarms.push(alarm);
    }

    const widget = (title: string, left: IMetric[], stacked = false, right: IMetric[] = []) =>
      new GraphWidget({ title, left, right, stacked, width: 12, height: 6 });
    this.dashboard = new Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(3) });
    this.dashboard.addWidgets(
      new AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24, height: 3 }),
    );
    this.dashboard.addWidgets(
      widget(
        'Vends by layer',
        [
          service(METRIC.vendMemoryHit, 'Sum', Duration.minutes(1)),
          service(METRIC.vendTableHit, 'Sum', Duration.minutes(1)),
          service(METRIC.vendLogin, 'Sum', Duration.minutes(1)),
        ],
        true,
      ),
      widget('Vend errors', [
        service(METRIC.vendErrors, 'Sum', Duration.minutes(1)),
        props.api.metricClientError({ period: Duration.minutes(1), statistic: 'Sum' }),
        props.api.metricServerError({ period: Duration.minutes(1), statistic: 'Sum' }),
      ]),
    );
    this.dashboard.addWidgets(
      widget('Logins', [
        service(METRIC.logins, 'Sum', Duration.minutes(1)),
        service(METRIC.loginFailuresRejected, 'Sum', Duration.minutes(1)),
        service(METRIC.loginFailuresUnavailable, 'Sum', Duration.minutes(1)),
        service(METRIC.leaseWaits, 'Sum', Duration.minutes(1)),
        service(METRIC.leaseTakeovers, 'Sum', Duration.minutes(1)),
      ]),
      widget('Latency (ms)', [
        service(METRIC.loginLatency, 'p50', Duration.minutes(1)),
        service(METRIC.loginLatency, 'p99', Duration.minutes(1)),
        vend.metricDuration({ period: Duration.minutes(1), statistic: 'p99' }),
        props.api.metricLatency({ period: Duration.minutes(1), statistic: 'p99' }),
      ]),
    );
    this.dashboard.addWidgets(
      widget(
        'Releases',
        [
          service(METRIC.releasesReleased, 'Sum', releasePeriod),
          service(METRIC.releasesAlreadyInvalid, 'Sum', releasePeriod),
          service(METRIC.releasesUnsupported, 'Sum', releasePeriod),
          service(METRIC.releasesRetry, 'Sum', releasePeriod),
          service(METRIC.releasesAbandoned, 'Sum', releasePeriod),
          service(METRIC.releaseFailures, 'Sum', releasePeriod),
          service(METRIC.leakedTokenReleases, 'Sum', releasePeriod),
        ],
        false,
        [service(METRIC.dueTokens, 'Maximum', releasePeriod)],
      ),
      widget('Functions', [
        vend.metricErrors({ period: FIVE_MINUTES }),
        vend.metricThrottles({ period: FIVE_MINUTES }),
        release.metricErrors({ period: FIVE_MINUTES }),
        release.metricThrottles({ period: FIVE_MINUTES }),
        release.metricDuration({ period: FIVE_MINUTES, statistic: 'Maximum' }),
      ]),
    );
    this.dashboard.addWidgets(
      new SingleValueWidget({
        title: 'Memory + table hit ratio (%)',
        metrics: [
          new MathExpression({
            expression: '100 * (memory + table) / (memory + table + login)',
            usingMetrics: {
              memory: service(METRIC.vendMemoryHit, 'Sum', Duration.hours(1)),
              table: service(METRIC.vendTableHit, 'Sum', Duration.hours(1)),
              login: service(METRIC.vendLogin, 'Sum', Duration.hours(1)),
            },
            label: 'cache hit %',
            period: Duration.hours(1),
          }),
        ],
        width: 12,
        height: 4,
      }),
      new SingleValueWidget({
        title: 'Release dead letters',
        metrics: [
          props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
            period: FIVE_MINUTES,
            statistic: 'Maximum',
          }),
        ],
        width: 12,
        height: 4,
      }),
    );
  }
}
