import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { invokeResult, sentPayload, vended } from './helpers.js';

const lambda = mockClient(LambdaClient);
let crm: Server;
let crmBaseUrl: string;
const crmTokens: string[] = [];

beforeAll(async () => {
  // A CRM.COM stand-in: t1 is no longer valid, any other token lists two contacts.
  crm = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://placeholder');
    const token = url.searchParams.get('token') ?? '';
    crmTokens.push(token);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify(
        url.pathname !== '/crmapi/rest/v2/contacts/list'
          ? { status: { code: 'NOT_FOUND', message: null } }
          : token === 't1'
            ? { status: { code: 'INVALID_TOKEN', message: 'Token expired' } }
            : { status: { code: 'OK', message: '' }, data: [{ id: 'a' }, { id: 'b' }] },
      ),
    );
  });
  crm.listen(0, '127.0.0.1');
  await once(crm, 'listening');
  crmBaseUrl = `http://127.0.0.1:${(crm.address() as AddressInfo).port}/crmapi/rest/v2/`;
});

afterAll(async () => {
  crm.closeAllConnections();
  crm.close();
  await once(crm, 'close');
  lambda.restore();
});

afterEach(() => {
  vi.unstubAllEnvs();
  vi.resetModules();
  lambda.reset();
  crmTokens.length = 0;
});

async function loadHandler() {
  vi.stubEnv('AWS_REGION', 'us-east-1');
  vi.stubEnv('VENDOR_FUNCTION_NAME', 'vend');
  vi.stubEnv('VENDOR_PROFILE', 'default');
  vi.stubEnv('CRM_BASE_URL', crmBaseUrl);
  return (await import('../../../functions/example-consumer/handler.js')).handler;
}

describe('example consumer', () => {
  it('lists contacts, retrying once with a new token after CRM.COM rejected the first', async () => {
    // Prepare
    lambda
      .on(InvokeCommand)
      .resolvesOnce(invokeResult(vended('t1')))
      .resolves(invokeResult(vended('t2')));
    const handler = await loadHandler();

    // Act
    const summary = await handler();

    // Assess
    expect(summary).toStrictEqual({ profile: 'default', crmStatus: 'OK', contacts: 2 });
    expect(crmTokens).toStrictEqual(['t1', 't2']);
    const calls = lambda.commandCalls(InvokeCommand).map((c) => c.args[0].input);
    expect(calls.map((input) => input.Qualifier)).toStrictEqual([
      'profile-default',
      'profile-default',
    ]);
    expect(calls.map((input) => sentPayload(input.Payload))).toStrictEqual([
      { action: 'getToken', profile: 'default' },
      { action: 'invalidate', profile: 'default', token: 't1' },
    ]);
    expect(JSON.stringify(summary)).not.toContain('t2');
  });

  it('fails at cold start when its environment is incomplete', async () => {
    // Prepare
    vi.stubEnv('VENDOR_FUNCTION_NAME', '');

    // Act & Assess
    await expect(import('../../../functions/example-consumer/handler.js')).rejects.toThrow(
      'VENDOR_FUNCTION_NAME must be set',
    );
  });
});
