/** Headless Chromium for tests of the self-contained pages dockd writes (Debian's chromium). */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export async function chromium(args: string[], profile: string): Promise<string> {
  const flags = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--hide-scrollbars',
    `--user-data-dir=${profile}`,
  ];
  try {
    const { stdout } = await execFileP('chromium', [...flags, ...args], {
      maxBuffer: 64 * 1024 * 1024,
      timeout: 60_000,
    });
    return stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error('chromium is not installed: apt-get install -y chromium');
    throw new Error(`chromium failed: ${e.message}\n${e.stderr ?? ''}`);
  }
}

/** Start tags with their attribute names, read from serialized HTML. */
export function tags(doc: string): Array<{ name: string; attrs: Map<string, string> }> {
  const out: Array<{ name: string; attrs: Map<string, string> }> = [];
  const tag = /<([a-zA-Z][\w:-]*)((?:\s+[^\s=>/]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?)*)\s*\/?>/g;
  const attr = /([^\s=>/]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>]+))?/g;
  for (const m of doc.matchAll(tag)) {
    const attrs = new Map<string, string>();
    for (const a of (m[2] ?? '').matchAll(attr))
      attrs.set(a[1]!.toLowerCase(), (a[2] ?? '').replace(/^["']|["']$/g, ''));
    out.push({ name: m[1]!.toLowerCase(), attrs });
  }
  return out;
}
