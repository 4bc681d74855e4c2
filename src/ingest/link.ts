/**
 * Access to one camera's link. A copy holds it only while it reads from the camera; fsync and
 * verification of the stored copy run after it is released, so the next recording's transfer
 * overlaps them and the link does not sit idle between files.
 */
export class CameraLink {
  private free: number;
  private readonly waiters: Array<() => void> = [];

  constructor(slots: number) {
    this.free = slots;
  }

  async acquire(signal: AbortSignal): Promise<() => void> {
    if (signal.aborted) throw signal.reason;
    if (this.free > 0) {
      this.free--;
    } else {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          const i = this.waiters.indexOf(go);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(signal.reason);
        };
        const go = () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        this.waiters.push(go);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    }
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const next = this.waiters.shift();
      if (next) next();
      else this.free++;
    };
  }
}
