/**
 * What a start has set up, undone last first. The start queues each undo as soon as the thing it
 * undoes exists, so a start that fails at any step undoes exactly what it had done, and the stop
 * runs the same list: one order, reverse of start-up, for both.
 */
export class Teardown {
  private readonly steps: Array<() => unknown> = [];

  /** Queues `undo`: it runs before every step queued earlier. */
  defer(undo: () => unknown): void {
    this.steps.push(undo);
  }

  /**
   * Runs every queued step, last queued first. A step that throws does not keep the ones after
   * it from running (the lock is released whatever failed before it); the first error is thrown
   * once all have run.
   */
  async run(): Promise<void> {
    let failure: { err: unknown } | null = null;
    for (let undo = this.steps.pop(); undo; undo = this.steps.pop()) {
      try {
        await undo();
      } catch (err) {
        failure ??= { err };
      }
    }
    if (failure) throw failure.err;
  }
}
