/** Commands for whoever keeps a dock PC running: doctor and backup. */
import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { runDoctor, type Check, type DoctorReport } from '../admin/doctor.js';
import { backupStore, BackupError, type BackupProgress } from '../admin/backup.js';
import { NoStoreError } from '../admin/store-file.js';
import { dbPath } from '../store/db.js';
import { printJson, ProblemError, resolveConfig, UsageError, type GlobalOptions } from './context.js';
import { bytes } from '../lib/format.js';

/** Above this size a backup takes long enough that a silent terminal looks hung. */
const PROGRESS_ABOVE_BYTES = 64 * 1024 * 1024;

/** The file `resolveConfig` reads, by the same rules, so doctor can say which one it was. */
function configFileUsed(g: GlobalOptions): string | null {
  const explicit = g.config ?? process.env.DOCKD_CONFIG;
  if (explicit !== undefined) return path.resolve(explicit);
  const local = path.resolve('dockd.config.json');
  return existsSync(local) ? local : null;
}

const LABEL: Record<Check['status'], string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' };

function renderDoctor(report: DoctorReport): string {
  const width = Math.max(...report.checks.map((c) => c.name.length));
  const lines: string[] = [];
  for (const c of report.checks) {
    lines.push(`${LABEL[c.status]}  ${c.name.padEnd(width)}  ${c.detail}`);
    if (c.fix) lines.push(`${' '.repeat(6 + width + 2)}fix: ${c.fix}`);
  }
  const count = (s: Check['status']) => report.checks.filter((c) => c.status === s).length;
  const fails = count('fail');
  const warns = count('warn');
  lines.push('');
  lines.push(
    fails || warns
      ? `${fails} failed, ${warns} warning${warns === 1 ? '' : 's'}, ${count('ok')} ok`
      : `all ${report.checks.length} checks ok`,
  );
  return lines.join('\n');
}

function progressPrinter(): (p: BackupProgress) => void {
  let lastShown = -1;
  const tty = process.stderr.isTTY;
  return (p) => {
    if (p.totalPages === 0) return;
    const pct = Math.floor(((p.totalPages - p.remainingPages) / p.totalPages) * 100);
    // A log file gets a line per tenth; a terminal gets one line redrawn.
    const step = tty ? pct : Math.floor(pct / 10) * 10;
    if (step === lastShown) return;
    lastShown = step;
    process.stderr.write(
      tty ? `\rbackup ${pct}% of ${p.totalPages} pages` : `backup ${step}% of ${p.totalPages} pages\n`,
    );
  };
}

export function registerAdminCommands(program: Command, g: () => GlobalOptions): void {
  program
    .command('doctor')
    .description(
      'check config, data dir permissions, keys, free space, database, daemon, clock and USB access; exit 1 on any failure',
    )
    .option('--json', 'machine-readable output')
    .action((o: { json?: boolean }) => {
      const opts = g();
      const cfg = resolveConfig(opts);
      const report = runDoctor(cfg, configFileUsed(opts));
      if (o.json) printJson(report);
      else console.log(renderDoctor(report));
      if (!report.ok) process.exitCode = 1;
    });

  program
    .command('backup')
    .description('online backup of dockd.db (safe while the daemon runs), checked with integrity_check')
    .argument('<file>', 'where to write the copy')
    .option('--force', 'overwrite FILE when it exists')
    .option('--json', 'machine-readable output')
    .action(async (file: string, o: { force?: boolean; json?: boolean }) => {
      const cfg = resolveConfig(g());
      const size = statSync(dbPath(cfg.dataDir), { throwIfNoEntry: false })?.size ?? 0;
      const progress = size > PROGRESS_ABOVE_BYTES ? progressPrinter() : undefined;
      let result;
      try {
        result = await backupStore(cfg.dataDir, file, { force: o.force, onProgress: progress });
        progress?.({ totalPages: result.pages, remainingPages: 0 });
      } catch (err) {
        if (err instanceof BackupError) throw err.usage ? new UsageError(err.message) : new ProblemError(err.message);
        if (err instanceof NoStoreError) throw new ProblemError(err.message);
        throw err;
      } finally {
        if (progress && process.stderr.isTTY) process.stderr.write('\n');
      }
      if (o.json) return printJson({ ok: true, ...result });
      console.log(
        `backed up ${cfg.dataDir}/dockd.db to ${result.file} (${bytes(result.bytes)}, ${result.custodyEvents} custody events${result.lastSeq === null ? '' : `, head seq ${result.lastSeq}`}); integrity_check ok`,
      );
    });
}
