import type { Backend } from './fixtures.js';
import { createVendInstance } from './fixtures.js';
import { type LatencySummary, nowMs, summarise } from './stats.js';

export interface HerdResult {
  readonly requests: number;
  readonly instances: number;
  readonly logins: number;
  readonly loginAttempts: number;
  /** Requests answered with an error. */
  readonly failures: number;
  readonly distinctTokens: number;
  readonly latency: LatencySummary;
  readonly wallMs: number;
}

/**
 * 1,000 concurrent requests on a cold profile, spread over 16 vend instances that share only
 * the table (invariant 1): counts the logins CRM.COM saw.
 */
export async function coldHerd(
  backend: Backend,
  options: { requests: number; instances: number; loginDelayMs: number },
): Promise<HerdResult> {
  const instances = Array.from({ length: options.instances }, () => createVendInstance(backend));
  backend.simulator.reset();
  // A real CRM.COM login takes a while: the herd must overlap the holder's login.
  backend.simulator.setFaults({ loginDelayMs: options.loginDelayMs });
  const tokens = new Set<string>();
  let failures = 0;
  const latencies: number[] = [];
  const started = nowMs();
  try {
    await Promise.all(
      Array.from({ length: options.requests }, async (_, i) => {
        const instance = instances[i % instances.length]!;
        const t0 = nowMs();
        const answer = (await instance.handler(
          { action: 'getToken', profile: 'default' },
          instance.context(),
        )) as { token?: unknown };
        latencies.push(nowMs() - t0);
        if (typeof answer.token === 'string') tokens.add(answer.token);
        else failures++;
      }),
    );
  } finally {
    for (const instance of instances) instance.close();
    backend.simulator.setFaults({ loginDelayMs: 0 });
  }
  const wallMs = nowMs() - started;
  const stats = backend.simulator.stats();
  return {
    requests: options.requests,
    instances: options.instances,
    logins: stats.logins,
    loginAttempts: stats.loginAttempts,
    failures,
    distinctTokens: tokens.size,
    latency: summarise(latencies),
    wallMs,
  };
}
