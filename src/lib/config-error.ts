/**
 * A refused setting, named by its key. Apart from config.ts so that the modules config.ts uses
 * to check values (age recipients, camera profiles) can raise it without importing config.ts.
 */
export class ConfigError extends Error {
  constructor(
    readonly key: string,
    problem: string,
  ) {
    super(`config: ${key}: ${problem}`);
    this.name = 'ConfigError';
  }
}
