import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, SourceMapMode } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/** Root of the repository: entries, `package-lock.json` and `tsconfig.json` live there. */
export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Absolute path of a file given relative to the repository root. */
export function projectPath(relative: string): string {
  return join(PROJECT_ROOT, relative);
}

/** Whether a Lambda entry file exists (used to skip optional functions). */
export function entryExists(relative: string): boolean {
  return existsSync(projectPath(relative));
}

/** Runtime of every function; the bundle targets the same Node.js version. */
export const DEFAULT_RUNTIME = Runtime.NODEJS_22_X;

export interface NodeFunctionProps {
  /** Entry file relative to the repository root; it exports `handler`. */
  readonly entry: string;
  readonly description: string;
  readonly environment: Record<string, string>;
  readonly timeout: Duration;
  readonly memorySize: number;
  readonly logRetention: RetentionDays;
  readonly tracing: boolean;
  readonly runtime?: Runtime;
  /** esbuild `define` replacements (compile-time constants). */
  readonly define?: Record<string, string>;
  readonly reservedConcurrentExecutions?: number;
}

/**
 * A Node.js function bundled by the local esbuild (no Docker), with its own log group and a role
 * that may write only to that log group (instead of the broad AWSLambdaBasicExecutionRole).
 */
export class NodeFunction extends Construct {
  readonly function: NodejsFunction;
  readonly role: Role;
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: NodeFunctionProps) {
    super(scope, id);
    const runtime = props.runtime ?? DEFAULT_RUNTIME;
    this.logGroup = new LogGroup(this, 'Logs', {
      retention: props.logRetention,
      // Logs hold no state the service needs; they follow the stack's lifecycle.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: props.description,
    });
    this.logGroup.grantWrite(this.role);

    this.function = new NodejsFunction(this, 'Function', {
      entry: projectPath(props.entry),
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: projectPath('package-lock.json'),
      description: props.description,
      runtime,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize,
      timeout: props.timeout,
      role: this.role,
      logGroup: this.logGroup,
      tracing: props.tracing ? Tracing.ACTIVE : Tracing.DISABLED,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      environment: props.environment,
      awsSdkConnectionReuse: false,
      currentVersionOptions: { removalPolicy: RemovalPolicy.DESTROY },
      bundling: {
        forceDockerBundling: false,
        format: OutputFormat.ESM,
        mainFields: ['module', 'main'],
        target: runtime.name.replace(/^nodejs(\d+).*$/, 'node$1'),
        // ESM output: give bundled CommonJS dependencies a working `require`.
        banner:
          "import { createRequire } from 'module'; const require = createRequire(import.meta.url);",
        minify: true,
        sourceMap: true,
        sourceMapMode: SourceMapMode.DEFAULT,
        sourcesContent: false,
        // The runtime ships an AWS SDK v3, but of whatever version Lambda last rolled out; bundling
        // the clients pins the version our tests ran against (package-lock.json), and minified
        // tree-shaken clients cost little cold-start time.
        bundleAwsSDK: true,
        externalModules: [],
        define: props.define,
      },
    });
  }
}
