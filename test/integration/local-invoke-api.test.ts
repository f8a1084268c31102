import { createHash } from 'node:crypto';
import {
  InvalidRequestContentException,
  InvokeCommand,
  type InvokeCommandInput,
  LambdaClient,
  ResourceNotFoundException,
} from '@aws-sdk/client-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LocalServer } from '../../functions/local/local-server.js';
import { startDynalite } from '../support/dynalite.js';
import { errorBodyProblems, leaksIn, tokenBodyProblems } from '../support/entry-points.js';
import { requestTo, startTestService, type TestService } from '../support/local-service.js';

// The local server's Lambda Invoke API (CONTRACT §6), driven by the real AWS SDK LambdaClient.

const VEND_ARN = 'arn:aws:lambda:us-east-1:000000000000:function:vend';
const demo = { username: 'demo', password: 'demo', organisation: 'DEMO' };

function lambdaClient(origin: string): LambdaClient {
  return new LambdaClient({
    endpoint: origin,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
}

function payloadOf(bytes: Uint8Array | undefined): unknown {
  return JSON.parse(Buffer.from(bytes ?? new Uint8Array()).toString('utf8'));
}

let vendor: TestService;
let client: LambdaClient;

async function invoke(input: Omit<InvokeCommandInput, 'Payload'> & { Payload?: unknown }) {
  const { Payload, ...rest } = input;
  const bytes =
    Payload === undefined
      ? undefined
      : Payload instanceof Uint8Array
        ? Payload
        : Buffer.from(JSON.stringify(Payload));
  const output = await client.send(
    new InvokeCommand({ ...rest, ...(bytes ? { Payload: bytes } : {}) }),
  );
  return { output, payload: output.StatusCode === 200 ? payloadOf(output.Payload) : undefined };
}

beforeAll(async () => {
  vendor = await startTestService({}, { profiles: { other: demo, fresh: demo } });
  client = lambdaClient(vendor.url);
});

afterAll(async () => {
  client?.destroy();
  await vendor?.stop();
});

describe('Lambda Invoke API: vend', () => {
  it.each([
    ['by name', { FunctionName: 'vend' }],
    ['by ARN', { FunctionName: VEND_ARN }],
    ['by name and $LATEST', { FunctionName: 'vend', Qualifier: '$LATEST' }],
    ['through its own alias', { FunctionName: 'vend', Qualifier: 'profile-default' }],
    ['through its own alias in the ARN', { FunctionName: `${VEND_ARN}:profile-default` }],
    ['by ARN and Qualifier', { FunctionName: VEND_ARN, Qualifier: 'profile-default' }],
  ])('vends a token %s', async (_label, target) => {
    const { output, payload } = await invoke({
      ...target,
      Payload: { action: 'getToken', profile: 'default', minValiditySeconds: 1 },
    });
    expect(output.StatusCode).toBe(200);
    expect(output.FunctionError).toBeUndefined();
    expect(tokenBodyProblems(payload)).toEqual([]);
    expect(payload).toMatchObject({ profile: 'default' });
    expect(vendor.simulator.issuedTokens()).toContain((payload as { token: string }).token);
  });

  it('invalidates through invoke and returns a different token', async () => {
    const first = await invoke({
      FunctionName: 'vend',
      Payload: { action: 'getToken', profile: 'other' },
    });
    const token = (first.payload as { token: string }).token;
    const second = await invoke({
      FunctionName: 'vend',
      Qualifier: 'profile-other',
      Payload: { action: 'invalidate', profile: 'other', token },
    });
    expect(tokenBodyProblems(second.payload)).toEqual([]);
    expect((second.payload as { token: string }).token).not.toBe(token);
  });

  it.each([
    ['another configured profile', 'other'],
    ['an unknown profile (no probing)', 'zzz'],
  ])('returns FORBIDDEN_PROFILE through profile-default for %s', async (_label, profile) => {
    const { output, payload } = await invoke({
      FunctionName: 'vend',
      Qualifier: 'profile-default',
      Payload: { action: 'getToken', profile },
    });
    expect(output.StatusCode).toBe(200);
    expect(output.FunctionError).toBeUndefined();
    expect(errorBodyProblems(payload)).toEqual([]);
    expect(payload).toMatchObject({ error: { code: 'FORBIDDEN_PROFILE', retryable: false } });
  });

  it('returns FORBIDDEN_PROFILE through the profile-other alias for default', async () => {
    const { payload } = await invoke({
      FunctionName: 'vend',
      Qualifier: 'profile-other',
      Payload: { action: 'getToken', profile: 'default' },
    });
    expect(payload).toMatchObject({ error: { code: 'FORBIDDEN_PROFILE' } });
  });

  it.each([
    ['{}', {}],
    ['null', null],
    ['an array', [1]],
    ['an unknown action', { action: 'health' }],
    ['a polluted payload', JSON.parse('{"__proto__":{"action":"getToken","profile":"default"}}')],
  ])('returns INVALID_REQUEST (not a function error) for %s', async (_label, payload) => {
    const answer = await invoke({ FunctionName: 'vend', Payload: payload });
    expect(answer.output.FunctionError).toBeUndefined();
    expect(answer.payload).toMatchObject({ error: { code: 'INVALID_REQUEST' } });
  });

  it('returns UNKNOWN_PROFILE for an unknown profile without an alias', async () => {
    const { payload } = await invoke({
      FunctionName: 'vend',
      Payload: { action: 'getToken', profile: 'zzz' },
    });
    expect(payload).toMatchObject({ error: { code: 'UNKNOWN_PROFILE', retryable: false } });
  });

  it('returns CRM_UNAVAILABLE as a result, not a function error, when CRM.COM is down', async () => {
    // Prepare: a profile with no token yet, so a login is needed
    vendor.simulator.setFaults({ login: 'unavailable', count: 1 });
    // Act
    const { output, payload } = await invoke({
      FunctionName: 'vend',
      Payload: { action: 'getToken', profile: 'fresh' },
    });
    // Assess
    expect(output.FunctionError).toBeUndefined();
    expect(errorBodyProblems(payload)).toEqual([]);
    expect(payload).toMatchObject({ error: { code: 'CRM_UNAVAILABLE', retryable: true } });
    expect(
      (payload as { error: { retryAfterSeconds?: number } }).error.retryAfterSeconds,
    ).toBeGreaterThanOrEqual(1);
  });

  it('accepts Event and DryRun invocation types', async () => {
    const event = await client.send(
      new InvokeCommand({
        FunctionName: 'vend',
        InvocationType: 'Event',
        Payload: Buffer.from('{"action":"getToken","profile":"default"}'),
      }),
    );
    const dryRun = await client.send(
      new InvokeCommand({ FunctionName: 'vend', InvocationType: 'DryRun' }),
    );
    expect(event.StatusCode).toBe(202);
    expect(dryRun.StatusCode).toBe(204);
  });
});

describe('Lambda Invoke API: ARNs ending in the function name', () => {
  it('serves an ARN whose function name ends in vend or release', async () => {
    const vend = await invoke({
      FunctionName: 'arn:aws:lambda:eu-west-1:123456789012:function:crm-token-vendor-vend',
      Qualifier: 'profile-default',
      Payload: { action: 'getToken', profile: 'default' },
    });
    expect(tokenBodyProblems(vend.payload)).toEqual([]);
    const release = await invoke({
      FunctionName: 'arn:aws:lambda:eu-west-1:123456789012:function:crm-token-vendor-release',
      Payload: {},
    });
    expect(Object.keys(release.payload as object).sort()).toEqual([
      'failed',
      'released',
      'skipped',
    ]);
  });
});

describe('Lambda Invoke API: errors', () => {
  it.each([
    ['an unknown name', { FunctionName: 'nope' }],
    ['an unknown ARN', { FunctionName: 'arn:aws:lambda:us-east-1:000000000000:function:nope' }],
    ['a malformed ARN', { FunctionName: 'arn:aws:lambda:us-east-1:000000000000:layer:vend' }],
    ['a qualifier that is no alias', { FunctionName: 'vend', Qualifier: 'live' }],
    ['an alias of a bad profile name', { FunctionName: 'vend', Qualifier: 'profile-a.b' }],
    ['an alias on release', { FunctionName: 'release', Qualifier: 'profile-default' }],
    [
      'conflicting qualifiers',
      { FunctionName: `${VEND_ARN}:profile-default`, Qualifier: 'profile-other' },
    ],
  ])('throws ResourceNotFoundException for %s', async (_label, target) => {
    await expect(invoke({ ...target, Payload: {} })).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    );
  });

  it.each([
    ['text', Buffer.from('not json')],
    ['truncated JSON', Buffer.from('{"action":')],
    ['binary', Buffer.from([0xff, 0xfe, 0x00, 0x01])],
  ])('throws InvalidRequestContentException for a payload of %s', async (_label, bytes) => {
    await expect(invoke({ FunctionName: 'vend', Payload: bytes })).rejects.toBeInstanceOf(
      InvalidRequestContentException,
    );
  });

  it('answers a payload over 6 MB with 413 RequestTooLargeException', async () => {
    const body = `{"pad":"${'x'.repeat(6 * 1024 * 1024)}"}`;
    const answer = await requestTo(vendor.url, '/2015-03-31/functions/vend/invocations', {
      method: 'POST',
      body,
    });
    expect(answer.status).toBe(413);
    expect(answer.headers['x-amzn-errortype']).toBe('RequestTooLargeException');
  });

  it('answers a raw unknown function with 404 and the ResourceNotFoundException type', async () => {
    const answer = await requestTo(vendor.url, '/2015-03-31/functions/%ZZ/invocations', {
      method: 'POST',
      body: '{}',
    });
    expect(answer.status).toBe(404);
    expect(answer.headers['x-amzn-errortype']).toBe('ResourceNotFoundException');
  });
});

describe('Lambda Invoke API: release', () => {
  it('runs one pass for {} and returns the summary', async () => {
    const { output, payload } = await invoke({ FunctionName: 'release', Payload: {} });
    expect(output.FunctionError).toBeUndefined();
    expect(Object.keys(payload as object).sort()).toEqual(['failed', 'released', 'skipped']);
    for (const value of Object.values(payload as object))
      expect(Number.isInteger(value)).toBe(true);
  });

  it('revokes a profile by ARN: its live token is released at CRM.COM', async () => {
    // Prepare
    const vend = await invoke({
      FunctionName: 'vend',
      Payload: { action: 'getToken', profile: 'other' },
    });
    const token = (vend.payload as { token: string }).token;
    // Act
    const { output, payload } = await invoke({
      FunctionName: 'arn:aws:lambda:us-east-1:000000000000:function:release',
      Payload: { action: 'revokeProfile', profile: 'other' },
    });
    // Assess
    expect(output.FunctionError).toBeUndefined();
    expect((payload as { released: number }).released).toBeGreaterThanOrEqual(1);
    const fingerprint = createHash('sha256').update(token).digest('hex').slice(0, 12);
    const issued = vendor.simulator.stats().issued.find((t) => t.fingerprint === fingerprint);
    expect(issued?.releasedAt).toBeDefined();
    // The next vend logs in: the revoked token is not served from the vend function's memory.
    const next = await invoke({
      FunctionName: 'vend',
      Payload: { action: 'getToken', profile: 'other' },
    });
    expect((next.payload as { token: string }).token).not.toBe(token);
  });
});

describe('Lambda Invoke API: a handler that throws', () => {
  let server: LocalServer | undefined;
  let throwingClient: LambdaClient | undefined;

  afterEach(async () => {
    throwingClient?.destroy();
    await server?.close(100);
    server = undefined;
  });

  it('answers 200, FunctionError Unhandled, with no stack or message of the error', async () => {
    // Prepare: a vend function that throws an error carrying a stack, a path and a secret
    const secret = 'Thr0wn-secret-value';
    const throwing = async () => {
      const error = new TypeError(`boom: password=${secret} at /var/task/index.js:12:3`);
      throw error;
    };
    server = new LocalServer({
      vend: { name: 'vend', handler: throwing, timeoutMs: 1000 },
      release: { name: 'release', handler: throwing, timeoutMs: 1000 },
    });
    const port = await server.listen(0);
    throwingClient = lambdaClient(`http://127.0.0.1:${port}`);
    // Act
    const output = await throwingClient.send(
      new InvokeCommand({ FunctionName: 'vend', Payload: Buffer.from('{}') }),
    );
    // Assess
    expect(output.StatusCode).toBe(200);
    expect(output.FunctionError).toBe('Unhandled');
    const text = Buffer.from(output.Payload ?? new Uint8Array()).toString('utf8');
    expect(Object.keys(JSON.parse(text)).sort()).toEqual(['errorMessage', 'errorType']);
    expect(leaksIn(text, [secret, 'boom'])).toEqual([]);
    expect(text).not.toContain('stack');
  });

  it('answers FunctionError Unhandled when the real release job cannot reach DynamoDB', async () => {
    // Prepare: a service on a DynamoDB that then goes away
    const dynamo = await startDynalite();
    const service = await startTestService({
      DYNAMODB_ENDPOINT: dynamo.endpoint,
      TABLE_NAME: dynamo.tableName,
      RELEASE_INTERVAL_SECONDS: '3',
    });
    throwingClient = lambdaClient(service.url);
    try {
      await dynamo.close();
      // Act
      const output = await throwingClient.send(
        new InvokeCommand({ FunctionName: 'release', Payload: Buffer.from('{}') }),
      );
      // Assess
      expect(output.StatusCode).toBe(200);
      expect(output.FunctionError).toBe('Unhandled');
      const text = Buffer.from(output.Payload ?? new Uint8Array()).toString('utf8');
      expect(leaksIn(text, [dynamo.endpoint])).toEqual([]);
      expect(JSON.parse(text)).toMatchObject({ errorType: 'Error' });
    } finally {
      await service.stop();
    }
  });
});
