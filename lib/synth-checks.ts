import type { App } from 'aws-cdk-lib';

/**
 * Synthesizes `app` and throws when any stack carries a warning or error annotation, so that a
 * plain `cdk synth` (without `--strict`) fails on warnings too.
 */
export function synthesizeStrictly(app: App): void {
  const assembly = app.synth();
  const problems = assembly.stacks.flatMap((stack) =>
    stack.messages
      .filter((message) => message.level === 'warning' || message.level === 'error')
      .map((message) => `[${message.level}] ${message.id}: ${String(message.entry.data)}`),
  );
  if (problems.length > 0) {
    throw new Error(
      `synth failed: ${problems.length} warning or error annotation(s)\n${problems.join('\n')}`,
    );
  }
}
