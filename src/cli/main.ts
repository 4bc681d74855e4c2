import { Command, CommanderError, Option } from 'commander';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError } from '../lib/config-error.js';
import { AlreadyRunningError } from '../store/lock.js';
import { VERSION } from '../version.js';
import { printJson, ProblemError, resolveConfig, UsageError, withStore, type GlobalOptions } from './context.js';
import { renderStatus, statusOf } from './status.js';
import { CLEAR_SCREEN, colourWanted, endQuietlyOnClosedPipe, paint } from './terminal.js';
import { addExamples } from './examples.js';

type Registrar = (program: Command, g: () => GlobalOptions) => void;

/**
 * Where each command group lives. Only the group of the command being run is loaded, so
 * `dockd status` does not pay for the modules behind `export`, `doctor` or `usb`.
 */
const GROUPS: Array<{ commands: string[]; load: () => Promise<Registrar> }> = [
  {
    commands: ['cameras', 'recordings', 'custody', 'verify', 'key', 'replicate', 'retry'],
    load: async () => (await import('./commands.js')).registerReadCommands,
  },
  {
    commands: [
      'export',
      'keygen',
      'verify-export',
      'hold',
      'release',
      'retention',
      'assign',
      'unassign',
      'assignments',
    ],
    load: async () => (await import('./evidence.js')).registerEvidenceCommands,
  },
  { commands: ['usb'], load: async () => (await import('./usb.js')).registerUsbCommand },
  { commands: ['doctor', 'backup'], load: async () => (await import('./admin.js')).registerAdminCommands },
  { commands: ['battery'], load: async () => (await import('./battery.js')).registerBatteryCommand },
  { commands: ['report'], load: async () => (await import('./report.js')).registerReportCommand },
  {
    commands: ['settings', 'events'],
    load: async () => (await import('./camera-settings.js')).registerCameraSettingsCommands,
  },
  { commands: ['stages'], load: async () => (await import('./stages.js')).registerStagesCommand },
  { commands: ['fleet'], load: async () => (await import('./fleet.js')).registerFleetCommand },
];

/** The command word in argv, skipping global options and their values. */
export function commandWord(argv: string[]): string | undefined {
  const args = argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--config' || a === '--data-dir') i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

export async function buildProgram(argv: string[] = []): Promise<Command> {
  const program = new Command();
  program
    .name('dockd')
    .description('Body-worn camera dock daemon: offloads, verifies and accounts for every recording')
    .version(VERSION)
    .addOption(new Option('--config <file>', 'JSON config file (default $DOCKD_CONFIG, else ./dockd.config.json)'))
    .addOption(new Option('--data-dir <dir>', 'data directory: dockd.db, archive/, staging/'))
    .addOption(new Option('--debug', 'show stack traces on errors'))
    .addOption(new Option('--no-color', 'no colours, also on a terminal (so does a non-empty NO_COLOR)'))
    .showHelpAfterError()
    .exitOverride();
  const g = (): GlobalOptions => program.opts<GlobalOptions>();

  program
    .command('start')
    .description(
      'run the daemon in the foreground; SIGTERM/SIGINT stop it; logs: JSON lines, or readable lines on a terminal',
    )
    .option('--sim-dir <dir>', 'watch this folder as a simulated dock')
    .option('--json-logs', 'JSON log lines also on a terminal')
    .action(async (o: { simDir?: string; jsonLogs?: boolean }) => {
      const cfg = resolveConfig(g(), { simDir: o.simDir });
      // The daemon's modules (pino, chokidar, the S3 client) load only when a daemon runs.
      const { runDaemonForeground } = await import('./start.js');
      const readable = !o.jsonLogs && !!process.stdout.isTTY;
      await runDaemonForeground(cfg, readable ? { readable: { colour: colourWanted(g()) } } : {});
    });

  program
    .command('status')
    .description('daemon heartbeat, docked cameras with progress, queue counts, archive free space')
    .option('--json', 'machine-readable output')
    .option('--watch', 'redraw every second with progress bars (Ctrl-C to leave)')
    .option('--require-running', 'exit 1 when the daemon is not running')
    .action(async (o: { json?: boolean; watch?: boolean; requireRunning?: boolean }) => {
      if (o.watch && o.json) throw new UsageError('--watch and --json do not go together');
      const look = { paint: paint(colourWanted(g())) };
      if (o.watch) {
        // Into a pipe or a file, each frame follows the last one: no codes that only a terminal reads.
        const tty = !!process.stdout.isTTY;
        for (;;) {
          const text = withStore(g(), (db, cfg) => renderStatus(statusOf(db, cfg), { bars: true, ...look }));
          process.stdout.write(tty ? CLEAR_SCREEN + text + '\n' : text + '\n\n');
          await sleep(1000);
        }
      }
      const s = withStore(g(), (db, cfg) => statusOf(db, cfg));
      if (o.json) printJson(s);
      else console.log(renderStatus(s, look));
      if (o.requireRunning && !s.daemon.running) process.exitCode = 1;
    });

  const word = commandWord(argv);
  const wanted = GROUPS.filter((grp) => word === undefined || word === 'help' || grp.commands.includes(word));
  // An unknown word loads every group so that commander's error can suggest the right command.
  const load = wanted.length || word === 'start' || word === 'status' || word === 'demo' ? wanted : GROUPS;
  for (const grp of load) (await grp.load())(program, g);

  program
    .command('demo')
    .description('a self-contained demonstration on simulated cameras in a temporary data dir')
    .option('--keep', 'keep the temporary data dir and print its path')
    .action(async (o: { keep?: boolean }) => {
      const { runDemo } = await import('./demo.js');
      await runDemo({ keep: !!o.keep });
    });

  addExamples(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  // A daemon must not exit because its reader went away: `start` sees to its own stdout.
  if (commandWord(argv) !== 'start') endQuietlyOnClosedPipe();
  const program = await buildProgram(argv);
  const debug = argv.includes('--debug');
  try {
    await program.parseAsync(argv);
  } catch (err) {
    process.exitCode = exitCodeFor(err, debug);
  }
}

function exitCodeFor(err: unknown, debug: boolean): number {
  if (err instanceof CommanderError) {
    // Help and version are "errors" to commander but successes to a user.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0) return 0;
    return 2;
  }
  const say = (msg: string) =>
    process.stderr.write(`dockd: ${msg}\n${debug && err instanceof Error && err.stack ? err.stack + '\n' : ''}`);
  if (err instanceof ConfigError || err instanceof UsageError) {
    say(err.message);
    return 2;
  }
  if (err instanceof AlreadyRunningError || err instanceof ProblemError) {
    say(err.message);
    return 1;
  }
  say(err instanceof Error ? err.message : String(err));
  return 1;
}
