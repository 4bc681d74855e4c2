/**
 * What scripts/bench.mjs prints, and writes with --out: the runs' table, the lines that explain
 * it, and the targets table. Every run is optional (--only); a figure whose run or baseline did
 * not happen shows as "–" and a target that cannot be judged is left out.
 */
import { writeFileSync } from 'node:fs';
import { MB, RUNS, fmt, log, median, renderTable } from './bench-lib.mjs';

const TARGET_RATIO_C = 0.8;
const TARGET_LINK_SHARE = 0.95;
const TARGET_RSS_BYTES = 150 * MB;
const TARGET_ENCRYPTION_SLOWER = 0.15;
const TARGET_STATUS_SECONDS = 0.2;

export function report({
  opts,
  host,
  genSeconds,
  warmupSeconds,
  warmCopies,
  runs,
  mainSpec,
  mainTotals,
  rgwSkipped,
  problems,
}) {
  const { a, b, bsync, c, d, d0, e, f, fe, s, z, r } = runs;
  const mbps = (x) => x.bytes / MB / x.seconds;
  const rss = (x) => (x.peakRssBytes === null ? '–' : fmt(x.peakRssBytes / MB, 1));
  const cpu = (x) => fmt(x.cpuSeconds, 2);
  for (const x of [b, bsync, c, f, fe]) if (x) Object.assign(x, mainTotals);
  const ratioRow = (x) => [b ? fmt(x.seconds / b.seconds) : '–', c ? fmt(x.seconds / c.seconds) : '–'];
  const row = (label, x, ratios = true) => [
    label,
    fmt(x.bytes / MB, 1),
    x.files,
    fmt(x.seconds),
    fmt(mbps(x), 1),
    ...(ratios ? ratioRow(x) : ['–', '–']),
    cpu(x),
    rss(x),
  ];
  const linkLabel = `${opts.cameras} × ${opts.linkMBps} MB/s links`;
  // (r) is timed until every recording is replicated; its baseline is an upload, not a copy.
  const rTimed = r && { ...r, seconds: r.waitedSeconds };
  const rows = [
    b && row('(b) cp -r', b),
    c && row('(c) cp -r + sha256sum', c),
    bsync && row('(b+sync) cp -r; sync  [info]', bsync),
    f && row('(f) the invariants alone  [info]', f),
    a && row('(a) dockd', a),
    fe && row('(fe) (f) encrypted  [info]', fe),
    e && row('(e) dockd, encrypted at rest (age)', e),
    d0 && [
      `(d0) same links, hash-only reader  [info]`,
      fmt(d0.bytes / MB, 1),
      d0.files,
      fmt(d0.seconds),
      fmt(mbps(d0), 1),
      '–',
      '–',
      '–',
      '–',
    ],
    d && row(`(d) dockd, ${linkLabel}`, d, false),
    s && row(`(s) dockd, ${s.files} small files`, s, false),
    z && row(`(z) dockd, ${z.cameras} cameras, ${z.history} in store`, z, false),
    r && row('(r) dockd, offload + replication to RGW', rTimed, false),
    r?.baseline && [
      '(r0) SDK PutObject loop, same RGW',
      fmt(r.baseline.bytes / MB, 1),
      r.baseline.files,
      fmt(r.baseline.seconds),
      fmt(mbps(r.baseline), 1),
      '–',
      '–',
      '–',
      '–',
    ],
  ].filter(Boolean);

  const span = (x, from, to) => (x.window[from] && x.window[to] ? (x.window[to] - x.window[from]) / 1000 : null);
  const startup = (x) =>
    x.window.firstStarted ? (x.window.firstStarted - (x.dockedWall ?? x.startedWall)) / 1000 : null;
  const from = (x) => (x.docked ? 'dock' : 'spawn');
  const aTransfer = a && span(a, 'firstStarted', 'lastDeleted');
  const eTransfer = e && span(e, 'firstStarted', 'lastDeleted');
  const dTransfer = d && span(d, 'firstStarted', 'lastDeleted');
  const dShare = d && mbps(d) / (d.linkBytesPerSec / MB);
  const dShareTransfer = dTransfer ? d.bytes / dTransfer / d.linkBytesPerSec : null;
  const d0Share = d && d0 ? mbps(d0) / (d.linkBytesPerSec / MB) : null;
  // With several rounds a target's ratio is the median of the rounds' own ratios, each of two runs made back to back.
  const rounds = runs.rounds ?? [];
  const perRound = (num, den) => rounds.filter((x) => x[num] && x[den]).map((x) => x[num].seconds / x[den].seconds);
  const roundsRatio = (num, den) => {
    const list = perRound(num, den);
    if (list.length > 1) return median(list);
    return runs[num] && runs[den] ? runs[num].seconds / runs[den].seconds : null;
  };
  const ofRounds = (num, den) => {
    const list = perRound(num, den);
    return list.length > 1 ? ` (median of ${list.length} rounds: ${list.map((x) => fmt(x)).join(', ')})` : '';
  };
  const eRatio = roundsRatio('e', 'a');
  const eSlower = eRatio === null ? null : eRatio - 1;
  const rWindow = r && span(r, 'firstVerified', 'lastReplicated');
  const rUploads = r && span(r, 'lastVerified', 'lastReplicated');
  const rRate = rWindow ? r.bytes / rWindow : null;
  const rBaseRate = r?.baseline ? r.baseline.bytes / r.baseline.seconds : null;
  const rShare = rRate === null || rBaseRate === null ? null : rRate / rBaseRate;
  const dockdRuns = [a, e, d, s, z, r].filter(Boolean);
  // Every round's dockd runs count for memory, not only the median ones.
  const everyDockdRun = [
    ...rounds.flatMap((x) => [x.a && ['a', x.a], x.e && ['e', x.e]]),
    ['d', d],
    ['s', s],
    ['z', z],
    ['r', r],
  ].filter((x) => x && x[1]);
  const peak = everyDockdRun.length ? Math.max(...everyDockdRun.map(([, x]) => x.peakRssBytes ?? 0)) : null;
  const peakRun = everyDockdRun.find(([, x]) => (x.peakRssBytes ?? 0) === peak)?.[0];
  const ratioC = roundsRatio('a', 'c');

  const targets = [
    ratioC !== null && {
      target: '(a)/(c) time',
      goal: `≤ ${fmt(TARGET_RATIO_C)}`,
      value: fmt(ratioC) + (perRound('a', 'c').length > 1 ? ', median of rounds' : ''),
      met: ratioC <= TARGET_RATIO_C,
    },
    eRatio !== null && {
      target: '(e) encrypted vs (a) time',
      goal: `≤ ${fmt(TARGET_ENCRYPTION_SLOWER * 100, 0)} % slower`,
      value:
        `${fmt(eSlower * 100, 1)} % (× ${fmt(eRatio)})` + (perRound('e', 'a').length > 1 ? ', median of rounds' : ''),
      met: eSlower <= TARGET_ENCRYPTION_SLOWER,
    },
    d && {
      target: `(d) share of link total, ${from(d)} → done`,
      goal: `≥ ${fmt(TARGET_LINK_SHARE * 100, 0)} %`,
      value: `${fmt(dShare * 100, 1)} %`,
      met: dShare >= TARGET_LINK_SHARE,
    },
    z && {
      target: `status --json, ${z.history} recordings`,
      goal: `< ${fmt(TARGET_STATUS_SECONDS * 1000, 0)} ms`,
      value: `${fmt(z.statusSeconds.median * 1000, 0)} ms, median of ${z.statusSeconds.runs.length}`,
      met: z.statusSeconds.median < TARGET_STATUS_SECONDS,
    },
    peak !== null && {
      target: 'dockd peak RSS (max of runs)',
      goal: `< ${fmt(TARGET_RSS_BYTES / MB, 0)} MB`,
      value: `${fmt(peak / MB, 1)} MB (${peakRun})`,
      met: peak < TARGET_RSS_BYTES,
    },
  ].filter(Boolean);

  const out = [];
  out.push('');
  out.push(
    `dockd offload benchmark${opts.quick ? ' (--quick)' : ''}${opts.only.size < RUNS.length ? `, runs ${[...opts.only].join(',')} only` : ''}`,
  );
  out.push(`build:   ${host.dockd} (dist/ as built)`);
  out.push(
    `machine: ${host.cores} cores (${host.cpu}), ${host.memoryGB} GB RAM, node ${host.node}, ${host.os}, work folder on ${host.fs}`,
  );
  const busy = Math.max(host.loadAverageAtStart, host.loadAverageAtEnd) > host.cores / 2;
  out.push(
    `load:    1-min load average ${fmt(host.loadAverageAtStart)} at start, ${fmt(host.loadAverageAtEnd)} at end` +
      (busy ? ' — other work shared the machine: the figures are noisy, run again on a quiet one' : ''),
  );
  if (mainSpec) {
    const ds = `${mainSpec.cameras} cameras × ${mainSpec.files} recordings × ${mainSpec.mib} MiB = ${mainTotals.files} files, ${fmt(mainTotals.bytes / MB, 1)} MB`;
    out.push(
      `dataset: ${ds}; AES-CTR keystream (incompressible, no repeated blocks), generated in ${fmt(genSeconds, 1)} s`,
    );
  }
  if (e)
    out.push(
      '         (e): the same as (a), archived encrypted to one age X25519 recipient made by `dockd keygen` for the run',
    );
  if (d)
    out.push(
      `         (d): ${d.files / opts.cameras} recordings per camera, links throttled to ${opts.linkMBps} MB/s each`,
    );
  if (s) out.push(`         (s): one camera, ${s.files} files of 4–64 KiB = ${fmt(s.bytes / MB, 1)} MB`);
  if (z)
    out.push(
      `         (z): ${z.cameras} cameras × ${z.files / z.cameras} recordings = ${fmt(z.bytes / MB, 1)} MB, docked before spawn into a store of ${z.history} recordings`,
    );
  if (r) {
    out.push(
      `         (r): the first ${opts.rgwCameras} cameras × ${opts.rgwFiles} recordings = ${r.files} files, ${fmt(r.bytes / MB, 1)} MB, to a single-node Ceph RGW on loopback`,
    );
    out.push(
      `              (memstore OSD; started in ${fmt(r.rgwStartSeconds, 1)} s, untimed), bucket with Object Lock, COMPLIANCE 1 day;`,
    );
    out.push(
      '              (r0) PUTs each file once, streamed (so UNSIGNED-PAYLOAD, no Content-MD5), no retention, no HEAD, no manifest',
    );
  }
  if (dockdRuns.length) {
    out.push(
      'dockd:   real daemon (node bin/dockd.js start), usb off, concurrency 4, perCamera 1, log warn; cameras docked before spawn,',
    );
    out.push(
      '         except in (d), where they dock into a daemon that has run idle for a second, as at a real dock;',
    );
    out.push(
      `         timed from spawn (from the dock in (d)) until every recording is verified and deleted from its camera (store polled read-only every 50 ms)${r ? ';' : ''}`,
    );
    if (r)
      out.push(
        '         (r) until every recording also has replication.verified (dockd uploads one at a time, only while no camera offloads)',
      );
  }
  if (rows.length) {
    out.push(
      `cache:   all runs start warm: before the timed runs the pristine tree was read once and copied ${warmCopies === 2 ? 'twice' : `${warmCopies} times`} to scratch (${fmt(warmupSeconds, 1)} s,`,
    );
    out.push(
      '         so no run pays for first use of guest memory); each dockd source is a fresh copy made (untimed) just before its run;',
    );
    out.push('         `sync` ran (untimed) before every timed run, so none inherits write-back.');
    if (b || c || bsync) {
      out.push(
        '         cp never fsyncs: its timer stops with data still in the page cache. dockd fsyncs each copy before re-reading it;',
      );
      out.push('         (b+sync) shows the durable cost of the plain copy and is information only.');
    }
    if (f) {
      out.push(
        '         (f) is the floor any dockd can reach: scripts/bench-floor.mjs does only what the invariants demand (copy with',
      );
      out.push(
        '         SHA-256 in the pass, fsync, re-read in a worker and compare, rename; cameras in parallel), no SQLite, no driver.',
      );
    }
    if (fe) {
      out.push(
        '         (fe) is (f) encrypted to an age recipient (scripts/bench-floor-encrypted.mjs): a thread per camera reads, hashes,',
      );
      out.push(
        '         seals each 64 KiB chunk with ChaCha20-Poly1305, writes, fsyncs, re-reads, hashes and checks every tag.',
      );
    }
    out.push(
      'units:   MB = 10^6 bytes; time/(b) and time/(c) are ratios of seconds (lower is faster); CPU s = user + system of the',
    );
    out.push(
      '         process tree (GNU time for cp/sha256sum, /proc for dockd), above "seconds" when work ran on both cores',
    );
    out.push('');
    out.push(
      renderTable(['run', 'MB', 'files', 'seconds', 'MB/s', 'time/(b)', 'time/(c)', 'CPU s', 'peak RSS MB'], rows),
    );
    out.push('');
  }
  if (rounds.length > 1) {
    const kinds = ['b', 'c', 'bsync', 'f', 'a', 'fe', 'e'].filter((k) => rounds.some((x) => x[k]));
    out.push(`rounds:  ${rounds.length}; the table shows each run's median of them, in seconds per round:`);
    out.push(
      `         ${kinds.map((k) => `(${k === 'bsync' ? 'b+sync' : k}) ${rounds.map((x) => (x[k] ? fmt(x[k].seconds) : '–')).join(' ')}`).join('; ')}`,
    );
    const ratios = [
      ['a', 'c'],
      ['e', 'a'],
      ['a', 'f'],
      ['fe', 'f'],
      ['e', 'fe'],
    ].filter(([num, den]) => perRound(num, den).length > 1);
    if (ratios.length)
      out.push(
        `         ratios per round: ${ratios
          .map(
            ([num, den]) =>
              `(${num})/(${den}) ${perRound(num, den)
                .map((x) => fmt(x))
                .join(', ')}`,
          )
          .join('; ')}`,
      );
    out.push('');
  }
  if (a)
    out.push(
      `(a) spawn → first copy ${fmt(startup(a))} s; first copy → last deletion ${fmt(aTransfer)} s (${fmt(aTransfer ? a.bytes / MB / aTransfer : null, 1)} MB/s)`,
    );
  if (a && f) {
    out.push(
      `(f) the floor took ${fmt(f.seconds)} s${c ? ` = ${fmt(f.seconds / c.seconds)} × (c)` : ''}; dockd (a) took ${fmt(roundsRatio('a', 'f'))} × the floor spawn → done${ofRounds('a', 'f')}` +
        (aTransfer ? `, ${fmt(aTransfer / f.seconds)} × first copy → last deletion` : ''),
    );
  }
  if (fe && f) {
    out.push(
      `(fe) the floor, encrypted, took ${fmt(fe.seconds)} s = ${fmt(roundsRatio('fe', 'f'))} × (f)${ofRounds('fe', 'f')}: what encryption adds with nothing around it` +
        (e ? `; dockd (e) took ${fmt(roundsRatio('e', 'fe'))} × it${ofRounds('e', 'fe')}` : ''),
    );
  }
  if (e) {
    out.push(
      `(e) spawn → first copy ${fmt(startup(e))} s; first copy → last deletion ${fmt(eTransfer)} s (${fmt(eTransfer ? e.bytes / MB / eTransfer : null, 1)} MB/s)` +
        (a
          ? `; against (a): × ${fmt(eRatio)} = ${fmt(Math.abs(eSlower) * 100, 1)} % ${eSlower < 0 ? 'faster' : 'slower'} spawn → done${ofRounds('e', 'a')}`
          : '') +
        (a && aTransfer && eTransfer ? `, × ${fmt(eTransfer / aTransfer)} first copy → last deletion` : ''),
    );
  }
  if (d) {
    out.push(
      `(d) links total ${fmt(d.linkBytesPerSec / MB, 0)} MB/s; dockd ${fmt(mbps(d), 1)} MB/s ${from(d)} → done = ${fmt(dShare * 100, 1)} %; ` +
        `first copy → last deletion ${fmt(dTransfer)} s = ${fmt(dShareTransfer === null ? null : dShareTransfer * 100, 1)} % (${from(d)} → first copy ${fmt(startup(d))} s)`,
    );
  }
  if (d && d0) {
    out.push(
      `    the simulated links themselves delivered ${fmt(mbps(d0), 1)} MB/s = ${fmt(d0Share * 100, 1)} % of their nominal total to a reader that only hashes; ` +
        `dockd reached ${fmt((dShare / d0Share) * 100, 1)} % of that ${from(d)} → done, ${fmt(dShareTransfer === null ? null : (dShareTransfer / d0Share) * 100, 1)} % first copy → last deletion`,
    );
  }
  if (s) {
    out.push(
      `(s) ${fmt(s.files / s.seconds, 1)} files/s; spawn → first copy ${fmt(startup(s))} s; peak RSS ${rss(s)} MB`,
    );
    out.push(
      `    status --json on the resulting store: median ${fmt(s.statusSeconds.median, 3)} s of ${s.statusSeconds.runs.length} (${s.statusSeconds.runs.map((x) => fmt(x, 3)).join(', ')})`,
    );
  }
  if (z) {
    out.push(
      `(z) ${z.cameras} cameras docked at once into a store seeded (${fmt(z.seedSeconds, 1)} s, untimed) with ${z.history} verified recordings, ` +
        `${z.historyEvents} custody events and a month of battery samples per camera; peak RSS ${rss(z)} MB`,
    );
    out.push(
      `    status --json on that store: median ${fmt(z.statusSeconds.median, 3)} s of ${z.statusSeconds.runs.length} (${z.statusSeconds.runs.map((x) => fmt(x, 3)).join(', ')}), Node's start-up included`,
    );
  }
  if (r) {
    out.push(
      `(r) replication: first offload.verified → last replication.verified ${fmt(rWindow)} s = ${fmt(rRate === null ? null : rRate / MB, 1)} MB/s, ` +
        (rBaseRate === null
          ? 'the plain loop failed (see above)'
          : `${fmt(rShare === null ? null : rShare * 100, 1)} % of the plain loop's ${fmt(rBaseRate / MB, 1)} MB/s`),
    );
    out.push(
      `    spawn → every recording offloaded ${fmt(r.seconds)} s, → every recording replicated ${fmt(r.waitedSeconds)} s; ` +
        `last offload.verified → last replication.verified ${fmt(rUploads)} s (${fmt(rUploads ? r.bytes / MB / rUploads : null, 1)} MB/s, uploads alone)`,
    );
  }
  if (rgwSkipped) out.push(rgwSkipped);
  const logged = dockdRuns.reduce((n, x) => n + x.logLines, 0);
  if (logged)
    out.push(
      `dockd logged ${logged} warning/error lines across its runs, e.g. ${dockdRuns.flatMap((x) => x.logSample)[0]}`,
    );
  if (targets.length) {
    out.push('');
    out.push(
      renderTable(
        ['target', 'goal', 'measured', 'met'],
        targets.map((x) => [x.target, x.goal, x.value, x.met ? 'yes' : 'NO']),
      ),
    );
  }
  process.stdout.write(out.join('\n') + '\n');

  if (opts.out) {
    const pick = (x) =>
      x && {
        bytes: x.bytes,
        files: x.files,
        seconds: x.seconds,
        mbPerSec: mbps(x),
        peakRssBytes: x.peakRssBytes,
        cpuSeconds: x.cpuSeconds,
        ...(x.window && {
          startupSeconds: startup(x),
          transferSeconds: span(x, 'firstStarted', 'lastDeleted'),
          warnLines: x.logLines,
        }),
      };
    const json = {
      at: new Date().toISOString(),
      machine: host,
      warmupSeconds,
      dataset: {
        cameras: mainSpec?.cameras ?? 0,
        filesPerCamera: mainSpec?.files ?? 0,
        mib: opts.mib,
        files: mainTotals.files,
        bytes: mainTotals.bytes,
        throttledFilesPerCamera: d ? d.files / opts.cameras : null,
        scaleFiles: s ? opts.scaleFiles : 0,
        replicationCameras: r ? opts.rgwCameras : null,
        replicationFilesPerCamera: r ? opts.rgwFiles : null,
        quick: opts.quick,
      },
      only: [...opts.only],
      rounds: rounds.map((x) =>
        Object.fromEntries(
          Object.entries(x).map(([k, v]) => [
            k,
            { seconds: v.seconds, cpuSeconds: v.cpuSeconds, peakRssBytes: v.peakRssBytes ?? null },
          ]),
        ),
      ),
      runs: {
        cp: pick(b) ?? null,
        cpSha256sum: pick(c) ?? null,
        cpSync: pick(bsync) ?? null,
        floor: f
          ? { ...pick(f), ratioToCpSha256sum: roundsRatio('f', 'c'), dockdToFloor: roundsRatio('a', 'f') }
          : null,
        floorEncrypted: fe
          ? { ...pick(fe), ratioToFloor: roundsRatio('fe', 'f'), dockdEncryptedToFloor: roundsRatio('e', 'fe') }
          : null,
        dockd: a ? { ...pick(a), ratioToCp: b ? a.seconds / b.seconds : null, ratioToCpSha256sum: ratioC } : null,
        dockdEncrypted: e
          ? { ...pick(e), ratioToDockd: eRatio, slowerThanDockd: eSlower, decrypted: e.decrypted }
          : null,
        dockdThrottled: d
          ? { ...pick(d), linkBytesPerSec: d.linkBytesPerSec, linkShare: dShare, linkShareTransfer: dShareTransfer }
          : null,
        simLinksHashOnly: d0 ? { ...pick(d0), linkShare: d0Share } : null,
        dockdScale: s ? { ...pick(s), filesPerSec: s.files / s.seconds, statusSeconds: s.statusSeconds } : null,
        dockdFleet: z
          ? {
              ...pick(z),
              cameras: z.cameras,
              storeRecordings: z.history,
              storeEvents: z.historyEvents,
              statusSeconds: z.statusSeconds,
            }
          : null,
        dockdReplicated: r
          ? {
              ...pick(rTimed),
              offloadedSeconds: r.seconds,
              replicatedSeconds: r.waitedSeconds,
              replicationWindowSeconds: rWindow,
              replicationBytesPerSec: rRate,
              uploadsAloneSeconds: rUploads,
              rgwStartSeconds: r.rgwStartSeconds,
              baseline: r.baseline && { ...r.baseline, bytesPerSec: rBaseRate },
              shareOfBaseline: rShare,
            }
          : null,
      },
      skipped: rgwSkipped ? { r: rgwSkipped } : {},
      targets,
      problems,
    };
    writeFileSync(opts.out, JSON.stringify(json, null, 2) + '\n');
    log(`results written to ${opts.out}`);
  }
}
