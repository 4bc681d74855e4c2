/** `dockd stages`: the de-escalation statistics of the cameras' event logs (docs/stages.md). */
import { Option, type Command } from 'commander';
import type { StageFigures } from '../stages/model.js';
import { stagesOf, type StagesBy, type StagesJson } from '../stages/read.js';
import { parseTime, printJson, UsageError, withStore, type GlobalOptions } from './context.js';
import { printable, table } from '../lib/format.js';

type Row = { group: string; withheld?: boolean } & Partial<StageFigures>;

const COLUMNS: Array<[string, (r: Row) => number | string | null | undefined]> = [
  ['cameras', (r) => r.cameras],
  ['shifts', (r) => r.shifts],
  ['shiftHours', (r) => r.shiftHours],
  ['displayActivations', (r) => r.displayActivations],
  ['escalated', (r) => r.escalated],
  ['escalationRate', (r) => r.escalationRate],
  ['directRecordings', (r) => r.directRecordings],
  ['recordings', (r) => r.recordings],
  ['activationsPer100ShiftHours', (r) => r.activationsPer100ShiftHours],
  ['recordingsPer100ShiftHours', (r) => r.recordingsPer100ShiftHours],
  ['displayToRecordingMedianSeconds', (r) => r.displayToRecording?.medianSeconds],
  ['displayToRecordingP90Seconds', (r) => r.displayToRecording?.p90Seconds],
  ['displayOnlyEpisodes', (r) => r.displayOnly?.count],
  ['displayOnlyMedianSeconds', (r) => r.displayOnly?.medianSeconds],
  ['displayOnlyP90Seconds', (r) => r.displayOnly?.p90Seconds],
];

function rows(s: StagesJson): Row[] {
  const groups: Row[] = (s.groups ?? s.weeks).map((g) => ('week' in g ? { ...g, group: g.week } : g));
  return [...groups, { ...s, group: 'all' }];
}

/** A group name is an officer's or unit's name as typed: quoted, and never read as a formula. */
function csvField(v: number | string | null | undefined): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return String(Math.round(v * 1e6) / 1e6);
  const safe = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(safe) || safe !== v ? `"${safe.replace(/"/g, '""')}"` : safe;
}

function printCsv(s: StagesJson): void {
  const head = [s.by ?? 'week', ...COLUMNS.map(([name]) => name), 'withheld'];
  const lines = rows(s).map((r) =>
    [
      csvField(r.group),
      ...COLUMNS.map(([name, get]) => csvField(r.withheld && name !== 'shifts' ? null : get(r))),
      r.withheld ? 'true' : '',
    ].join(','),
  );
  process.stdout.write([head.join(','), ...lines].join('\r\n') + '\r\n');
}

const pct = (v: number | null | undefined) => (v === null || v === undefined ? '-' : `${Math.round(v * 100)} %`);
const num = (v: number | null | undefined, digits = 1) => (v === null || v === undefined ? '-' : v.toFixed(digits));

function printTable(s: StagesJson): void {
  if (s.from === null && !s.camerasWithoutData) return console.log('no camera has handed an event log yet');
  console.log(
    `${s.from ?? '(no data)'} → ${s.to ?? '(no data)'}: ${s.cameras} cameras with data${s.camerasWithoutData ? `, ${s.camerasWithoutData} without an event log (no data, not zero)` : ''}`,
  );
  console.log(
    table(
      [
        (s.by ?? 'week').toUpperCase(),
        'SHIFTS',
        'HOURS',
        'DISPLAY',
        'ESCALATED',
        'RATE',
        'DIRECT',
        'DISPLAY/100H',
        'TO REC. MEDIAN S',
        'DISPLAY-ONLY MEDIAN S',
      ],
      rows(s).map((r) =>
        r.withheld
          ? [
              printable(r.group),
              r.shifts ?? 0,
              '(fewer shifts than privacy.minGroupSize: withheld)',
              '',
              '',
              '',
              '',
              '',
              '',
              '',
            ]
          : [
              printable(r.group),
              r.shifts ?? 0,
              num(r.shiftHours),
              r.displayActivations ?? 0,
              r.escalated ?? 0,
              pct(r.escalationRate),
              r.directRecordings ?? 0,
              num(r.activationsPer100ShiftHours),
              num(r.displayToRecording?.medianSeconds),
              num(r.displayOnly?.medianSeconds),
            ],
      ),
    ),
  );
}

export function registerStagesCommand(program: Command, g: () => GlobalOptions): void {
  program
    .command('stages')
    .description(
      "de-escalation statistics of the cameras' event logs: display activations, how many escalated to a recording, direct recordings, per shift-hour and per week",
    )
    .option('--from <time>', 'count events at or after this true time (ISO-8601)')
    .option('--to <time>', 'count events before this true time (ISO-8601)')
    .addOption(
      new Option(
        '--by <group>',
        'one row per week, camera, unit (dockd assign --unit) or officer (only with privacy.perOfficerStatistics)',
      ).choices(['week', 'camera', 'unit', 'officer']),
    )
    .option('--json', 'machine-readable output')
    .option('--csv', 'one CSV row per group and a last row "all"')
    .action((o: { from?: string; to?: string; by?: StagesBy; json?: boolean; csv?: boolean }) =>
      withStore(g(), (db, cfg) => {
        if (o.json && o.csv) throw new UsageError('--json and --csv do not go together');
        if (o.by === 'officer' && !cfg.privacy.perOfficerStatistics) {
          throw new UsageError(
            '--by officer is off: figures per officer would let the cameras be used to watch officers; set privacy.perOfficerStatistics to true in the config to allow it',
          );
        }
        const from = parseTime('--from', o.from)?.getTime() ?? null;
        const to = parseTime('--to', o.to)?.getTime() ?? null;
        if (from !== null && to !== null && to <= from) throw new UsageError('--to must be after --from');
        const s = stagesOf(db, { from, to, by: o.by, minGroupSize: cfg.privacy.minGroupSize });
        if (o.json) return printJson(s);
        if (o.csv) return printCsv(s);
        printTable(s);
      }),
    );
}
