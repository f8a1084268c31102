/**
 * `npm run bench`: measures the local stack in one run and prints a table of ratios against
 * baselines measured in the same run (see bench/README.md), then writes bench/results.json.
 */
import { writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { bundleSizes } from './bundle.js';
import { coldHerd } from './cold-herd.js';
import { startBackend } from './fixtures.js';
import { httpLoad } from './http-load.js';
import { releaseReads } from './release-reads.js';
import { type Figure, latency, ms, passes, renderTable } from './report.js';
import { nowMs } from './stats.js';
import { createStdoutSink } from './stdout-sink.js';
import { vendLatency } from './vend-latency.js';

const RESULTS_FILE = new URL('./results.json', import.meta.url);
/** The release run's table: 10,000 token records, 50 due now, 2,000 already released. */
const RELEASE_TABLE = { stored: 10_000, due: 50, released: 2000 } as const;

// The AWS SDK warns once per process that Node 20 support ends in 2027: not a bench finding
// (the deployed runtime is Node 22). Children inherit it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

async function main(): Promise<void> {
  const sink = createStdoutSink();
  const started = nowMs();
  const step = (name: string) =>
    sink.print(`bench: ${name} (${((nowMs() - started) / 1000).toFixed(1)} s)\n`);

  step('bundles and cold imports');
  const bundle = await bundleSizes({ runs: 21, warmup: 2 });

  step('HTTP load: local server vs bare node:http (and the emulation alone)');
  const http = await httpLoad({
    connections: 10,
    warmupRequests: 10_000,
    secondsPerRound: 2,
    rounds: 4,
  });

  step('in-process: cold herd, warm vends, release run');
  sink.mute();
  const backend = await startBackend();
  let herd: Awaited<ReturnType<typeof coldHerd>>;
  let vend: Awaited<ReturnType<typeof vendLatency>>;
  let release: Awaited<ReturnType<typeof releaseReads>>;
  try {
    herd = await coldHerd(backend, { requests: 1000, instances: 16, loginDelayMs: 100 });
    vend = await vendLatency(backend, { warmup: 500, samples: 4000, block: 100 });
    release = await releaseReads(backend, RELEASE_TABLE);
  } finally {
    await backend.close();
    sink.unmute();
  }
  const totalSeconds = (nowMs() - started) / 1000;

  const figures: Figure[] = [
    {
      key: 'loginsPer1000ColdConcurrent',
      value: herd.logins,
      target: { op: '=', bound: 1 },
      sound: herd.failures === 0 && herd.distinctTokens === 1,
      detail: `${herd.requests} requests over ${herd.instances} instances: ${herd.logins} login(s), ${herd.failures} error(s), ${herd.distinctTokens} distinct token(s); ${latency(herd.latency)}`,
    },
    {
      key: 'warmVendVsGetItem',
      value: vend.warmVend.p50 / vend.getItem.p50,
      target: { op: '<=', bound: 1.2 },
      detail: `vend ${latency(vend.warmVend)} vs GetItem ${latency(vend.getItem)}; ${vend.warmReadsPerVend.toFixed(2)} reads/vend`,
    },
    {
      key: 'memoryVendVsGetItem',
      value: vend.memoryVend.p50 / vend.getItem.p50,
      target: { op: '<=', bound: 0.1 },
      detail: `vend ${latency(vend.memoryVend)} vs GetItem ${latency(vend.getItem)}; ${vend.memoryReadsPerVend.toFixed(4)} reads/vend`,
    },
    {
      key: 'httpVendVsBareServer',
      value: http.local.latency.p50 / http.bare.latency.p50,
      target: { op: '<=', bound: 1.5 },
      sound: http.local.errors === 0 && http.bare.errors === 0,
      detail: `local ${latency(http.local.latency)} vs bare ${latency(http.bare.latency)} (${http.connections} connections, ${http.secondsPerSide} s each)`,
    },
    {
      key: 'httpThroughputVsBareServer',
      value: http.local.requestsPerSecond / http.bare.requestsPerSecond,
      target: { op: '>=', bound: 0.6 },
      sound: http.local.errors === 0 && http.bare.errors === 0,
      detail: `local ${http.local.requestsPerSecond.toFixed(0)} vs bare ${http.bare.requestsPerSecond.toFixed(0)} req/s; server CPU ${http.local.serverCpuMicrosPerRequest.toFixed(0)} vs ${http.bare.serverCpuMicrosPerRequest.toFixed(0)} µs/request; errors ${http.local.errors}/${http.bare.errors}`,
    },
    {
      key: 'releaseReadsPerDue',
      value: release.itemsRead / release.due,
      target: { op: '<=', bound: 1.1 },
      sound: release.due === RELEASE_TABLE.due && release.released === release.due,
      detail: `${release.itemsRead} items read for ${release.due} due of ${release.stored} stored; ${release.released} released in ${ms(release.runMs)} ms`,
    },
    {
      key: 'bundleVsBare',
      value: bundle.vend.bytes / bundle.bare.bytes,
      target: { op: '<=', bound: 1.3 },
      detail: `vend ${kib(bundle.vend.bytes)} vs bare ${kib(bundle.bare.bytes)} (minified ESM, source maps apart)`,
    },
    {
      key: 'coldImportVsBare',
      value: bundle.vend.importMs / bundle.bare.importMs,
      target: { op: '<=', bound: 1.3 },
      detail: `vend ${ms(bundle.vend.importMs)} ms vs bare ${ms(bundle.bare.importMs)} ms (median of ${bundle.runs} fresh node processes)`,
    },
  ];

  const results: Record<string, number> = Object.fromEntries(
    figures.map((f) => [f.key, round(f.value)]),
  );
  Object.assign(results, {
    herdP50Ms: round(herd.latency.p50),
    herdP99Ms: round(herd.latency.p99),
    herdWallMs: round(herd.wallMs),
    herdLoginAttempts: herd.loginAttempts,
    herdErrors: herd.failures,
    getItemP50Ms: round(vend.getItem.p50),
    getItemP99Ms: round(vend.getItem.p99),
    warmVendP50Ms: round(vend.warmVend.p50),
    warmVendP99Ms: round(vend.warmVend.p99),
    memoryVendP50Ms: round(vend.memoryVend.p50),
    memoryVendP99Ms: round(vend.memoryVend.p99),
    latencySamples: vend.getItem.samples,
    warmVendTableReadsPerVend: round(vend.warmReadsPerVend),
    memoryVendTableReadsPerVend: round(vend.memoryReadsPerVend),
    httpLocalP50Ms: round(http.local.latency.p50),
    httpLocalP99Ms: round(http.local.latency.p99),
    httpBareP50Ms: round(http.bare.latency.p50),
    httpBareP99Ms: round(http.bare.latency.p99),
    httpLocalRequestsPerSecond: round(http.local.requestsPerSecond),
    httpBareRequestsPerSecond: round(http.bare.requestsPerSecond),
    httpLocalRequests: http.local.requests,
    httpBareRequests: http.bare.requests,
    httpConnections: http.connections,
    httpEmulationP50Ms: round(http.emulation.latency.p50),
    httpEmulationRequestsPerSecond: round(http.emulation.requestsPerSecond),
    httpEmulationServerCpuMicrosPerRequest: round(http.emulation.serverCpuMicrosPerRequest),
    httpLocalServerCpuMicrosPerRequest: round(http.local.serverCpuMicrosPerRequest),
    httpBareServerCpuMicrosPerRequest: round(http.bare.serverCpuMicrosPerRequest),
    releaseStored: release.stored,
    releaseDue: release.due,
    releaseItemsRead: release.itemsRead,
    releaseReleased: release.released,
    releaseRunMs: round(release.runMs),
    vendBundleBytes: bundle.vend.bytes,
    bareBundleBytes: bundle.bare.bytes,
    vendSourceMapBytes: bundle.vend.sourceMapBytes,
    bareSourceMapBytes: bundle.bare.sourceMapBytes,
    vendImportMs: round(bundle.vend.importMs),
    bareImportMs: round(bundle.bare.importMs),
    emfLinesDuringInProcessPhases: sink.lines,
    cpuCount: cpus().length,
    totalSeconds: round(totalSeconds),
  });
  await writeFile(RESULTS_FILE, `${JSON.stringify(results, null, 2)}\n`);

  const failed = figures.filter((f) => !passes(f)).length;
  sink.print(`\n${renderTable(figures)}\n\n`);
  sink.print(
    `${figures.length - failed} of ${figures.length} targets met; ${cpus().length} CPU(s), ${totalSeconds.toFixed(0)} s; written to bench/results.json\n`,
  );
}

function round(value: number): number {
  return Number(value.toPrecision(4));
}

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(0)} KiB`;
}

main().then(
  // Servers and clients are closed; exit in case a library left a timer behind.
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(
      `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
