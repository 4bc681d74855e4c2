/** Commands that serve evidence handling: export, verify-export, holds, retention, officers. */
import type { Command } from 'commander';
import path from 'node:path';
import { exportBundle, ExportError, REPORT_FILE } from '../custody/export.js';
import { verifyExport } from '../custody/verify-export.js';
import { loadOrCreateDockKey } from '../crypto/signing.js';
import { CustodyLog } from '../store/custody-log.js';
import { retentionCandidates, sweepRetention } from '../custody/retention.js';
import { setHold } from '../store/retention.js';
import { assign, assignments, unassign } from '../store/officers.js';
import {
  cliActor,
  parseTime,
  printJson,
  ProblemError,
  resolveConfig,
  UsageError,
  withStore,
  withStoreAsync,
  type GlobalOptions,
} from './context.js';
import { readIdentities } from './identities.js';
import { generateIdentity } from '../crypto/age.js';
import { writeFileSync } from 'node:fs';
import { printable, table } from '../lib/format.js';

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

export function registerEvidenceCommands(program: Command, g: () => GlobalOptions): void {
  program
    .command('export')
    .description(
      'write an evidence bundle: files, SHA256SUMS, custody chain up to a signed checkpoint, report, the dock key as PEM, signed manifest',
    )
    .option('--recording <id>', 'a recording to export (repeat for more)', collect)
    .option('--camera <serial>', 'every verified recording of this camera (with --from/--to)')
    .option('--from <time>', 'recorded at or after (ISO-8601)')
    .option('--to <time>', 'recorded before (ISO-8601)')
    .requiredOption('--out <dir>', 'new or empty folder for the bundle')
    .requiredOption('--reason <text>', 'why the export is made (goes into custody)')
    .option(
      '--identity <file>',
      "a custodian's age identity: export encrypted recordings decrypted (each decryption goes into custody)",
    )
    .option('--json', 'machine-readable output')
    .action(
      (o: {
        recording?: string[];
        camera?: string;
        from?: string;
        to?: string;
        out: string;
        reason: string;
        identity?: string;
        json?: boolean;
      }) => {
        if (!o.recording === !o.camera)
          throw new UsageError('give --recording ID (repeatable) or --camera SERIAL, not both');
        const sel = {
          ids: o.recording,
          camera: o.camera,
          from: parseTime('--from', o.from),
          to: parseTime('--to', o.to),
        };
        return withStoreAsync(g(), async (db, cfg) => {
          try {
            const identities = o.identity === undefined ? undefined : readIdentities(o.identity);
            const m = await exportBundle(db, sel, {
              outDir: path.resolve(o.out),
              reason: o.reason,
              actor: cliActor(),
              key: loadOrCreateDockKey(cfg.dataDir),
              identities,
            });
            if (o.json)
              return printJson({
                out: path.resolve(o.out),
                bundleId: m.bundleId,
                recordings: m.recordings.map((r) => r.id),
                checkpoint: m.checkpoint,
              });
            console.log(`exported ${m.recordings.length} recordings to ${path.resolve(o.out)} (bundle ${m.bundleId})`);
            console.log(`check it with: dockd verify-export ${path.resolve(o.out)} --key KEY (KEY from \`dockd key\`)`);
            console.log(`or without dockd, with sha256sum and openssl, as ${REPORT_FILE} in the bundle says`);
          } catch (err) {
            if (err instanceof ExportError) throw new ProblemError(err.message);
            throw err;
          }
        });
      },
    );

  program
    .command('keygen')
    .description(
      "create a custodian's age identity file (for another machine) and print its public key for encryption.recipients",
    )
    .requiredOption('--out <file>', 'where to write the identity (mode 0600); never inside the data dir')
    .option('--json', 'machine-readable output')
    .action((o: { out: string; json?: boolean }) => {
      const out = path.resolve(o.out);
      const cfg = resolveConfig(g());
      const rel = path.relative(cfg.dataDir, out);
      if (!rel.startsWith('..') && !path.isAbsolute(rel))
        throw new UsageError(
          `--out must not be inside the data dir ${cfg.dataDir}: the dock must not hold a key that decrypts its archive`,
        );
      const { identity, recipient } = generateIdentity();
      try {
        writeFileSync(out, `# created: ${new Date().toISOString()}\n# public key: ${recipient}\n${identity}\n`, {
          mode: 0o600,
          flag: 'wx',
        });
      } catch (err) {
        throw new ProblemError(`cannot write ${out}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
      if (o.json) return printJson({ identityFile: out, recipient });
      console.log(recipient);
      console.error(
        `identity written to ${out}: move it to the custodian's machine; put the line above in encryption.recipients`,
      );
    });

  program
    .command('verify-export')
    .description(
      'check an export bundle offline: files, chain, checkpoint and manifest signatures; exit 1 on any problem',
    )
    .argument('<dir>', 'the bundle folder')
    .option('--key <base64>', "the dock's public key as printed by `dockd key`, to pin who signed it")
    .option('--json', 'machine-readable output')
    .action(async (dir: string, o: { key?: string; json?: boolean }) => {
      const r = await verifyExport(path.resolve(dir), o.key);
      if (o.json) printJson(r);
      else if (r.ok)
        console.log(
          `bundle ok: ${r.recordings} recordings, signed by dock key ${r.keyId}${o.key ? ' (pinned)' : ' (pin it with --key)'}`,
        );
      else for (const p of r.problems) console.log(`PROBLEM  ${p}`);
      if (!r.ok) process.exitCode = 1;
    });

  for (const [name, held] of [
    ['hold', true],
    ['release', false],
  ] as const) {
    program
      .command(name)
      .description(
        held ? 'put a recording on hold: retention never deletes it' : 'release a hold so retention applies again',
      )
      .argument('<id>', 'recording id')
      .requiredOption('--reason <text>', 'why (goes into custody)')
      .option('--json', 'machine-readable output')
      .action((id: string, o: { reason: string; json?: boolean }) =>
        withStore(g(), (db) => {
          let changed: boolean;
          try {
            changed = setHold(db, new CustodyLog(db, cliActor()), id, held, o.reason);
          } catch (err) {
            throw new ProblemError((err as Error).message);
          }
          if (o.json) return printJson({ id, held, changed });
          console.log(
            changed ? `${id} ${held ? 'held' : 'released'}` : `${id} was already ${held ? 'held' : 'not held'}`,
          );
        }),
      );
  }

  program
    .command('retention')
    .description(
      'delete expired, unheld recordings now (the daemon also does this on its own), or list them with --dry-run',
    )
    .option('--dry-run', 'only list what would be deleted and why')
    .option('--as-of <time>', 'with --dry-run: evaluate as of this time (plan ahead)')
    .option('--json', 'machine-readable output')
    .action((o: { dryRun?: boolean; asOf?: string; json?: boolean }) => {
      if (o.asOf && !o.dryRun) throw new UsageError('--as-of only goes with --dry-run');
      const asOf = parseTime('--as-of', o.asOf)?.getTime();
      return withStoreAsync(g(), async (db, cfg) => {
        if (cfg.retention.days <= 0 && !o.json) console.error('retention.days is 0: recordings are kept forever');
        const list = o.dryRun
          ? retentionCandidates(db, cfg.retention, asOf)
          : (await sweepRetention(db, new CustodyLog(db, cliActor()), cfg.retention)).deleted;
        if (o.json) return printJson(list);
        if (!list.length) return console.log(o.dryRun ? 'nothing would be deleted' : 'nothing deleted');
        console.log(o.dryRun ? 'would delete:' : 'deleted:');
        console.log(
          table(
            ['ID', 'CAMERA', 'SOURCE', 'WHY'],
            list.map((c) => [c.id, printable(c.camera), printable(c.sourcePath), c.reason]),
          ),
        );
      });
    });

  program
    .command('assign')
    .description('record that an officer holds a camera from a time on')
    .argument('<serial>', 'camera serial')
    .argument('<officer>', 'officer id or name')
    .option('--from <time>', 'start (ISO-8601), default now')
    .option('--unit <unit>', "the officer's unit from then on (dockd stages --by unit)")
    .action((serial: string, officer: string, o: { from?: string; unit?: string }) =>
      withStore(
        g(),
        (db) => {
          if (o.unit !== undefined && !o.unit.trim()) throw new UsageError('--unit must not be empty');
          assign(
            db,
            new CustodyLog(db, cliActor()),
            serial,
            officer,
            parseTime('--from', o.from) ?? new Date(),
            o.unit,
          );
          console.log(`${serial} assigned to ${officer}${o.unit === undefined ? '' : ` of ${o.unit}`}`);
        },
        { create: true },
      ),
    );

  program
    .command('unassign')
    .description('end the current assignment of a camera')
    .argument('<serial>', 'camera serial')
    .option('--from <time>', 'end (ISO-8601), default now')
    .action((serial: string, o: { from?: string }) =>
      withStore(g(), (db) => {
        const n = unassign(db, new CustodyLog(db, cliActor()), serial, parseTime('--from', o.from) ?? new Date());
        if (!n) throw new ProblemError(`${serial} has no open assignment`);
        console.log(`${serial} unassigned`);
      }),
    );

  program
    .command('assignments')
    .description('who held which camera when')
    .argument('[serial]', 'one camera')
    .option('--json', 'machine-readable output')
    .action((serial: string | undefined, o: { json?: boolean }) =>
      withStore(g(), (db) => {
        const list = assignments(db, serial);
        if (o.json) return printJson(list);
        console.log(
          list.length
            ? table(
                ['CAMERA', 'OFFICER', 'FROM', 'TO'],
                list.map((a) => [printable(a.camera), printable(a.officer), a.from, a.to ?? '(now)']),
              )
            : 'no assignments',
        );
      }),
    );
}
