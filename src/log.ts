import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * JSON lines on stdout for journald and IT's log store: numeric level, epoch-ms `time`, `msg`,
 * and an `event` name on every line that matters, so nobody has to parse messages.
 */
export function createLogger(level: string, dest: pino.DestinationStream = pino.destination({ dest: 1, sync: false })): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.epochTime }, dest);
}

/** A logger that writes nowhere, for CLI code paths that share modules with the daemon. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
