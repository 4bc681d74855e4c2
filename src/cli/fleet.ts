/**
 * `dockd fleet`: every dock that publishes its state to the replication bucket, read with
 * nothing but read access, and every camera seen at any of them.
 */
import type { Command } from 'commander';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../lib/config-error.js';
import { loadCredentials } from '../replication/credentials.js';
import { KeyRing, type FleetWarning } from '../fleet/trust.js';
import { printJson, ProblemError, resolveConfig, UsageError, type GlobalOptions } from './context.js';
import { ago, bytes, printable, table } from '../lib/format.js';
import type { FleetView } from '../fleet/view.js';

/** Warnings that say a dock's custody cannot be trusted; the command exits 1 on them. */
const ALARMS: ReadonlySet<FleetWarning['kind']> = new Set([
  'key_changed',
  'key_not_pinned',
  'signature_bad',
  'head_backwards',
  'head_rewritten',
]);

export function registerFleetCommand(program: Command, g: () => GlobalOptions): void {
  program
    .command('fleet')
    .description('every dock that publishes to the object store in `replication`, and every camera seen at any of them')
    .option('--json', 'machine-readable output')
    .option(
      '--html <file>',
      'write the city-wide page: docks, cameras short of a shift wherever they dock, battery history across docks',
    )
    .option(
      '--forget <dockId>',
      "forget a dock's remembered key and head, so that its next key is trusted on first use",
    )
    .action(async (o: { json?: boolean; html?: string; forget?: string }) => {
      const cfg = resolveConfig(g());
      if (!cfg.replication)
        throw new UsageError('fleet reads the bucket of the replication section, and the config has none');
      let ring: KeyRing;
      try {
        ring = KeyRing.open(cfg.dataDir, cfg.fleet.keys);
      } catch (err) {
        throw new ProblemError((err as Error).message);
      }
      if (o.forget !== undefined) {
        if (!ring.file) throw new ProblemError(`no data dir at ${cfg.dataDir}: nothing is remembered to forget`);
        const had = ring.forget(o.forget);
        ring.save();
        if (o.json) return printJson({ forgotten: had ? o.forget : null });
        return console.log(
          had ? `forgot the key and head of dock ${o.forget}` : `nothing remembered of dock ${o.forget}`,
        );
      }
      let creds;
      try {
        creds = loadCredentials(cfg.replication);
      } catch (err) {
        throw new ConfigError('replication', (err as Error).message);
      }
      // The S3 client takes most of a second to load: only commands that talk to the store pay it.
      const { s3ClientFor } = await import('../replication/store.js');
      const { fetchFleet } = await import('../fleet/read.js');
      const { buildFleetView } = await import('../fleet/view.js');
      const client = s3ClientFor(cfg.replication, creds, 3);
      let fetched;
      try {
        fetched = await fetchFleet(client, cfg.replication.bucket, { concurrency: 16 });
      } finally {
        client.destroy();
      }
      const { series, ...view } = buildFleetView(fetched, ring, cfg.replication.bucket);
      try {
        ring.save();
      } catch (err) {
        process.stderr.write(`dockd: cannot remember the docks' keys in ${ring.file}: ${(err as Error).message}\n`);
      }
      for (const w of view.warnings)
        process.stderr.write(`dockd: ${ALARMS.has(w.kind) ? 'WARNING' : 'note'}: ${printable(w.message)}\n`);
      if (!ring.file) process.stderr.write(`dockd: note: ${view.trust.note}\n`);
      if (o.html) {
        const { renderFleetPage } = await import('../fleet/page.js');
        writeAtomically(path.resolve(o.html), renderFleetPage(view, series));
      }
      if (o.json) printJson(view);
      else if (!o.html) console.log(renderFleet(view));
      else console.log(`wrote ${path.resolve(o.html)}`);
      if (view.warnings.some((w) => ALARMS.has(w.kind))) process.exitCode = 1;
    });
}

function writeAtomically(file: string, text: string): void {
  // A browser left open on the file reloads a whole page, never half of one.
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new ProblemError(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

function renderFleet(v: FleetView): string {
  const out: string[] = [];
  if (!v.docks.length) return `no dock publishes its state to bucket ${v.bucket} yet`;
  out.push(
    table(
      ['DOCK', 'STATE', 'LAST SEEN', 'DOCKED', 'QUEUE', 'TO REPLICATE', 'FREE', 'CUSTODY HEAD', 'KEY'],
      v.docks.map((d) => [
        printable(d.dockId),
        d.state.toUpperCase(),
        ago(d.lastSeenAt),
        d.docked.length,
        `${d.queue.pending} pending, ${d.queue.failed} failed`,
        `${d.replication.count} (${bytes(d.replication.bytes)})`,
        bytes(d.freeBytes),
        d.custodyHead ? `${d.custodyHead.seq} ${d.custodyHead.signatureOk ? 'signed ok' : 'SIGNATURE BAD'}` : '-',
        `${d.key.keyId ?? '-'} (${d.key.trust})`,
      ]),
    ),
  );
  out.push('');
  out.push(
    v.cameras.length
      ? table(
          ['CAMERA', 'LAST DOCK', 'LAST SEEN', 'DOCKED', 'BATTERY', 'RUNTIME', 'DOCKS USED'],
          v.cameras.map((c) => [
            printable(c.serial),
            printable(c.lastDock),
            ago(c.lastSeenAt),
            c.docked ? 'yes' : 'no',
            c.battery.status,
            c.battery.projectedRuntimeHours === null ? '-' : `${c.battery.projectedRuntimeHours} h`,
            c.docks.map((d) => printable(d.dockId)).join(', '),
          ]),
        )
      : 'no cameras seen at any dock',
  );
  return out.join('\n');
}
