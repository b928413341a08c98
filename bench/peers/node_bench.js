#!/usr/bin/env node
// The micro-benchmark's work in Node.js, for scripts/compare.
//
// Maps the trivial async function twice(i) -> i * 2 over 0..N-1, results in
// input order, with Promise.all(xs.map(twice)).
//
// Each N is run until at least --min-time seconds have passed (one untimed
// warm-up run first for N <= 10^5); the mean per run is reported. Prints one
// tab-separated line per measurement:
//
//   system  N  wall_ns_per_item  cpu_ns_per_item  runs
//
//   node_bench.js [--sizes 1000,10000,100000,1000000] [--min-time 0.2] [--smoke]
'use strict';

async function twice(i) {
  return i * 2;
}

async function promiseAllMap(xs) {
  return Promise.all(xs.map(twice));
}

function parseArgs(argv) {
  const args = { sizes: [1000, 10000, 100000, 1000000], minTime: 0.2 };
  for (let i = 0; i < argv.length; ++i) {
    if (argv[i] === '--smoke') {
      args.sizes = [1, 100];
      args.minTime = 0;
    } else if (argv[i] === '--sizes' && i + 1 < argv.length) {
      args.sizes = argv[++i].split(',').filter((s) => s).map(Number);
    } else if (argv[i] === '--min-time' && i + 1 < argv.length) {
      args.minTime = Number(argv[++i]);
    } else {
      console.error('usage: node_bench.js [--sizes N,...] [--min-time S] [--smoke]');
      process.exit(2);
    }
  }
  return args;
}

function cpuNs() {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

async function measure(n, minTime) {
  const xs = Array.from({ length: n }, (_, i) => i);
  if (n <= 100000) await promiseAllMap(xs);
  let runs = 0;
  let wall = 0n;
  let cpu = 0;
  let out;
  for (;;) {
    const w0 = process.hrtime.bigint();
    const c0 = cpuNs();
    out = await promiseAllMap(xs);
    wall += process.hrtime.bigint() - w0;
    cpu += cpuNs() - c0;
    ++runs;
    if (Number(wall) >= minTime * 1e9) break;
  }
  for (let i = 0; i < n; ++i) {
    if (out[i] !== 2 * i) {
      console.error(`node: wrong results for N=${n}`);
      process.exit(1);
    }
  }
  return { wall: Number(wall) / (runs * n), cpu: cpu / (runs * n), runs };
}

(async () => {
  const args = parseArgs(process.argv.slice(2));
  for (const n of args.sizes) {
    const r = await measure(n, args.minTime);
    console.log(`node-promise-all\t${n}\t${r.wall.toFixed(2)}\t${r.cpu.toFixed(2)}\t${r.runs}`);
  }
})();
