/** `dockd settings` and `dockd events`: what cameras report of their configuration and their own event log. */
import type { Command } from 'commander';
import { profileFor } from '../camera-config.js';
import type { Config } from '../config.js';
import type { Db } from '../store/db.js';
import { cameraModel, cameraModels } from '../store/cameras.js';
import {
  cameraEvents,
  cameraSettings,
  type CameraSettingsRecord,
  type PendingSetting,
  type Settings,
} from '../store/camera-settings.js';
import { printJson, ProblemError, withStore, type GlobalOptions } from './context.js';
import { ago, printable, table } from '../lib/format.js';

/** The contract's `settings --json` element. */
export interface SettingsJson {
  serial: string;
  profile: string | null;
  settings: Settings | null;
  pending: Record<string, PendingSetting>;
  configuredAt: string | null;
  reportedAt: string | null;
}

function requireCamera(db: Db, serial: string): { model: string } {
  const cam = cameraModel(db, serial);
  if (!cam) throw new ProblemError(`no camera ${serial}`);
  return cam;
}

/**
 * Each camera against the profile the config gives it now: when the config changed since the
 * camera's last docking, what differs is pending until it docks again.
 */
export function settingsOf(db: Db, cfg: Config, serial?: string): SettingsJson[] {
  const cams = serial === undefined ? cameraModels(db) : [{ serial, model: requireCamera(db, serial).model }];
  const stored = new Map<string, CameraSettingsRecord>(cameraSettings(db, serial).map((r) => [r.camera, r]));
  return cams.map((c) => {
    const rec = stored.get(c.serial);
    const profile = profileFor(cfg.settings, { serial: c.serial, model: c.model ?? '' });
    let pending = rec?.pending ?? {};
    if ((rec?.profile ?? null) !== (profile?.name ?? null)) {
      // Only the clock's entry is about the camera rather than its profile.
      pending = rec?.pending.clock ? { clock: rec.pending.clock } : {};
      for (const [k, v] of Object.entries(profile?.values ?? {})) {
        if (rec?.settings?.[k] !== v)
          pending[k] = {
            wanted: v,
            reported: rec?.settings?.[k] ?? null,
            reason: 'the profile changed since the last docking; applied at the next one',
          };
      }
    }
    return {
      serial: c.serial,
      profile: profile?.name ?? null,
      settings: rec?.settings ?? null,
      pending,
      configuredAt: rec?.configuredAt ?? null,
      reportedAt: rec?.reportedAt ?? null,
    };
  });
}

function show(v: unknown): string {
  return v === null || v === undefined ? '-' : printable(typeof v === 'string' ? v : JSON.stringify(v));
}

export function registerCameraSettingsCommands(program: Command, g: () => GlobalOptions): void {
  program
    .command('settings')
    .description(
      "each camera's reported settings, the profile it should have (settings.assign), what is still pending, and when dockd last configured it",
    )
    .argument('[serial]', 'one camera')
    .option('--json', 'machine-readable output')
    .action((serial: string | undefined, o: { json?: boolean }) =>
      withStore(g(), (db, cfg) => {
        const rows = settingsOf(db, cfg, serial);
        if (o.json) return printJson(rows);
        if (!rows.length) return console.log('no cameras seen yet');
        if (serial === undefined) {
          console.log(
            table(
              ['CAMERA', 'PROFILE', 'SETTINGS', 'PENDING', 'CONFIGURED'],
              rows.map((r) => [
                printable(r.serial),
                r.profile ?? '-',
                r.settings === null ? 'none reported' : Object.keys(r.settings).length,
                Object.keys(r.pending).join(', ') || '-',
                ago(r.configuredAt),
              ]),
            ),
          );
          return;
        }
        const r = rows[0]!;
        console.log(
          `${printable(r.serial)}: profile ${r.profile ?? '(none)'}, last configured ${r.configuredAt ?? 'never'}, reported ${r.reportedAt ?? 'never'}`,
        );
        const keys = [...new Set([...Object.keys(r.settings ?? {}), ...Object.keys(r.pending)])].sort();
        if (!keys.length) return console.log('the camera reports no settings');
        console.log(
          table(
            ['SETTING', 'REPORTED', 'WANTED', 'PENDING BECAUSE'],
            keys.map((k) => [
              printable(k),
              show(r.settings?.[k]),
              show(r.pending[k]?.wanted),
              r.pending[k]?.reason ?? '-',
            ]),
          ),
        );
      }),
    );

  program
    .command('events')
    .description(
      "the camera's own event log (power, display, recording) as dockd stored it, oldest first, times corrected by the clock skew",
    )
    .requiredOption('--camera <serial>', 'the camera')
    .option('--json', 'machine-readable output')
    .action((o: { camera: string; json?: boolean }) =>
      withStore(g(), (db) => {
        requireCamera(db, o.camera);
        if (o.json) {
          // Streamed: years of a camera's log never sit in one string.
          let first = true;
          process.stdout.write('[');
          for (const e of cameraEvents(db, o.camera)) {
            process.stdout.write(
              (first ? '\n  ' : ',\n  ') +
                JSON.stringify({ camera: o.camera, at: new Date(e.at).toISOString(), type: e.type }),
            );
            first = false;
          }
          process.stdout.write(first ? ']\n' : '\n]\n');
          return;
        }
        const rows = [...cameraEvents(db, o.camera)].map((e) => [new Date(e.at).toISOString(), e.type]);
        console.log(
          rows.length ? table(['AT (true time)', 'EVENT'], rows) : `no events stored for ${printable(o.camera)}`,
        );
      }),
    );
}
