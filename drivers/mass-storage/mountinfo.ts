/**
 * `/proc/self/mountinfo` (proc(5)): one mount per line,
 *   36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue
 * id, parent id, major:minor, root within the filesystem, mount point, mount options, optional
 * fields up to "-", filesystem type, source, superblock options. Paths escape space, tab,
 * newline and backslash as octal (`\040`), which is how an automounted "CAM A" label shows.
 */

export interface MountEntry {
  id: number;
  /** "major:minor" of the mounted device. */
  dev: string;
  root: string;
  mountPoint: string;
  options: string[];
  fsType: string;
  source: string;
}

export function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (f.length < 10 || sep < 0 || sep + 2 >= f.length) continue;
    out.push({
      id: Number(f[0]),
      dev: f[2]!,
      root: unescapeMountPath(f[3]!),
      mountPoint: unescapeMountPath(f[4]!),
      options: f[5]!.split(','),
      fsType: f[sep + 1]!,
      source: unescapeMountPath(f[sep + 2]!),
    });
  }
  return out;
}

/**
 * A mount of the first of `devs` (in order of preference) that shows the volume from its root;
 * a bind mount of a sub-folder would hide the recordings outside it.
 */
export function findMount(entries: readonly MountEntry[], devs: readonly string[]): MountEntry | null {
  for (const dev of devs) {
    const hit = entries.find((e) => e.dev === dev && e.root === '/');
    if (hit) return hit;
  }
  return null;
}
