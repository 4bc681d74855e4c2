import type { Command } from 'commander';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildReport } from '../report/model.js';
import { renderReport } from '../report/html.js';
import { printJson, ProblemError, UsageError, withStore, type GlobalOptions } from './context.js';
import { bytes } from '../lib/format.js';

export function registerReportCommand(program: Command, g: () => GlobalOptions): void {
  program
    .command('report')
    .description(
      'fleet report: batteries with charts, offloads per day, failures, archive, custody; one self-contained HTML file',
    )
    .option('--html <file>', 'write the report as one HTML page (no scripts, no external resources)')
    .option('--json', 'print the report data')
    .action((o: { html?: string; json?: boolean }) => {
      if (!o.html && !o.json) throw new UsageError('report needs --html FILE or --json');
      const model = withStore(g(), (db, cfg) => buildReport(db, cfg));
      if (o.html) {
        const file = path.resolve(o.html);
        const page = renderReport(model);
        // A browser left open on the file reloads a whole page, never half of one.
        const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
        try {
          writeFileSync(tmp, page);
          renameSync(tmp, file);
        } catch (err) {
          rmSync(tmp, { force: true });
          throw new ProblemError(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
        }
        if (!o.json) console.log(`wrote ${file} (${bytes(Buffer.byteLength(page))})`);
      }
      if (o.json) printJson(model);
    });
}
