import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { median } from './stats.js';

const run = promisify(execFile);

export interface BundleSide {
  readonly bytes: number;
  readonly sourceMapBytes: number;
  /** Median time to import the bundle in a fresh `node`, ms. */
  readonly importMs: number;
  readonly importSamples: readonly number[];
}

export interface BundleResult {
  readonly vend: BundleSide;
  readonly bare: BundleSide;
  readonly runs: number;
}

const ROOT = new URL('..', import.meta.url);

/** The options the CDK construct (lib/constructs/node-function.ts) gives esbuild. */
function constructOptions(entry: string, outfile: string) {
  return {
    entryPoints: [new URL(entry, ROOT).pathname],
    outfile,
    bundle: true,
    platform: 'node' as const,
    format: 'esm' as const,
    target: 'node22',
    mainFields: ['module', 'main'],
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    banner: {
      js: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);",
    },
    define: {
      __PROFILE_SECRETS__: JSON.stringify(
        JSON.stringify({
          default: 'arn:aws:secretsmanager:us-east-1:000000000000:secret:crm-default-AbCdEf',
        }),
      ),
    },
    logLevel: 'warning' as const,
  };
}

/** The environment the vend function gets from the construct (plus a region, as Lambda sets). */
const FUNCTION_ENV: Record<string, string> = {
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  AWS_REGION: 'us-east-1',
  AWS_LAMBDA_FUNCTION_NAME: 'bench-vend',
  TABLE_NAME: 'crm-token-vendor',
  LOG_LEVEL: 'INFO',
  POWERTOOLS_SERVICE_NAME: 'crm-token-vendor',
  POWERTOOLS_METRICS_NAMESPACE: 'CrmTokenVendor',
  NODE_OPTIONS: '--enable-source-maps',
  // Node 22 (the deployed runtime) gets no SDK end-of-support warning; Node 20 would.
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};

const IMPORT_TIMER = [
  'const { performance } = await import("node:perf_hooks");',
  'const t0 = performance.now();',
  'await import(process.argv[1]);',
  'process.stdout.write(String(performance.now() - t0));',
].join('\n');

async function importMs(file: string): Promise<number> {
  const { stdout } = await run(
    process.execPath,
    ['--input-type=module', '-e', IMPORT_TIMER, pathToFileURL(file).href],
    { env: FUNCTION_ENV, timeout: 30_000 },
  );
  const ms = Number(stdout);
  if (!Number.isFinite(ms)) throw new Error('bench: the import timer printed no number');
  return ms;
}

/**
 * The vend bundle against a bare handler with the same SDK clients: bytes, and cold import time
 * in fresh `node` processes (alternated, median of `runs`).
 */
export async function bundleSizes(options: {
  runs: number;
  warmup: number;
}): Promise<BundleResult> {
  const dir = await mkdtemp(join(tmpdir(), 'crm-vendor-bench-'));
  try {
    const files = { vend: join(dir, 'vend', 'index.mjs'), bare: join(dir, 'bare', 'index.mjs') };
    await build(constructOptions('functions/handlers/vend.ts', files.vend));
    await build(constructOptions('bench/bare-handler.ts', files.bare));
    const samples = { vend: [] as number[], bare: [] as number[] };
    for (let i = 0; i < options.warmup + options.runs; i++) {
      for (const side of ['bare', 'vend'] as const) {
        const ms = await importMs(files[side]);
        if (i >= options.warmup) samples[side].push(ms);
      }
    }
    const side = async (name: 'vend' | 'bare'): Promise<BundleSide> => ({
      bytes: (await stat(files[name])).size,
      sourceMapBytes: (await stat(`${files[name]}.map`)).size,
      importMs: median(samples[name]),
      importSamples: samples[name],
    });
    return { vend: await side('vend'), bare: await side('bare'), runs: options.runs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
