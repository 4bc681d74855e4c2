import type { Config } from '../config.js';
import { createDaemonLogger, type ReadableOptions } from '../log.js';
import { startDaemon } from '../daemon/daemon.js';

const STOP_DEADLINE_MS = 9000;

/** `dockd start`: one daemon in the foreground, stopped by SIGTERM/SIGINT within a deadline. */
export async function runDaemonForeground(cfg: Config, out: { readable?: ReadableOptions } = {}): Promise<void> {
  const log = createDaemonLogger(
    cfg.log.level,
    cfg.log.file ? { file: cfg.log.file, rotate: cfg.log.rotate } : null,
    out.readable ?? null,
  );
  const daemon = await startDaemon(cfg, log);
  let shuttingDown = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (shuttingDown) return;
    shuttingDown = true;
    // A hung device must not keep a service manager waiting past its own stop timeout.
    setTimeout(() => {
      log.error({ event: 'daemon.stop_timeout' }, 'graceful stop took too long; exiting');
      log.flush();
      process.exit(1);
    }, STOP_DEADLINE_MS).unref();
    daemon.stop(sig).catch((err: unknown) => {
      log.error({ event: 'daemon.stop_failed', err }, 'stop failed');
      process.exitCode = 1;
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('uncaughtException', (err) => {
    log.fatal({ event: 'daemon.crashed', err }, 'uncaught exception');
    log.flush();
    process.exit(1);
  });
  await daemon.stopped;
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  log.flush();
}
