import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { profileFor } from '../src/camera-config.js';
import { configError } from './support/config-error.js';

const err = configError;

const PROFILES = {
  standard: { preRecordSeconds: 30, wifi: false },
  winter: { displayBrightness: 40, resolution: '720p' },
};

describe('clock and settings config', () => {
  it('syncs clocks beyond 2 s by default and only reads settings without a settings section', () => {
    const cfg = parseConfig({}, '/base');
    expect(cfg.clock).toEqual({ sync: true, maxSkewSeconds: 2 });
    expect(cfg.settings).toBeNull();
    expect(profileFor(cfg.settings, { serial: 'DU-1', model: 'SimCam 2' })).toBeNull();
  });

  it('takes profiles and an ordered assignment: serial, then model, then everyone', () => {
    const cfg = parseConfig(
      {
        clock: { sync: false, maxSkewSeconds: 5 },
        settings: {
          profiles: PROFILES,
          assign: [
            { serial: 'DU-1', profile: 'winter' },
            { model: 'SimCam 2', profile: 'standard' },
            { profile: 'winter' },
          ],
        },
      },
      '/base',
    );
    expect(cfg.clock).toEqual({ sync: false, maxSkewSeconds: 5 });
    expect(profileFor(cfg.settings, { serial: 'DU-1', model: 'SimCam 2' })).toEqual({
      name: 'winter',
      values: PROFILES.winter,
    });
    expect(profileFor(cfg.settings, { serial: 'DU-2', model: 'SimCam 2' })?.name).toBe('standard');
    expect(profileFor(cfg.settings, { serial: 'DU-3', model: 'Other' })?.name).toBe('winter');
    const noCatchAll = parseConfig(
      { settings: { profiles: PROFILES, assign: [{ model: 'SimCam 2', profile: 'standard' }] } },
      '/base',
    );
    expect(profileFor(noCatchAll.settings, { serial: 'DU-3', model: 'Other' })).toBeNull();
  });

  it.each([
    [{ clock: { sync: 'yes' } }, 'config: clock.sync: must be true or false'],
    [{ clock: { maxSkewSeconds: -1 } }, 'config: clock.maxSkewSeconds: must be at least 0'],
    [{ clock: { drift: 1 } }, 'config: clock.drift: unknown key'],
    [
      { settings: { profiles: { a: { wifi: [true] } } } },
      'config: settings.profiles.a.wifi: must be a string, a number or true/false',
    ],
    [{ settings: { profiles: { a: 3 } } }, 'config: settings.profiles.a: must be an object'],
    [
      { settings: { profiles: PROFILES, assign: [{ profile: 'summer' }] } },
      'config: settings.assign[0].profile: unknown profile "summer" (settings.profiles has standard, winter)',
    ],
    [
      { settings: { profiles: PROFILES, assign: [{ serial: 'A', model: 'B', profile: 'winter' }] } },
      'config: settings.assign[0]: names both serial and model',
    ],
    [{ settings: { profiles: PROFILES, assign: [{ model: 'B' }] } }, 'config: settings.assign[0].profile: is required'],
    [
      { settings: { profiles: PROFILES, assign: [{ slot: 'x', profile: 'winter' }] } },
      'config: settings.assign[0].slot: unknown key',
    ],
    [{ settings: { profiles: PROFILES, assign: { profile: 'winter' } } }, 'config: settings.assign: must be an array'],
    [{ settings: { rules: [] } }, 'config: settings.rules: unknown key'],
  ])('refuses %j naming the key', (raw, message) => {
    expect(err(raw)).toContain(message);
  });
});
