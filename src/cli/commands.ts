/** Read-side commands: cameras, recordings, custody, verify, retry. Each opens the store itself. */
import type { Command } from 'commander';
import { readIdentities } from './identities.js';
import { iterateRecordings, recordingExists, recordingJson, type RecordingStatus } from '../store/recordings.js';
import { cameraKnown, camerasBySerial } from '../store/cameras.js';
import type { Db } from '../store/db.js';
import { colourWanted, paint } from './terminal.js';
import { CustodyLog } from '../store/custody-log.js';
import { verifyAll } from '../custody/verify.js';
import { isRunning, readDaemon } from '../store/heartbeat.js';
import {
  cliActor,
  printJson,
  ProblemError,
  resolveConfig,
  UsageError,
  withStore,
  withStoreAsync,
  type GlobalOptions,
} from './context.js';
import { loadDockPublicKey } from '../crypto/signing.js';
import type { RemoteCheck } from '../replication/remote-verify.js';
import { loadCredentials } from '../replication/credentials.js';
import { requeueReplication, unreplicated } from '../store/replication-jobs.js';
import { retryFailed } from '../store/operator.js';
import { ago, bytes, printable, table } from '../lib/format.js';

/** Every status a recording can have; `deleted`: removed from the archive by retention. */
const STATUSES: RecordingStatus[] = ['pending', 'copying', 'verified', 'failed', 'deleted'];

/** Unknown ids and serials are a problem (exit 1) named as the user typed them, as `hold` does. */
function mustKnowCamera(db: Db, serial: string): void {
  // A camera assigned to an officer before it ever docked is known by its custody events only.
  if (!cameraKnown(db, serial)) throw new ProblemError(`no camera ${printable(serial)}`);
}

function mustKnowRecording(db: Db, id: string): void {
  if (!recordingExists(db, id)) throw new ProblemError(`no recording ${printable(id)}`);
}

export function registerReadCommands(program: Command, g: () => GlobalOptions): void {
  program
    .command('cameras')
    .description('every camera ever seen: serial, model, firmware, slot, docked now, last seen, clock skew')
    .option('--json', 'machine-readable output')
    .action((o: { json?: boolean }) =>
      withStore(g(), (db) => {
        const running = isRunning(readDaemon(db));
        const rows = camerasBySerial(db);
        const cams = rows.map((r) => ({
          serial: r.serial,
          model: r.model,
          firmware: r.firmware,
          slot: r.slot,
          docked: running && r.docked === 1,
          firstSeen: r.first_seen,
          lastSeen: r.last_seen,
          clockSkewSeconds: r.clock_skew_s,
          visits: r.visit,
          battery: r.battery_json ? JSON.parse(r.battery_json) : null,
        }));
        if (o.json) return printJson(cams);
        if (!cams.length) return console.log('no cameras seen yet');
        console.log(
          table(
            ['SERIAL', 'MODEL', 'FIRMWARE', 'SLOT', 'DOCKED', 'LAST SEEN', 'CLOCK SKEW', 'VISITS'],
            cams.map((c) => [
              printable(c.serial),
              printable(c.model),
              printable(c.firmware),
              printable(c.slot),
              c.docked ? 'yes' : 'no',
              ago(c.lastSeen),
              c.clockSkewSeconds === null ? '-' : `${c.clockSkewSeconds > 0 ? '+' : ''}${c.clockSkewSeconds}s`,
              c.visits,
            ]),
          ),
        );
      }),
    );

  program
    .command('recordings')
    .description('recordings and where they stand')
    .option('--camera <serial>', 'only this camera')
    .option('--status <status>', `only this status (${STATUSES.join('|')})`)
    .option('--json', 'machine-readable output')
    .action((o: { camera?: string; status?: string; json?: boolean }) => {
      if (o.status !== undefined && !(STATUSES as string[]).includes(o.status))
        throw new UsageError(`--status must be one of ${STATUSES.join(', ')}`);
      withStore(g(), (db) => {
        if (o.camera !== undefined) mustKnowCamera(db, o.camera);
        const it = iterateRecordings(db, { camera: o.camera, status: o.status });
        if (o.json) {
          // Streamed so that 100,000 recordings never sit in one string.
          let first = true;
          process.stdout.write('[');
          for (const r of it) {
            process.stdout.write((first ? '\n  ' : ',\n  ') + JSON.stringify(recordingJson(r)));
            first = false;
          }
          process.stdout.write(first ? ']\n' : '\n]\n');
          return;
        }
        const p = paint(colourWanted(g()));
        const shade: Record<RecordingStatus, (s: string) => string> = {
          verified: p.good,
          failed: p.bad,
          pending: p.warn,
          copying: p.warn,
          deleted: p.dim,
        };
        const rows: Array<Array<string | number>> = [];
        for (const r of it) {
          const j = recordingJson(r);
          rows.push([
            j.id,
            printable(j.camera),
            printable(j.officer),
            printable(j.sourcePath),
            bytes(j.bytes),
            shade[j.status](j.status),
            j.attempts,
            j.deletedFromCamera ? 'yes' : 'no',
            j.sha256 ? j.sha256.slice(0, 16) + '…' : printable(j.lastError),
          ]);
        }
        console.log(
          rows.length
            ? table(
                ['ID', 'CAMERA', 'OFFICER', 'SOURCE', 'SIZE', 'STATUS', 'TRIES', 'OFF CAMERA', 'SHA-256 / LAST ERROR'],
                rows,
              )
            : 'no recordings',
        );
      });
    });

  program
    .command('custody')
    .description('custody events of a recording or a camera, oldest first')
    .option('--recording <id>', 'events of this recording')
    .option('--camera <serial>', 'events of this camera')
    .option('--json', 'machine-readable output')
    .action((o: { recording?: string; camera?: string; json?: boolean }) => {
      if (!o.recording === !o.camera) throw new UsageError('give exactly one of --recording ID or --camera SERIAL');
      withStore(g(), (db) => {
        if (o.recording !== undefined) mustKnowRecording(db, o.recording);
        else mustKnowCamera(db, o.camera!);
        const log = new CustodyLog(db);
        const events = o.recording ? log.forRecording(o.recording) : log.forCamera(o.camera!);
        if (o.json) return printJson(events);
        if (!events.length) return console.log('no custody events');
        console.log(
          table(
            ['SEQ', 'AT', 'TYPE', 'CAMERA', 'RECORDING', 'ACTOR', 'DETAILS'],
            events.map((e) => [
              e.seq,
              e.at,
              e.type,
              printable(e.camera),
              e.recording,
              e.actor,
              printable(JSON.stringify(e.details)).slice(0, 100),
            ]),
          ),
        );
      });
    });

  program
    .command('verify')
    .description(
      'recompute the custody chain, check signed checkpoints, re-hash every archived file (a changed or missing one goes on its custody record); exit 1 on any problem',
    )
    .option('--quick', 'check the chain and file sizes only, without re-hashing')
    .option('--head <seq:hash>', 'also require this chain head, e.g. one taken from the logs (custody.checkpoint)')
    .option('--remote', 'also check every replicated recording in the object store (metadata sha256, retention)')
    .option(
      '--identity <file>',
      "a custodian's age identity file: also decrypt encrypted recordings (in memory) and check the plaintext SHA-256",
    )
    .option('--json', 'machine-readable output')
    .action((o: { quick?: boolean; json?: boolean; head?: string; remote?: boolean; identity?: string }) => {
      const head = o.head === undefined ? undefined : parseHead(o.head);
      const identities = o.identity === undefined ? undefined : readIdentities(o.identity);
      return withStoreAsync(g(), async (db, cfg) => {
        const progress = !o.json && process.stderr.isTTY;
        const custody = new CustodyLog(db, cliActor());
        const report = await verifyAll(db, {
          quick: o.quick,
          head,
          identities,
          // Every decryption of evidence is on the record, also one made only to check it.
          onDecrypted: (id, camera, sha256, ok) =>
            custody.record({
              type: 'recording.decrypted',
              camera,
              recording: id,
              sha256,
              details: { purpose: 'verify', ok },
            }),
          // So is a copy found changed or gone, and one found whole again.
          custody,
          key: loadDockPublicKey(cfg.dataDir),
          onFile: progress ? (n, total) => process.stderr.write(`\rchecking files ${n}/${total}`) : undefined,
        });
        if (progress) process.stderr.write('\n');
        let remote: RemoteCheck | null = null;
        if (o.remote) {
          if (!cfg.replication) throw new UsageError('--remote needs a replication section in the config');
          // The S3 client takes most of a second to load: only commands that talk to the store pay it.
          const { ObjectStore } = await import('../replication/store.js');
          const { verifyRemote } = await import('../replication/remote-verify.js');
          const store = new ObjectStore(cfg.replication, loadCredentials(cfg.replication));
          try {
            remote = await verifyRemote(db, store);
          } finally {
            store.destroy();
          }
          if (remote.missing.length || remote.mismatched.length || remote.unlocked.length) report.ok = false;
        }
        if (o.json) {
          printJson({
            chain: {
              ok: report.chain.ok,
              events: report.chain.events,
              firstBadSeq: report.chain.firstBadSeq,
              reason: report.chain.reason,
              head: report.chain.head,
            },
            files: report.files,
            checkpoints: report.checkpoints,
            head: report.head,
            remote,
            ok: report.ok,
          });
        } else {
          const p = paint(colourWanted(g()));
          console.log(
            report.chain.ok
              ? `custody chain   ${p.good('ok')} (${report.chain.events} events)`
              : `custody chain   ${p.bad('BROKEN')} at seq ${report.chain.firstBadSeq}: ${report.chain.reason}`,
          );
          console.log(`checkpoints     ${report.checkpoints.ok}/${report.checkpoints.checked} signed heads ok`);
          for (const b of report.checkpoints.bad) console.log(`  ${p.bad('BAD CHECKPOINT')} seq ${b.seq}: ${b.reason}`);
          if (report.head)
            console.log(
              report.head.ok
                ? `head ${report.head.seq}   ${p.good('matches')}`
                : `head ${report.head.seq}   ${p.bad('MISMATCH')}: ${report.head.reason}`,
            );
          const filesOk = report.files.ok === report.files.checked;
          console.log(
            `archived files  ${(filesOk ? p.good : p.bad)(`${report.files.ok}/${report.files.checked} ok`)}${o.quick ? ' (sizes only)' : ''}`,
          );
          for (const id of report.files.missing) console.log(`  ${p.bad('missing')}    ${id}`);
          // Missing and undecryptable files have their own lines; these say what else disagrees with custody.
          for (const d of report.files.disagreements) {
            if (d.disagrees === 'row')
              console.log(
                `  ${p.bad('ROW MISMATCH')}  ${d.recording}  its recordings row disagrees with custody: ${d.detail}`,
              );
            else if (report.files.mismatched.includes(d.recording))
              console.log(
                `  ${p.bad('MISMATCH')}      ${d.recording}  the archived file disagrees with custody: ${d.detail}`,
              );
          }
          for (const id of report.files.decryptFailed ?? [])
            console.log(`  ${p.bad('DOES NOT DECRYPT')} to its recorded SHA-256  ${id}`);
          if (remote) {
            console.log(`remote objects  ${remote.ok}/${remote.checked} ok`);
            for (const id of remote.missing) console.log(`  missing in the store  ${id}`);
            for (const id of remote.mismatched) console.log(`  SHA-256 MISMATCH in the store  ${id}`);
            for (const id of remote.unlocked) console.log(`  retention shorter than recorded  ${id}`);
          }
        }
        if (!report.ok) process.exitCode = 1;
      });
    });

  program
    .command('key')
    .description("print this dock's public signing key (checks signed custody checkpoints and exports)")
    .option('--json', 'machine-readable output')
    .action((o: { json?: boolean }) => {
      const cfg = resolveConfig(g());
      const key = loadDockPublicKey(cfg.dataDir);
      if (!key) throw new ProblemError(`no dock key in ${cfg.dataDir} yet: the daemon creates it at its first start`);
      if (o.json) return printJson({ publicKey: key.publicKeyB64, keyId: key.keyId, algorithm: 'Ed25519' });
      console.log(`${key.publicKeyB64}  (Ed25519, key id ${key.keyId})`);
    });

  program
    .command('replicate')
    .description('queue verified recordings for replication to the object store (backfill); the daemon uploads them')
    .option('--all', 'every verified recording not yet replicated')
    .option('--recording <id>', 'one recording')
    .option('--json', 'machine-readable output')
    .action((o: { all?: boolean; recording?: string; json?: boolean }) => {
      if (!o.all === !o.recording) throw new UsageError('give --all or --recording ID');
      withStore(g(), (db, cfg) => {
        if (!cfg.replication)
          throw new UsageError('replication is not configured (no replication section in the config)');
        if (o.recording) mustKnowRecording(db, o.recording);
        const rows = unreplicated(db, o.recording);
        if (o.recording && rows.length === 0)
          throw new ProblemError(`recording ${o.recording} is not verified or already replicated`);
        requeueReplication(db, rows);
        if (o.json) return printJson({ queued: rows });
        console.log(`${rows.length} recordings queued for replication`);
      });
    });

  program
    .command('retry')
    .description('put failed recordings (and failed deletions from cameras) back in the queue')
    .argument('[id]', 'one recording')
    .option('--camera <serial>', 'every failed recording of this camera')
    .option('--all', 'every failed recording')
    .option('--json', 'machine-readable output')
    .action((id: string | undefined, o: { camera?: string; all?: boolean; json?: boolean }) => {
      const chosen = [id !== undefined, o.camera !== undefined, !!o.all].filter(Boolean).length;
      if (chosen !== 1) throw new UsageError('give exactly one of ID, --camera SERIAL or --all');
      withStore(g(), (db) => {
        if (id !== undefined) mustKnowRecording(db, id);
        if (o.camera !== undefined) mustKnowCamera(db, o.camera);
        const custody = new CustodyLog(db, cliActor());
        const result = retryFailed(
          db,
          custody,
          id !== undefined ? { recording: id } : o.camera !== undefined ? { camera: o.camera } : {},
        );
        if (id !== undefined && result.requeued.length === 0 && result.releasesRequeued === 0)
          throw new ProblemError(`recording ${id} is not failed (or the camera no longer holds it)`);
        if (o.json) return printJson(result);
        console.log(
          `${result.requeued.length} recordings back in the queue${result.releasesRequeued ? `, ${result.releasesRequeued} deletions from cameras` : ''}; a running daemon picks them up when the camera is docked`,
        );
      });
    });
}

function parseHead(s: string): { seq: number; hash: string } {
  const m = /^(\d+):([0-9a-f]{64})$/.exec(s.trim());
  if (!m) throw new UsageError('--head must be SEQ:HASH, e.g. 512:3fa9… (64 hex digits)');
  return { seq: Number(m[1]), hash: m[2]! };
}
