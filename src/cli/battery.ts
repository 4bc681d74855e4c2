import type { Command } from 'commander';
import { cameraHealth, cameraSamples, fleetBattery } from '../battery/fleet.js';
import { sparkline } from '../battery/format.js';
import { drainByProfile, profileChangeLine } from '../battery/profiles.js';
import { profileHistory } from '../store/camera-settings.js';
import { cameraDocked } from '../store/cameras.js';
import { printJson, ProblemError, UsageError, withStore, type GlobalOptions } from './context.js';
import { printable, table } from '../lib/format.js';

export function registerBatteryCommand(program: Command, g: () => GlobalOptions): void {
  program
    .command('battery')
    .description(
      'battery state and health per camera: drain, projected runtime from full, status; one camera: its shifts and samples',
    )
    .argument('[serial]', 'one camera: its history')
    .option('--since <time>', 'with SERIAL: only samples from this time on (ISO-8601)')
    .option('--json', 'machine-readable output')
    .action((serial: string | undefined, o: { since?: string; json?: boolean }) =>
      withStore(g(), (db, cfg) => {
        const shift = cfg.battery.shiftHours;
        if (serial === undefined) {
          if (o.since) throw new UsageError('--since goes with a SERIAL');
          const fleet = fleetBattery(db, shift);
          if (o.json) return printJson(fleet);
          if (!fleet.length) return console.log('no cameras seen yet');
          console.log(
            table(
              ['CAMERA', 'NOW', 'HEALTH', 'DRAIN %/h', `RUNTIME (shift ${shift} h)`, 'TREND', 'STATUS'],
              fleet.map((c) => [
                printable(c.serial),
                c.percent === null ? '-' : `${c.percent}%${c.charging ? ' ⚡' : ''}`,
                c.healthPercent === null ? '-' : `${c.healthPercent}%`,
                c.drainPercentPerHour,
                c.projectedRuntimeHours === null ? '-' : `${c.projectedRuntimeHours} h`,
                `${sparkline(c.shiftDrains)} ${c.trend}`,
                c.status === 'ok' || c.status === 'unknown' ? c.status : c.status.toUpperCase(),
              ]),
            ),
          );
          const short = fleet.filter((c) => c.status === 'short').length;
          if (short) console.log(`\n${short} camera${short === 1 ? '' : 's'} will not last a ${shift} h shift`);
          return;
        }
        if (!cameraDocked(db, serial)) throw new ProblemError(`no camera ${serial}`);
        let since = 0;
        if (o.since) {
          since = Date.parse(o.since);
          if (Number.isNaN(since)) throw new UsageError(`--since must be a date/time, got "${o.since}"`);
        }
        const { health, view } = cameraHealth(db, serial, shift, since);
        const samples = cameraSamples(db, serial, since);
        const byProfile = drainByProfile(samples, profileHistory(db, serial), shift);
        if (o.json) return printJson([{ ...view, byProfile, shifts: health.shifts, samples }]);
        console.log(
          `${printable(serial)}: ${view.status.toUpperCase()}  health ${view.healthPercent ?? '-'}%  drain ${view.drainPercentPerHour ?? '-'} %/h  runtime ${view.projectedRuntimeHours ?? '-'} h from full (shift ${shift} h)`,
        );
        console.log(
          `drain per shift ${sparkline(view.shiftDrains)}  trend ${view.trend}${view.trendPercentPerHourPerShift !== null ? ` (${view.trendPercentPerHourPerShift} %/h per shift)` : ''}`,
        );
        if (view.minutesToFull !== null) console.log(`charging: about ${view.minutesToFull} min to full`);
        if (byProfile.some((p) => p.profile !== null)) {
          console.log('');
          console.log(
            table(
              ['PROFILE', 'FROM', 'COUNTED h', 'DRAIN %/h', 'RUNTIME'],
              byProfile.map((p) => [
                p.profile ?? '(before any profile)',
                p.from === null ? '-' : new Date(p.from).toISOString().slice(0, 10),
                p.countedHours,
                p.drainPercentPerHour ?? '-',
                p.projectedRuntimeHours === null ? '-' : `${p.projectedRuntimeHours} h`,
              ]),
            ),
          );
          const line = profileChangeLine(byProfile);
          if (line) console.log(line);
        }
        console.log('');
        console.log(
          table(
            ['SHIFT START', 'HOURS', 'USED %', 'DRAIN %/h'],
            health.shifts.map((s) => [
              new Date(s.start).toISOString(),
              s.hours.toFixed(1),
              s.percentUsed.toFixed(0),
              s.drainPercentPerHour?.toFixed(2) ?? '-',
            ]),
          ),
        );
        console.log('');
        console.log(
          table(
            ['AT (dock time)', 'PERCENT', 'CHARGING', 'SOURCE'],
            samples
              .slice(-50)
              .map((s) => [new Date(s.at).toISOString(), s.percent, s.charging ? 'yes' : 'no', s.source]),
          ),
        );
        if (samples.length > 50) console.log(`(last 50 of ${samples.length} samples; --json for all)`);
      }),
    );
}
