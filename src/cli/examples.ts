/** The examples under each command's --help: what a newcomer types first. */
import type { Command } from 'commander';

const EXAMPLES: Record<string, string[]> = {
  dockd: [
    'dockd demo                                   # a tour on simulated cameras, in a temporary folder',
    'dockd start --sim-dir ./dock                 # run the daemon on a folder that acts as a dock',
    'dockd status --watch                         # docked cameras and their offload progress',
    'dockd recordings --status failed             # what could not be offloaded, and why',
    'dockd verify                                 # re-check the custody chain and every archived file',
  ],
  start: [
    'dockd start --config /etc/dockd/dockd.config.json',
    'dockd start --sim-dir ./dock --json-logs        # JSON lines also on a terminal',
  ],
  status: [
    'dockd status',
    'dockd status --watch',
    'dockd status --json | jq .queue',
    'dockd status --require-running || echo "dockd is down"',
  ],
  cameras: ['dockd cameras', 'dockd cameras --json'],
  recordings: [
    'dockd recordings --camera DU-0042',
    'dockd recordings --status failed',
    'dockd recordings --json | jq length',
  ],
  custody: ['dockd custody --camera DU-0042', 'dockd custody --recording ID --json'],
  verify: ['dockd verify', 'dockd verify --quick', 'dockd verify --head 512:3fa9…'],
  battery: ['dockd battery', 'dockd battery DU-0042 --since 2026-11-01'],
  retry: ['dockd retry --all', 'dockd retry --camera DU-0042'],
  export: ['dockd export --camera DU-0042 --from 2026-11-27T06:00:00Z --out ./case-118 --reason "case 118"'],
  hold: ['dockd hold ID --reason "case 118"'],
  release: ['dockd release ID --reason "case 118 closed"'],
  assign: ['dockd assign DU-0042 officer-17'],
  doctor: ['dockd doctor', 'sudo -u dockd dockd --config /etc/dockd/dockd.config.json doctor'],
  backup: ['dockd backup /mnt/usb/dockd-$(date +%F).db'],
  report: ['dockd report --html fleet.html'],
};

export function addExamples(program: Command): void {
  const text = (lines: string[]) => `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
  program.addHelpText('after', text(EXAMPLES.dockd!));
  for (const cmd of program.commands) {
    const lines = EXAMPLES[cmd.name()];
    if (lines) cmd.addHelpText('after', text(lines));
  }
}
