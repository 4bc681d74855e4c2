/**
 * A mass-storage camera's own files (drivers/mass-storage/): which profile a camera gets, the
 * formats of its settings, time and event files, and how dockd writes them. Each file comes from
 * the camera and is read as hostile input.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DriverError, type CameraSettings } from '../drivers/types.js';
import {
  MASS_STORAGE_PROFILES,
  massStorageProfileFor,
  type MassStorageProfile,
} from '../drivers/mass-storage/profiles.js';
import { formatLocalTime, parseLocalTime } from '../drivers/mass-storage/local-time.js';
import { encodeSettings, parseSettingsFile, updateSettingsFile } from '../drivers/mass-storage/settings-file.js';
import { parseEventLog } from '../drivers/mass-storage/event-log.js';
import { writeCameraFile } from '../drivers/mass-storage/file-io.js';
import { parseConfig } from '../src/config.js';
import { configError } from './support/config-error.js';
import { ROOT } from './support/harness.js';

const EXAMPLE = MASS_STORAGE_PROFILES.find((p) => p.name === 'example-bwc-m')!;
const SPECS = EXAMPLE.settingsFile!.settings;

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'dockd-msfiles-'));
  dirs.push(d);
  return d;
}

function refusal(fn: () => unknown): DriverError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DriverError);
    return err as DriverError;
  }
  throw new Error('expected a refusal');
}

describe('which profile a mass-storage camera gets', () => {
  const table: MassStorageProfile[] = [
    ...MASS_STORAGE_PROFILES,
    { name: 'by-model', model: 'BodyCam 3', device: 'test row', source: 'test' },
  ];

  it('matches the example by its VID:PID, another row by its model, and nothing else', () => {
    expect(massStorageProfileFor({ vendorId: 0x1209, productId: 0x0001, model: 'whatever' })).toEqual({
      profile: EXAMPLE,
      matchedBy: 'VID:PID 1209:0001',
    });
    expect(massStorageProfileFor({ vendorId: 0x2e1a, productId: 0x0202, model: '  bodycam 3 ' }, {}, table)).toEqual({
      profile: table[1],
      matchedBy: 'model "bodycam 3"',
    });
    // QEMU's emulated disk, a USB stick, a camera of another model: offloaded only.
    expect(massStorageProfileFor({ vendorId: 0x46f4, productId: 0x0001, model: 'QEMU USB HARDDRIVE' })).toBeNull();
    expect(massStorageProfileFor({ vendorId: 0x1209, productId: 0x0002, model: 'BodyCam 3' })).toBeNull();
    expect(massStorageProfileFor({ model: 'BodyCam 3X' }, {}, table)).toBeNull();
  });

  it('gives a VID:PID the row usb.massStorage.profiles names, before the table', () => {
    expect(
      massStorageProfileFor({ vendorId: 0x46f4, productId: 0x0001, model: 'x' }, { '46F4:0001': 'example-bwc-m' }),
    ).toMatchObject({ profile: EXAMPLE, matchedBy: 'config 46f4:0001' });
    expect(
      massStorageProfileFor(
        { vendorId: 0x2e1a, productId: 0x0202, model: 'BodyCam 3' },
        { '2e1a:0202': 'example-bwc-m' },
        table,
      ),
    ).toMatchObject({ profile: EXAMPLE });
  });

  it('takes the config key from the CLI contract and refuses a bad VID:PID or an unknown row (exit 2 naming the key)', () => {
    const cfg = parseConfig({ usb: { massStorage: { profiles: { '46f4:0001': 'example-bwc-m' } } } }, '/base');
    expect(cfg.usb.massStorage.profiles).toEqual({ '46f4:0001': 'example-bwc-m' });
    expect(parseConfig({}, '/base').usb.massStorage.profiles).toEqual({});
    expect(configError({ usb: { massStorage: { profiles: { '46f4': 'example-bwc-m' } } } })).toBe(
      'config: usb.massStorage.profiles.46f4: must be a "VID:PID" key such as "1209:0001"',
    );
    expect(configError({ usb: { massStorage: { profiles: { '46f4:0001': 'acme' } } } })).toBe(
      'config: usb.massStorage.profiles.46f4:0001: unknown profile "acme" (the mass-storage profile table has example-bwc-m)',
    );
  });

  it('has rows with unique names, a way to match, and files that are plain relative paths', () => {
    const names = MASS_STORAGE_PROFILES.map((p) => p.name);
    expect(new Set(names).size).toBe(names.length);
    for (const p of MASS_STORAGE_PROFILES) {
      expect(p.name, p.name).toMatch(/^[a-z0-9][a-z0-9-]*$/);
      expect((p.vendorId !== undefined && p.productId !== undefined) || p.model !== undefined, p.name).toBe(true);
      for (const f of [p.settingsFile?.path, p.timeFile?.path, p.eventLog?.path].filter(Boolean) as string[])
        expect(
          f.split('/').every((part) => part !== '' && part !== '.' && part !== '..' && !part.startsWith('.')),
        ).toBe(true);
      for (const key of Object.keys(p.settingsFile?.settings ?? {})) expect(key).toMatch(/^[A-Za-z][A-Za-z0-9_]*$/);
    }
  });
});

describe('local time YYYY-MM-DD HH:MM:SS', () => {
  it('writes and reads this machine’s local time to the second', () => {
    expect(formatLocalTime(new Date(2026, 11, 5, 21, 0, 3, 999))).toBe('2026-12-05 21:00:03');
    expect(formatLocalTime(new Date(2024, 1, 29, 0, 0, 0))).toBe('2024-02-29 00:00:00');
    expect(parseLocalTime('2026-12-05 21:00:03')).toEqual(new Date(2026, 11, 5, 21, 0, 3));
  });

  it('refuses times that do not exist and anything that is not exactly one', () => {
    for (const bad of [
      '2026-02-30 10:00:00',
      '2025-02-29 10:00:00',
      '2026-13-01 10:00:00',
      '2026-12-05 24:00:00',
      '2026-12-05 23:60:00',
      '0050-01-01 00:00:00',
      '2026-12-05T21:00:03',
      '2026-12-05 21:00:03Z',
      ' 2026-12-05 21:00:03',
      '2026-12-05 21:00',
      '',
    ])
      expect(parseLocalTime(bad), bad).toBeNull();
  });
});

describe('the key=value settings file', () => {
  const FILE = Buffer.from(
    [
      '# Acme BWC-M settings',
      '; written by the camera',
      'preRecordSeconds = 10',
      'resolution=1080p',
      'displayBrightness=80',
      'wifi=ON',
      'unitName=UNIT 7',
      'gps=1',
      'this line has no equals sign',
      '',
      'displayBrightness=85',
    ].join('\r\n') + '\r\n',
  );

  it('reads the keys the profile names, typed as it says; the last of a key given twice counts', () => {
    expect(parseSettingsFile(FILE, SPECS)).toEqual({
      values: { preRecordSeconds: 10, resolution: '1080p', displayBrightness: 85, wifi: true, unitName: 'UNIT 7' },
      unreadable: [],
      badLines: 1,
    });
  });

  it('reports a value it cannot read as unreadable rather than guessing, and never throws', () => {
    const file = Buffer.concat([
      Buffer.from('preRecordSeconds=ten\nwifi=maybe\nresolution=8K\nunitName='),
      Buffer.of(0xe9, 0x00, 0xff),
      Buffer.from('\ndisplayBrightness=99999999999\n'),
    ]);
    expect(parseSettingsFile(file, SPECS)).toEqual({
      // A word of newer firmware is reported as it is; the rest is not read.
      values: { resolution: '8K' },
      unreadable: ['preRecordSeconds', 'wifi', 'unitName', 'displayBrightness'],
      badLines: 0,
    });
  });

  it('never makes a key of the file a property, whatever the key', () => {
    const file = Buffer.from('__proto__=1\nconstructor=x\nhasOwnProperty=1\nprototype=1\nwifi=off\n');
    const parsed = parseSettingsFile(file, SPECS);
    expect(parsed.values).toEqual({ wifi: false });
    expect(Object.keys(parsed.values)).toEqual(['wifi']);
    expect(Object.getPrototypeOf(parsed.values)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).wifi).toBeUndefined();
  });

  it('rewrites only the lines of the keys it sets, keeping every other byte and the file’s line ends', () => {
    const odd = Buffer.concat([Buffer.from('# caf'), Buffer.of(0xe9, 0x00), Buffer.from(' note\r\n')]);
    const file = Buffer.concat([odd, FILE]);
    const out = updateSettingsFile(
      file,
      encodeSettings({ preRecordSeconds: 30, wifi: false, displayBrightness: 40 }, SPECS),
    );
    expect(out.toString('latin1')).toBe(
      Buffer.concat([
        odd,
        Buffer.from(
          [
            '# Acme BWC-M settings',
            '; written by the camera',
            'preRecordSeconds=30',
            'resolution=1080p',
            'displayBrightness=40',
            'wifi=off',
            'unitName=UNIT 7',
            'gps=1',
            'this line has no equals sign',
            '',
            'displayBrightness=40',
          ].join('\r\n') + '\r\n',
        ),
      ]).toString('latin1'),
    );
    expect(parseSettingsFile(out, SPECS).values).toMatchObject({
      preRecordSeconds: 30,
      wifi: false,
      displayBrightness: 40,
    });
  });

  it('appends a key the file lacks, after a last line without a line end too', () => {
    const changes = encodeSettings({ unitName: 'CAR 12' }, SPECS);
    expect(updateSettingsFile(Buffer.from('wifi=on\npreRecordSeconds=5'), changes).toString()).toBe(
      'wifi=on\npreRecordSeconds=5\nunitName=CAR 12\n',
    );
    expect(updateSettingsFile(Buffer.from('wifi=on\r\n'), changes).toString()).toBe('wifi=on\r\nunitName=CAR 12\r\n');
    expect(updateSettingsFile(Buffer.alloc(0), changes).toString()).toBe('unitName=CAR 12\n');
  });

  it('refuses, naming the key, a setting the profile does not know and a value of the wrong type or out of range', () => {
    const cases: Array<[CameraSettings, string]> = [
      [{ nightVision: true }, "nightVision: the camera's settings file has no such setting"],
      [{ __proto__x: 1 }, "__proto__x: the camera's settings file has no such setting"],
      [{ preRecordSeconds: '30' }, 'preRecordSeconds: the camera takes a whole number, not "30"'],
      [{ preRecordSeconds: 7.5 }, 'preRecordSeconds: the camera takes a whole number, not 7.5'],
      [{ preRecordSeconds: 121 }, 'preRecordSeconds: the camera takes 0..120, not 121'],
      [{ displayBrightness: -1 }, 'displayBrightness: the camera takes 0..100, not -1'],
      [{ wifi: 'off' }, 'wifi: the camera takes true or false, not "off"'],
      [{ resolution: '4K' }, 'resolution: the camera takes one of 720p, 1080p, 1440p, not "4K"'],
      [{ resolution: 1080 }, 'resolution: the camera takes one of 720p, 1080p, 1440p, not 1080'],
      [
        { unitName: 'x'.repeat(33) },
        `unitName: the camera takes up to 32 printable ASCII characters, not "${'x'.repeat(33)}"`,
      ],
      [
        { unitName: 'x'.repeat(1000) },
        `unitName: the camera takes up to 32 printable ASCII characters, not "${'x'.repeat(40)}…"`,
      ],
      [
        { unitName: 'CAR 12\nwifi=on' },
        'unitName: the camera takes up to 32 printable ASCII characters, not "CAR 12\\nwifi=on"',
      ],
      [{ unitName: 'Café' }, 'unitName: the camera takes up to 32 printable ASCII characters, not "Café"'],
      [{ unitName: 7 }, 'unitName: the camera takes text, not 7'],
    ];
    for (const [partial, message] of cases) {
      const err = refusal(() => encodeSettings(partial, SPECS));
      expect(err.kind, message).toBe('permanent');
      expect(err.message).toBe(message);
    }
    // One refused key refuses the whole call: nothing half-applied.
    expect(refusal(() => encodeSettings({ wifi: false, preRecordSeconds: 500 }, SPECS)).message).toMatch(
      /^preRecordSeconds:/,
    );
  });
});

describe('the timestamp,type event log', () => {
  it('reads entries on the camera’s clock with the contract’s types, skipping and counting the rest', () => {
    const file = Buffer.concat([
      Buffer.from('2026-12-05 06:00:42,power.on\r\n'),
      Buffer.from('2026-12-05 06:01:00 , display.on \n'),
      Buffer.from('\n   \n'),
      Buffer.from('2026-12-05 06:02:00,recording.start\n'),
      Buffer.from('2026-12-05 06:02:30,teleport.start\n'),
      Buffer.from('2026-02-30 06:03:00,recording.stop\n'),
      Buffer.from('garbage\n'),
      Buffer.from('2026-12-05 06:04:00,recording.stop'),
      Buffer.of(0x00),
      Buffer.from('\n2026-12-05 06:05:00,'),
      Buffer.of(0xc3, 0x28),
      Buffer.from('\n__proto__,power.on\n'),
      Buffer.from('2026-12-05 06:06:00,power.off'),
    ]);
    const log = parseEventLog(file);
    expect(log.entries).toEqual([
      { at: new Date(2026, 11, 5, 6, 0, 42), type: 'power.on' },
      { at: new Date(2026, 11, 5, 6, 1, 0), type: 'display.on' },
      { at: new Date(2026, 11, 5, 6, 2, 0), type: 'recording.start' },
      { at: new Date(2026, 11, 5, 6, 6, 0), type: 'power.off' },
    ]);
    expect(log.skipped).toBe(6);
    expect(log.dropped).toBe(0);
    expect(({} as Record<string, unknown>)['power.on']).toBeUndefined();
  });

  it('reads 100,000 lines and keeps only the newest beyond its limit', () => {
    const lines: string[] = [];
    for (let i = 0; i < 120_000; i++) {
      const t = new Date(2026, 0, 1, 0, 0, i);
      lines.push(`${formatLocalTime(t)},${i % 2 ? 'display.off' : 'display.on'}`);
      if (i % 1000 === 0) lines.push('\x00\x01\x02 binary junk \xff\xfe');
    }
    const file = Buffer.from(lines.join('\n'), 'latin1');
    const log = parseEventLog(file, 100_000);
    expect(log.entries).toHaveLength(100_000);
    expect(log.dropped).toBe(20_000);
    expect(log.skipped).toBe(120);
    expect(log.entries[0]!.at).toEqual(new Date(2026, 0, 1, 0, 0, 20_000));
    expect(log.entries.at(-1)!.at).toEqual(new Date(2026, 0, 1, 0, 0, 119_999));
  });

  it('never throws, whatever the bytes', () => {
    let seed = 42;
    const next = () => (seed = (seed * 1103515245 + 12345) >>> 0) & 0xff;
    for (let round = 0; round < 50; round++) {
      const junk = Buffer.from(Array.from({ length: 8192 }, () => (next() % 7 === 0 ? 0x0a : next())));
      const log = parseEventLog(junk);
      expect(log.entries).toEqual([]);
    }
    expect(parseEventLog(Buffer.alloc(0))).toEqual({ entries: [], skipped: 0, dropped: 0 });
    // One line of a megabyte: a single skipped line, not a megabyte-long regex run.
    expect(parseEventLog(Buffer.alloc(1024 * 1024, 0x41)).skipped).toBe(1);
  });
});

describe('writing a camera file atomically', () => {
  const OLD = Buffer.from('preRecordSeconds=10\nwifi=on\n');
  const NEW = Buffer.from('preRecordSeconds=30\nwifi=off\n');

  function volume(): { dir: string; root: Buffer } {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'SETTINGS.TXT'), OLD);
    return { dir, root: Buffer.from(dir) };
  }

  it('replaces the file and leaves no temporary file', async () => {
    const { dir, root } = volume();
    await writeCameraFile(root, 'SETTINGS.TXT', NEW);
    expect(readFileSync(path.join(dir, 'SETTINGS.TXT'))).toEqual(NEW);
    expect(readdirSync(dir)).toEqual(['SETTINGS.TXT']);
  });

  it('leaves the old file whole, and no temporary file, when the write fails before the rename', async () => {
    const { dir, root } = volume();
    const failure = new Error('the volume went away');
    await expect(
      writeCameraFile(root, 'SETTINGS.TXT', NEW, {
        beforeRename: () => {
          throw failure;
        },
      }),
    ).rejects.toBe(failure);
    expect(readFileSync(path.join(dir, 'SETTINGS.TXT'))).toEqual(OLD);
    expect(readdirSync(dir)).toEqual(['SETTINGS.TXT']);
  });

  it('leaves the old file whole when the dock dies between the write and the rename; the next write succeeds', async () => {
    const module = path.join(ROOT, 'dist', 'drivers', 'mass-storage', 'file-io.js');
    if (!existsSync(module)) throw new Error('this test forks the built driver: run npm run build first');
    const { dir, root } = volume();
    const script = `
      const { writeCameraFile } = await import(${JSON.stringify(pathToFileURL(module).href)});
      await writeCameraFile(Buffer.from(${JSON.stringify(dir)}), 'SETTINGS.TXT', Buffer.from(${JSON.stringify(NEW.toString())}), {
        beforeRename: () => process.kill(process.pid, 'SIGKILL'),
      });
      console.log('renamed');`;
    const child = await new Promise<{ signal: string | null; stdout: string }>((resolve) => {
      execFile(process.execPath, ['--input-type=module', '-e', script], (err, stdout) =>
        resolve({ signal: (err as { signal?: string } | null)?.signal ?? null, stdout }),
      );
    });
    expect(child).toEqual({ signal: 'SIGKILL', stdout: '' });
    expect(readFileSync(path.join(dir, 'SETTINGS.TXT'))).toEqual(OLD);
    // What the crash left is a dot name: no listing takes it for a recording (see
    // mass-storage-configure.test.ts), and the next write takes it over.
    expect(readdirSync(dir).sort()).toEqual(['.SETTINGS.TXT.dockd', 'SETTINGS.TXT']);
    await writeCameraFile(root, 'SETTINGS.TXT', Buffer.from('wifi=off\n'));
    expect(readFileSync(path.join(dir, 'SETTINGS.TXT'), 'utf8')).toBe('wifi=off\n');
    expect(readdirSync(dir)).toEqual(['SETTINGS.TXT']);
  });

  it('never writes through a link where its temporary file goes, nor outside the volume', async () => {
    const { dir, root } = volume();
    const outside = path.join(tempDir(), 'victim');
    writeFileSync(outside, 'not the camera’s');
    symlinkSync(outside, path.join(dir, '.SETTINGS.TXT.dockd'));
    await expect(writeCameraFile(root, 'SETTINGS.TXT', NEW)).rejects.toMatchObject({ code: 'ELOOP' });
    await expect(writeCameraFile(root, '../victim', NEW)).rejects.toMatchObject({ code: 'bad-id' });
    expect(readFileSync(outside, 'utf8')).toBe('not the camera’s');
    expect(readFileSync(path.join(dir, 'SETTINGS.TXT'))).toEqual(OLD);
  });
});
