import { RemovalPolicy } from 'aws-cdk-lib';
import {
  AccessLogField,
  AccessLogFormat,
  AuthorizationType,
  EndpointType,
  type IResource,
  LambdaIntegration,
  LogGroupLogDestination,
  MethodLoggingLevel,
  ResponseType,
  RestApi,
} from 'aws-cdk-lib/aws-apigateway';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

export interface TokenVendorApiProps {
  readonly handler: IFunction;
  readonly stageName: string;
  readonly rateLimit: number;
  readonly burstLimit: number;
  readonly tracing: boolean;
  readonly logRetention: RetentionDays;
}

/** Error codes of CONTRACT §4 that API Gateway's own answers map to. */
type GatewayErrorCode =
  | 'FORBIDDEN'
  | 'THROTTLED'
  | 'NOT_FOUND'
  | 'INVALID_REQUEST'
  | 'PAYLOAD_TOO_LARGE'
  | 'INTERNAL';

interface GatewayAnswer {
  readonly type: ResponseType;
  readonly code: GatewayErrorCode;
  readonly retryable: boolean;
}

/**
 * API Gateway's own answers (before the request reaches the function), in the error shape of
 * CONTRACT §4. The specific types override the two defaults; the status code stays API Gateway's.
 */
const GATEWAY_ANSWERS: readonly GatewayAnswer[] = [
  { type: ResponseType.DEFAULT_4XX, code: 'INVALID_REQUEST', retryable: false },
  { type: ResponseType.DEFAULT_5XX, code: 'INTERNAL', retryable: true },
  { type: ResponseType.ACCESS_DENIED, code: 'FORBIDDEN', retryable: false },
  { type: ResponseType.MISSING_AUTHENTICATION_TOKEN, code: 'FORBIDDEN', retryable: false },
  { type: ResponseType.INVALID_SIGNATURE, code: 'FORBIDDEN', retryable: false },
  { type: ResponseType.EXPIRED_TOKEN, code: 'FORBIDDEN', retryable: false },
  { type: ResponseType.UNAUTHORIZED, code: 'FORBIDDEN', retryable: false },
  { type: ResponseType.INVALID_API_KEY, code: 'FORBIDDEN', retryable: false },
  { type: ResponseType.WAF_FILTERED, code: 'FORBIDDEN', retryable: false },
  { type: ResponseType.THROTTLED, code: 'THROTTLED', retryable: true },
  { type: ResponseType.QUOTA_EXCEEDED, code: 'THROTTLED', retryable: true },
  { type: ResponseType.RESOURCE_NOT_FOUND, code: 'NOT_FOUND', retryable: false },
  { type: ResponseType.REQUEST_TOO_LARGE, code: 'PAYLOAD_TOO_LARGE', retryable: false },
  { type: ResponseType.BAD_REQUEST_BODY, code: 'INVALID_REQUEST', retryable: false },
  { type: ResponseType.BAD_REQUEST_PARAMETERS, code: 'INVALID_REQUEST', retryable: false },
  { type: ResponseType.UNSUPPORTED_MEDIA_TYPE, code: 'INVALID_REQUEST', retryable: false },
  { type: ResponseType.INTEGRATION_FAILURE, code: 'INTERNAL', retryable: true },
  { type: ResponseType.INTEGRATION_TIMEOUT, code: 'INTERNAL', retryable: true },
  { type: ResponseType.API_CONFIGURATION_ERROR, code: 'INTERNAL', retryable: false },
  { type: ResponseType.AUTHORIZER_FAILURE, code: 'INTERNAL', retryable: false },
  { type: ResponseType.AUTHORIZER_CONFIGURATION_ERROR, code: 'INTERNAL', retryable: false },
];

/** Paths the vend function serves (CONTRACT §4), relative to the stage. */
export const TOKEN_PATH = '/v1/tokens';
export const HEALTH_PATH = '/v1/health';

/**
 * The REST API in front of the vend function. Every resource has an `ANY` method and a
 * `{proxy+}` child routed to the function, so unknown paths and methods reach the handler (which
 * answers 404/405) instead of API Gateway's MISSING_AUTHENTICATION_TOKEN. Every method uses IAM.
 */
export class TokenVendorApi extends Construct {
  readonly api: RestApi;
  readonly accessLogs: LogGroup;

  constructor(scope: Construct, id: string, props: TokenVendorApiProps) {
    super(scope, id);
    this.accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.api = new RestApi(this, 'Api', {
      description: 'CRM.COM token vendor: vends CRM.COM session tokens to IAM principals',
      endpointConfiguration: { types: [EndpointType.REGIONAL] },
      // API Gateway's account-wide CloudWatch role is the platform's business, not this stack's.
      cloudWatchRole: false,
      failOnWarnings: true,
      defaultMethodOptions: { authorizationType: AuthorizationType.IAM },
      // Proxy integration on the unqualified function; one permission for the whole API instead
      // of two per method keeps the function's resource policy small.
      defaultIntegration: new LambdaIntegration(props.handler, {
        proxy: true,
        scopePermissionToMethod: false,
      }),
      deployOptions: {
        stageName: props.stageName,
        throttlingRateLimit: props.rateLimit,
        throttlingBurstLimit: props.burstLimit,
        tracingEnabled: props.tracing,
        loggingLevel: MethodLoggingLevel.OFF,
        dataTraceEnabled: false,
        metricsEnabled: true,
        accessLogDestination: new LogGroupLogDestination(this.accessLogs),
        accessLogFormat: AccessLogFormat.custom(
          JSON.stringify({
            requestId: AccessLogField.contextRequestId(),
            extendedRequestId: AccessLogField.contextExtendedRequestId(),
            requestTime: AccessLogField.contextRequestTime(),
            httpMethod: AccessLogField.contextHttpMethod(),
            path: AccessLogField.contextPath(),
            resourcePath: AccessLogField.contextResourcePath(),
            status: AccessLogField.contextStatus(),
            responseLength: AccessLogField.contextResponseLength(),
            responseLatency: AccessLogField.contextResponseLatency(),
            integrationLatency: AccessLogField.contextIntegrationLatency(),
            integrationStatus: AccessLogField.contextIntegrationStatus(),
            errorResponseType: AccessLogField.contextErrorResponseType(),
            errorMessage: AccessLogField.contextErrorMessage(),
            sourceIp: AccessLogField.contextIdentitySourceIp(),
            caller: AccessLogField.contextIdentityCaller(),
            userArn: AccessLogField.contextIdentityUserArn(),
            protocol: AccessLogField.contextProtocol(),
          }),
        ),
      },
    });

    const root = this.api.root;
    const v1 = root.addResource('v1');
    const tokens = v1.addResource('tokens');
    const profile = tokens.addResource('{profile}');
    const invalidate = profile.addResource('invalidate');
    const health = v1.addResource('health');
    profile.addMethod('GET');
    invalidate.addMethod('POST');
    health.addMethod('GET');
    for (const resource of [root, v1, tokens, profile, invalidate, health]) {
      resource.addMethod('ANY');
    }
    // Each resource with children gets its own `{proxy+}`, so routing never depends on whether API
    // Gateway falls back to a parent's. `tokens` cannot (its child `{profile}` is a variable), and
    // needs none: `{profile}` matches any next segment and has its own `{proxy+}`.
    for (const resource of [root, v1, profile, invalidate, health] as IResource[]) {
      resource.addProxy({ anyMethod: true });
    }

    for (const answer of GATEWAY_ANSWERS) {
      this.api.addGatewayResponse(`Gateway${answer.type.responseType}`, {
        type: answer.type,
        responseHeaders: {
          'Content-Type': "'application/json'",
          'Cache-Control': "'no-store'",
        },
        templates: {
          'application/json': `{"error":{"code":"${answer.code}","message":$context.error.messageString,"retryable":${answer.retryable}}}`,
        },
      });
    }
  }
}
