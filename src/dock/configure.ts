/**
 * What the dock does to a camera's configuration at docking, after the camera's visit is recorded
 * and before its recordings are listed: stores its event log, sets its clock, brings its settings
 * to its profile. The skew measured before the clock is set is the one that places this visit's
 * logs and recordings in time.
 *
 * Nothing here can fail a docking or touch a recording: every problem is one log line and, for
 * settings, a `pending` entry that `dockd settings` shows.
 */
import type { Logger } from 'pino';
import { CAMERA_EVENT_TYPES, MAX_CAMERA_STRING, type CameraSession, type CameraSettings } from '../../drivers/types.js';
import { profileFor, type ClockConfig, type SettingsConfig } from '../camera-config.js';
import type { CustodyLog } from '../store/custody-log.js';
import type { Db } from '../store/db.js';
import {
  noteProfile,
  saveCameraSettings,
  storeCameraEvents,
  type PendingSetting,
  type Settings,
  type StoredCameraEvent,
} from '../store/camera-settings.js';
import { EARLIEST_PLAUSIBLE_MS, MAX_FUTURE_MS } from '../battery/device-log.js';

/** More settings than any camera menu has: the rest of a hostile camera's answer is dropped. */
const MAX_SETTINGS = 256;
/** The most event-log entries taken from one docking; the newest are kept. */
export const MAX_EVENTS_PER_VISIT = 100_000;

export interface ConfigureOptions {
  clock: ClockConfig;
  settings: SettingsConfig | null;
  /** Event-log entries before this (dock clock, ms) are not stored: they were pruned. */
  earliest(): number;
}

export interface DockedCamera {
  serial: string;
  model: string;
  visit: number;
  session: CameraSession;
  /** Camera clock minus dock clock in seconds, measured at docking before any clock was set; null when unreadable. */
  skew: number | null;
  log: Logger;
}

interface Deferred {
  cam: DockedCamera;
  profile: string;
  before: Settings;
  wanted: CameraSettings;
  pending: Record<string, PendingSetting>;
}

export class CameraConfigurator {
  /** Settings held back until the camera is cleared, by serial. */
  private readonly deferred = new Map<string, Deferred>();

  constructor(
    private readonly db: Db,
    private readonly custody: CustodyLog,
    private readonly opts: ConfigureOptions,
  ) {}

  async atDocking(cam: DockedCamera): Promise<void> {
    // Whatever was held back at an earlier docking was for a session that is gone.
    this.deferred.delete(cam.serial);
    const problems: Record<string, PendingSetting> = {};
    try {
      await this.storeEventLog(cam);
      await this.syncClock(cam, problems);
      await this.configureSettings(cam, problems);
    } catch (err) {
      cam.log.warn(
        { event: 'camera.configure_failed', error: (err as Error).message },
        `camera ${cam.serial} could not be configured: ${(err as Error).message}`,
      );
    }
  }

  private async storeEventLog({ serial, visit, session, skew, log }: DockedCamera): Promise<void> {
    if (!session.eventLog) return;
    if (skew === null) {
      log.info(
        { event: 'camera.event_log_skipped', reason: 'clock unreadable' },
        `camera ${serial}: its event log is not stored, its clock cannot be read to place it in time`,
      );
      return;
    }
    let entries;
    try {
      entries = await session.eventLog();
    } catch (err) {
      log.warn(
        { event: 'camera.event_log_failed', error: (err as Error).message },
        `camera ${serial}: cannot read its event log: ${(err as Error).message}`,
      );
      return;
    }
    const events = trueTimes(entries, skew, this.opts.earliest());
    const added = storeCameraEvents(this.db, serial, visit, events);
    if (added)
      log.info(
        { event: 'camera.events_ingested', events: added, skewSeconds: skew },
        `stored ${added} entries of camera ${serial}'s event log`,
      );
  }

  private async syncClock(
    { serial, session, skew, log }: DockedCamera,
    problems: Record<string, PendingSetting>,
  ): Promise<void> {
    const { sync, maxSkewSeconds } = this.opts.clock;
    if (!sync || !session.capabilities.clock || !session.setClock) return;
    if (skew === null) {
      problems.clock = { wanted: 'dock time', reported: null, reason: "the camera's clock cannot be read" };
      log.info({ event: 'camera.clock_unreadable' }, `camera ${serial}: its clock cannot be read, so it is not set`);
      return;
    }
    if (Math.abs(skew) <= maxSkewSeconds) return;
    const setTo = new Date();
    try {
      await session.setClock(setTo);
    } catch (err) {
      problems.clock = {
        wanted: 'dock time',
        reported: `${skew} s off`,
        reason: `the camera refused the time: ${(err as Error).message}`,
      };
      log.warn(
        { event: 'camera.clock_set_failed', skewSeconds: skew, error: (err as Error).message },
        `camera ${serial}: cannot set its clock: ${(err as Error).message}`,
      );
      return;
    }
    this.custody.record({
      type: 'camera.clock_set',
      camera: serial,
      at: setTo,
      details: { skewSeconds: skew, setTo: setTo.toISOString(), maxSkewSeconds },
    });
    log.info(
      { event: 'camera.clock_set', skewSeconds: skew, setTo: setTo.toISOString() },
      `camera ${serial}: clock was ${skew} s off, set to ${setTo.toISOString()}`,
    );
  }

  private async configureSettings(cam: DockedCamera, pending: Record<string, PendingSetting>): Promise<void> {
    const { serial, model, session, log } = cam;
    const profile = profileFor(this.opts.settings, { serial, model });
    const now = new Date();
    if (!session.capabilities.settings || !session.settings) {
      if (profile) {
        for (const [k, v] of Object.entries(profile.values))
          pending[k] = { wanted: v, reason: 'the camera cannot be configured' };
        log.info(
          { event: 'camera.settings_unsupported', profile: profile.name },
          `camera ${serial} cannot be configured; profile ${profile.name} is not applied`,
        );
      }
      this.save(serial, null, profile?.name ?? null, pending, null, now);
      return;
    }
    let before: Settings;
    try {
      before = boundSettings(await session.settings());
    } catch (err) {
      log.warn(
        { event: 'camera.settings_unreadable', error: (err as Error).message },
        `camera ${serial}: cannot read its settings: ${(err as Error).message}`,
      );
      if (profile)
        for (const [k, v] of Object.entries(profile.values))
          pending[k] = { wanted: v, reason: `the camera's settings cannot be read: ${(err as Error).message}` };
      this.save(serial, null, profile?.name ?? null, pending, null, now);
      return;
    }
    if (!profile) {
      this.save(serial, before, null, pending, null, now);
      return;
    }

    const wanted: CameraSettings = {};
    for (const [k, v] of Object.entries(profile.values)) {
      if (!Object.hasOwn(before, k))
        pending[k] = { wanted: v, reported: null, reason: 'the camera does not report this setting' };
      else if (typeof before[k] !== typeof v)
        pending[k] = {
          wanted: v,
          reported: before[k]!,
          reason: `the camera reports a ${typeof before[k]}, the profile gives a ${typeof v}`,
        };
      else if (before[k] !== v) wanted[k] = v;
    }
    if (Object.keys(wanted).length > 0 && session.capabilities.settingsDisturbRecordings) {
      // Not while recordings are on the camera: taking settings could disturb them.
      for (const [k, v] of Object.entries(wanted))
        pending[k] = {
          wanted: v,
          reported: before[k]!,
          reason: 'waits until every recording is off the camera: taking settings could disturb them',
        };
      this.deferred.set(serial, { cam, profile: profile.name, before, wanted, pending: { ...pending } });
      this.record(cam, profile.name, before, before, pending, now);
      return;
    }
    await this.applyAndRecord(cam, profile.name, before, wanted, pending);
  }

  /**
   * The camera has nothing left to offload: settings held back because taking them could disturb
   * recordings are applied now. Called by whoever learns the camera is cleared.
   */
  async cleared(serial: string): Promise<void> {
    const d = this.deferred.get(serial);
    if (!d) return;
    this.deferred.delete(serial);
    const pending = Object.fromEntries(Object.entries(d.pending).filter(([k]) => !Object.hasOwn(d.wanted, k)));
    try {
      await this.applyAndRecord(d.cam, d.profile, d.before, d.wanted, pending);
    } catch (err) {
      d.cam.log.warn(
        { event: 'camera.configure_failed', error: (err as Error).message },
        `camera ${serial} could not be configured: ${(err as Error).message}`,
      );
    }
  }

  private async applyAndRecord(
    cam: DockedCamera,
    profile: string,
    before: Settings,
    wanted: CameraSettings,
    pending: Record<string, PendingSetting>,
  ): Promise<void> {
    let after = before;
    if (Object.keys(wanted).length > 0) {
      await applyEach(cam.session, wanted, pending);
      after = boundSettings(await cam.session.settings!());
      for (const [k, v] of Object.entries(wanted)) {
        if (after[k] !== v && !pending[k])
          pending[k] = { wanted: v, reported: after[k] ?? null, reason: 'the camera did not take the value' };
      }
    }
    this.record(cam, profile, before, after, pending, new Date());
  }

  private record(
    { serial, log }: DockedCamera,
    profile: string,
    before: Settings,
    after: Settings,
    pending: Record<string, PendingSetting>,
    now: Date,
  ): void {
    const changed = Object.keys(after).filter((k) => after[k] !== before[k]);
    const configuredAt = changed.length > 0 ? now : null;
    this.db
      .transaction(() => {
        if (changed.length > 0) {
          this.custody.append({
            type: 'camera.settings_changed',
            camera: serial,
            at: now,
            details: { profile, before, after, changed },
          });
        }
        saveCameraSettings(this.db, {
          camera: serial,
          settings: after,
          profile,
          pending,
          configuredAt: configuredAt?.toISOString() ?? null,
          reportedAt: now.toISOString(),
        });
        // The camera runs its profile from now on once nothing of it is pending.
        if (Object.keys(pending).every((k) => k === 'clock')) noteProfile(this.db, serial, profile, now.getTime());
      })
      .immediate();
    if (changed.length > 0)
      log.info(
        { event: 'camera.settings_changed', profile, changed },
        `camera ${serial}: ${changed.join(', ')} set for profile ${profile}`,
      );
    const open = Object.entries(pending);
    if (open.length > 0) {
      log.warn(
        { event: 'camera.settings_pending', profile, pending },
        `camera ${serial}: not as profile ${profile} wants: ${open.map(([k, p]) => `${k} (${p.reason})`).join('; ')}`,
      );
    }
  }

  private save(
    serial: string,
    settings: Settings | null,
    profile: string | null,
    pending: Record<string, PendingSetting>,
    configuredAt: Date | null,
    now: Date,
  ): void {
    this.db
      .transaction(() =>
        saveCameraSettings(this.db, {
          camera: serial,
          settings,
          profile,
          pending,
          configuredAt: configuredAt?.toISOString() ?? null,
          reportedAt: now.toISOString(),
        }),
      )
      .immediate();
  }
}

/**
 * Applies the wanted values in one call; when the camera refuses it, one key at a time, so that
 * the keys it takes are set and each refused one is pending with the camera's own reason.
 */
async function applyEach(
  session: CameraSession,
  wanted: CameraSettings,
  pending: Record<string, PendingSetting>,
): Promise<void> {
  try {
    await session.applySettings!(wanted);
    return;
  } catch (err) {
    if (Object.keys(wanted).length === 1) {
      const [k, v] = Object.entries(wanted)[0]!;
      pending[k] = { wanted: v, reason: `the camera refused it: ${(err as Error).message}` };
      return;
    }
  }
  for (const [k, v] of Object.entries(wanted)) {
    try {
      await session.applySettings!({ [k]: v });
    } catch (err) {
      pending[k] = { wanted: v, reason: `the camera refused it: ${(err as Error).message}` };
    }
  }
}

/** The camera's answer cut to a sane size: scalar values only, bounded keys and strings. */
function boundSettings(raw: unknown): Settings {
  const out: Settings = {};
  if (typeof raw !== 'object' || raw === null) return out;
  for (const [k, v] of Object.entries(raw).slice(0, MAX_SETTINGS)) {
    if (k.length > 64) continue;
    if (typeof v === 'string') out[k] = v.slice(0, MAX_CAMERA_STRING);
    else if (typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) out[k] = v;
  }
  return out;
}

/**
 * The entries worth storing, each with its true time: the camera's timestamp minus the skew
 * measured at this docking. Unknown types, impossible times and pruned ones are dropped.
 */
export function trueTimes(
  entries: ReadonlyArray<{ at: unknown; type: unknown }>,
  skewSeconds: number,
  earliest = 0,
  now = Date.now(),
): StoredCameraEvent[] {
  if (!Array.isArray(entries)) return [];
  const types: readonly string[] = CAMERA_EVENT_TYPES;
  const from = Math.max(EARLIEST_PLAUSIBLE_MS, earliest);
  const out: StoredCameraEvent[] = [];
  for (const e of entries.slice(-MAX_EVENTS_PER_VISIT)) {
    if (!(e?.at instanceof Date) || typeof e.type !== 'string' || !types.includes(e.type)) continue;
    const cameraAt = e.at.getTime();
    const at = Math.round(cameraAt - skewSeconds * 1000);
    if (!Number.isFinite(at) || at < from || at > now + MAX_FUTURE_MS) continue;
    out.push({ at, cameraAt, type: e.type });
  }
  return out;
}
