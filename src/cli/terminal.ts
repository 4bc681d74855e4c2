/**
 * What the CLI may write depends on where stdout goes: a person at a terminal gets colours and
 * a redrawn screen; a pipe, a file or journald gets plain text, and a reader that stops early
 * (`| head`) ends the command quietly.
 */

/**
 * A closed pipe is the reader saying it has enough, not a failure: without a listener, Node turns
 * the EPIPE into an uncaught exception and a stack trace on the user's terminal.
 */
export function endQuietlyOnClosedPipe(stream: NodeJS.WriteStream = process.stdout): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
    process.stderr.write(`dockd: cannot write the output: ${err.message}\n`);
    process.exit(1);
  });
}

/** https://no-color.org: any non-empty NO_COLOR turns colours off, as does --no-color. */
export function colourWanted(
  opts: { color?: boolean },
  env: NodeJS.ProcessEnv = process.env,
  isTTY = !!process.stdout.isTTY,
): boolean {
  return isTTY && opts.color !== false && !env.NO_COLOR;
}

export interface Paint {
  good(s: string): string;
  bad(s: string): string;
  warn(s: string): string;
  dim(s: string): string;
}

const sgr = (code: number) => (s: string) => `\x1b[${code}m${s}\x1b[0m`;
const plain = (s: string) => s;

export function paint(on: boolean): Paint {
  return on
    ? { good: sgr(32), bad: sgr(31), warn: sgr(33), dim: sgr(2) }
    : { good: plain, bad: plain, warn: plain, dim: plain };
}

/** Moves the cursor home and clears the screen: only ever written to a terminal. */
export const CLEAR_SCREEN = '\x1b[H\x1b[2J';
