/**
 * The layers of dockd, lowest first (docs/ARCHITECTURE.md draws them). A module may import its
 * own layer and the layers below it, never one above: `npm run lint` fails on a back-arrow.
 */
const layers = [
  ['drivers', '^drivers/'],
  ['lib', '^src/(lib/|log\\.ts$|log-terminal\\.ts$|version\\.ts$)'],
  ['crypto', '^src/crypto/'],
  ['config', '^src/(config|camera-config)\\.ts$'],
  ['store', '^src/store/'],
  ['archive', '^src/archive/'],
  ['domain', '^src/(custody|battery|stages)/'],
  // The fleet's state document is published by the daemon; the rest of src/fleet/ shows it.
  ['work', '^src/(ingest|dock|replication|bus|usb)/|^src/fleet/(publish|document|state)\\.ts$'],
  ['daemon', '^src/daemon/'],
  ['surfaces', '^src/(cli|report|admin)/|^src/fleet/(?!(publish|document|state)\\.ts$)'],
];

const upward = layers.slice(0, -1).map(([name, from], i) => ({
  name: `no-import-above-${name}`,
  comment: `${name} sits below ${layers
    .slice(i + 1)
    .map(([n]) => n)
    .join(', ')}: it must not import them`,
  severity: 'error',
  from: { path: from },
  to: {
    path: layers
      .slice(i + 1)
      .map(([, p]) => `(${p})`)
      .join('|'),
  },
}));

module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'drivers-know-nothing-of-dockd',
      comment: 'drivers/ implement drivers/types.ts and import nothing of src/',
      severity: 'error',
      from: { path: '^drivers/' },
      to: { path: '^src/' },
    },
    {
      name: 'one-entry-to-the-daemon',
      comment:
        'surfaces read the heartbeat through the store; only dockd start and the demo start the daemon, through daemon.ts',
      severity: 'error',
      from: { path: '^src/(cli|report|admin|fleet)/', pathNot: '^src/cli/(start|demo)\\.ts$' },
      to: { path: '^src/daemon/' },
    },
    {
      name: 'no-circular',
      comment: 'modules that import each other in a loop: split out what both need',
      severity: 'error',
      from: { path: '^(src|drivers)/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^(src|drivers)/',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
