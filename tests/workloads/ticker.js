// SPDX-License-Identifier: MIT
// ticker: a node.js event loop with a 50 ms setInterval, as a server's
// housekeeping timer (tests/e2e/t-migrate-timers.sh). Each callback writes
// "tick N MONO_MS WALL_MS" (N counts callbacks; MONO_MS: performance.now()
// since the start, CLOCK_MONOTONIC; WALL_MS: Date.now(), CLOCK_REALTIME).
//	node ticker.js OUT PIDFILE [MIB]
// MIB (default 64) of touched memory give the migration something to copy.
'use strict';
const fs = require('fs');
const out = fs.openSync(process.argv[2], 'w');
const mem = Buffer.alloc((Number(process.argv[4]) || 64) << 20, 1);
const t0 = performance.now();
let n = 0;

setInterval(() => {
	n++;
	mem[(n * 4096) % mem.length] = n & 0xff;
	fs.writeSync(out, `tick ${n} ${(performance.now() - t0).toFixed(1)} ${Date.now()}\n`);
}, 50);
fs.writeFileSync(process.argv[3] + '.tmp', String(process.pid));
fs.renameSync(process.argv[3] + '.tmp', process.argv[3]);
