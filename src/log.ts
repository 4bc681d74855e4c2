import pino, { type Logger } from 'pino';
import { terminalLogStream } from './log-terminal.js';

export type { Logger };

/**
 * JSON lines on stdout for journald and IT's log store: numeric level, epoch-ms `time`, `msg`,
 * and an `event` name on every line that matters, so nobody has to parse messages.
 */
export function createLogger(
  level: string,
  dest: pino.DestinationStream = pino.destination({ dest: 1, sync: false }),
): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.epochTime }, dest);
}

export interface LogFileOptions {
  file: string;
  rotate: { size: string; frequency: string; keep: number };
}

/** Readable lines instead of JSON on stdout: for `dockd start` on a terminal only. */
export interface ReadableOptions {
  colour: boolean;
}

/**
 * stdout for journald, and with `log.file` a rotated file as well, written by pino-roll in a
 * worker thread so a slow disk never stalls ingest. The file always gets JSON.
 */
export function createDaemonLogger(
  level: string,
  file: LogFileOptions | null,
  readable: ReadableOptions | null = null,
): Logger {
  const options = { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.epochTime };
  if (readable) {
    // A terminal that went away loses the lines that follow, not the offloads under way.
    process.stdout.on('error', () => undefined);
    const streams: pino.StreamEntry[] = [{ level: level as pino.Level, stream: terminalLogStream(readable.colour) }];
    if (file)
      streams.push({
        level: level as pino.Level,
        stream: pino.transport({ target: 'pino-roll', options: rollOptions(file) }),
      });
    return pino(options, pino.multistream(streams));
  }
  if (!file) return createLogger(level);
  const transport = pino.transport({
    targets: [
      { target: 'pino/file', level, options: { destination: 1 } },
      { target: 'pino-roll', level, options: rollOptions(file) },
    ],
  });
  return pino(options, transport);
}

function rollOptions(file: LogFileOptions): Record<string, unknown> {
  return {
    file: file.file,
    size: file.rotate.size,
    frequency: file.rotate.frequency,
    limit: { count: file.rotate.keep },
    mkdir: true,
  };
}

/** A logger that writes nowhere, for CLI code paths that share modules with the daemon. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/**
 * A run of failures of one kind of work that is retried until it works, told once when it starts
 * and once when it ends: a store that refuses for an hour gives IT two lines to alert on and to
 * close the alert with, not one per retry.
 */
export class FailureStreak {
  private since: number | null = null;

  /** True when this failure starts a streak: the caller logs it then, and only then. */
  failed(now = Date.now()): boolean {
    if (this.since !== null) return false;
    this.since = now;
    return true;
  }

  /** How long the streak lasted, when this success ends one; null when none was running. */
  ended(now = Date.now()): number | null {
    if (this.since === null) return null;
    const failedForMs = now - this.since;
    this.since = null;
    return failedForMs;
  }
}
