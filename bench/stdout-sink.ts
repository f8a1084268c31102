/**
 * The product writes one EMF line per invocation to stdout (that is how Lambda ships metrics to
 * CloudWatch). During measurements stdout goes to this sink instead of the terminal: the lines
 * are still built and written (the cost stays in the figures), only the terminal's own cost is
 * left out. Every measured side writes to the same sink.
 */
export interface StdoutSink {
  /** Lines and bytes written while muted. */
  readonly lines: number;
  readonly bytes: number;
  /** Writes to the real stdout, whether muted or not (the report). */
  print(text: string): void;
  mute(): void;
  unmute(): void;
}

export function createStdoutSink(): StdoutSink {
  const original = process.stdout.write.bind(process.stdout);
  let lines = 0;
  let bytes = 0;
  const discard = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    bytes += Buffer.byteLength(text);
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lines++;
    const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    callback?.();
    return true;
  }) as typeof process.stdout.write;
  return {
    get lines() {
      return lines;
    },
    get bytes() {
      return bytes;
    },
    print: (text) => {
      original(text);
    },
    mute: () => {
      process.stdout.write = discard;
    },
    unmute: () => {
      process.stdout.write = original;
    },
  };
}
