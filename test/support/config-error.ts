import { expect } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { ConfigError } from '../../src/lib/config-error.js';

/** The message of the ConfigError that parsing `raw` must raise. */
export function configError(raw: unknown): string {
  try {
    parseConfig(raw, '/base');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}
