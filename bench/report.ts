import type { LatencySummary } from './stats.js';

/** One row of the report: a ratio, its target, and the absolute figures it came from. */
export interface Figure {
  readonly key: string;
  readonly value: number;
  readonly target: { readonly op: '=' | '<=' | '>='; readonly bound: number };
  readonly detail: string;
  /** False when the run behind the figure went wrong (e.g. requests failed): it cannot pass. */
  readonly sound?: boolean;
}

export function passes(figure: Figure): boolean {
  const { op, bound } = figure.target;
  if (figure.sound === false || !Number.isFinite(figure.value)) return false;
  if (op === '=') return figure.value === bound;
  return op === '<=' ? figure.value <= bound : figure.value >= bound;
}

/** `p50 1.23 / p99 4.56 ms` */
export function latency(summary: LatencySummary): string {
  return `p50 ${ms(summary.p50)} / p99 ${ms(summary.p99)} ms`;
}

export function ms(value: number): string {
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  if (value >= 1) return value.toFixed(2);
  return value.toFixed(3);
}

export function ratio(value: number): string {
  if (Number.isInteger(value)) return String(value);
  return value >= 10 ? value.toFixed(1) : value.toFixed(3);
}

/** The table as Markdown, which reads well in a terminal and pastes into docs/performance.md. */
export function renderTable(figures: readonly Figure[]): string {
  const rows = figures.map((f) => [
    `\`${f.key}\``,
    ratio(f.value),
    `${f.target.op === '=' ? '=' : f.target.op === '<=' ? '≤' : '≥'} ${f.target.bound}`,
    passes(f) ? 'pass' : 'FAIL',
    f.detail,
  ]);
  const header = ['figure', 'ratio', 'target', 'result', 'absolute (product vs baseline)'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [
    line(header),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.map(line),
  ].join('\n');
}
