import { connect } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimulatorFault } from '../../functions/local/crm-simulator.js';
import {
  directPayloadProperty,
  errorBodyProblems,
  httpAnswerProblems,
  httpRequest,
  restEventProperty,
} from '../support/entry-points.js';
import { startTestService, type TestService } from '../support/local-service.js';

// Long fuzz runs of both entry points of the vend function and of the local server
// (`npm run test:fuzz`); the short runs of the same properties are part of `npm test`.
// FUZZ_RUNS scales every run (default 1: about a minute on two cores).

const SCALE = Number(process.env.FUZZ_RUNS ?? '1');
const runs = (n: number) => Math.max(1, Math.round(n * SCALE));

describe('vend handler, fuzzed (fake clock, in-memory store)', () => {
  it('answers any API Gateway-like event in the contract shape', async () => {
    await fc.assert(restEventProperty(), { numRuns: runs(20_000) });
  });

  it('answers any direct-invoke payload with a token or error object', async () => {
    await fc.assert(directPayloadProperty(), { numRuns: runs(12_000) });
  });
});

describe('local server, fuzzed over HTTP', () => {
  const SECRETS = ['S3cret-in-file'];
  let vendor: TestService;

  beforeAll(async () => {
    // No backoffs, so that every forced login meets the fault set for it.
    vendor = await startTestService(
      { AUTH_FAILURE_BACKOFF_SECONDS: '0', UNAVAILABLE_BACKOFF_SECONDS: '0' },
      {
        profiles: {
          a: { username: 'demo', password: 'demo', organisation: 'DEMO' },
          other: { username: 'demo', password: SECRETS[0] }, // MISCONFIGURED: no organisation
        },
      },
    );
  });

  afterAll(async () => {
    await vendor?.stop();
  });

  const health = async () => (await vendor.request('/v1/health', { timeoutMs: 3000 })).status;

  it('answers random requests in the contract shape, ten at a time, and keeps serving', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(httpRequest, { minLength: 1, maxLength: 10 }), async (batch) => {
        const answers = await Promise.all(batch.map((r) => vendor.request(r.path, r)));
        const tokens = vendor.simulator.issuedTokens();
        answers.forEach((answer, i) => {
          const problems = httpAnswerProblems(
            batch[i] as { method: string; path: string },
            answer,
            SECRETS,
            tokens,
          );
          if (problems.length > 0) throw new Error(`${answer.status}: ${problems.join('; ')}`);
        });
      }),
      { numRuns: runs(1000) },
    );
    expect(await health()).toBe(200);
  });

  it('answers in the contract shape while CRM.COM fails at random', async () => {
    const fault = fc.oneof(
      {
        weight: 8,
        arbitrary: fc.constantFrom(
          'none',
          'reject',
          'unavailable',
          'throttle',
          'server-error',
          'reset',
          'non-json',
        ),
      },
      { weight: 1, arbitrary: fc.constant('hang') },
    );
    const check = (
      request: { method: string; path: string },
      answer: Awaited<ReturnType<TestService['request']>>,
    ) => {
      const problems = httpAnswerProblems(
        request,
        answer,
        SECRETS,
        vendor.simulator.issuedTokens(),
      );
      if (problems.length > 0) throw new Error(`${answer.status}: ${problems.join('; ')}`);
    };
    await fc.assert(
      fc.asyncProperty(fault, httpRequest, async (f, request) => {
        // Invalidating the current token forces a login, which meets the fault.
        const current = await vendor.request('/v1/tokens/a');
        check({ method: 'GET', path: '/v1/tokens/a' }, current);
        const token = current.status === 200 ? current.json<{ token: string }>().token : 'none';
        vendor.simulator.setFaults({ login: f as SimulatorFault, count: 1 });
        const invalidate = {
          method: 'POST',
          path: '/v1/tokens/a/invalidate',
          body: JSON.stringify({ token }),
        };
        check(invalidate, await vendor.request(invalidate.path, invalidate));
        check(request, await vendor.request(request.path, request));
      }),
      { numRuns: runs(300) },
    );
    vendor.simulator.setFaults({ login: 'none' });
    expect(await health()).toBe(200);
  });

  it('survives random bytes on raw sockets, answering parse errors in the contract shape', async () => {
    const prefix = fc.constantFrom(
      '',
      'GET ',
      'POST /v1/tokens/default/invalidate HTTP/1.1\r\n',
      'GET /v1/health HTTP/1.1\r\nHost: x\r\n',
    );
    const bytes = fc.uint8Array({ maxLength: 300 });
    const cut = fc.boolean(); // hang up at once rather than wait for an answer
    await fc.assert(
      fc.asyncProperty(prefix, bytes, cut, async (p, b, hangUp) => {
        const answer = await rawExchange(
          vendor.port,
          Buffer.concat([Buffer.from(p), b]),
          hangUp ? 5 : 100,
        );
        // Whatever came back is HTTP; a 400 from the parser carries the contract's error shape.
        if (answer.startsWith('HTTP/1.1 400 ')) {
          const body = answer.slice(answer.indexOf('\r\n\r\n') + 4);
          const problems = errorBodyProblems(JSON.parse(body));
          if (problems.length > 0) throw new Error(problems.join('; '));
        } else if (answer !== '' && !/^HTTP\/1\.1 \d{3} /.test(answer)) {
          throw new Error(`not HTTP: ${JSON.stringify(answer.slice(0, 40))}`);
        }
      }),
      { numRuns: runs(400) },
    );
    expect(await health()).toBe(200);
  });
});

/** Writes `data`, collects the answer for `waitMs` (or until the server closes), hangs up. */
function rawExchange(port: number, data: Buffer, waitMs: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    const timer = setTimeout(done, waitMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('close', done);
    socket.on('error', done);
    socket.write(data);
  });
}
