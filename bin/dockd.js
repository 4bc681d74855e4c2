#!/usr/bin/env node
'use strict';
// CommonJS (bin/package.json), so that this runs before anything touches libuv's thread pool:
// the pool is sized once, on first use, and the ES module loader uses it to read its first file.
// Four threads (Node's default) were all held by fsyncs of finished copies while the next
// copies' reads and writes waited behind them; with four cameras on 40 MB/s links that cost
// 8 % of the links' time.
process.env.UV_THREADPOOL_SIZE ??= '16';

import('../dist/src/cli/main.js').then(({ main }) => main(process.argv)).catch((err) => {
  process.exitCode = 1;
  throw err;
});
