#!/usr/bin/env python3
"""The micro-benchmark's work in Python asyncio, for scripts/compare.

Maps the trivial coroutine ``twice(i) -> i * 2`` over range(N), results in
input order, on a fresh event loop, two ways:

  gather      ``await asyncio.gather(*(twice(x) for x in xs))``
  post_style  the post's async_map: ``asyncio.async`` (now ``ensure_future``)
              on every item, then ``loop.run_until_complete`` on each task in
              turn, from synchronous code

Each N is run until at least --min-time seconds have passed (one untimed
warm-up run first for N <= 10^4); the mean per run is reported. Prints one
tab-separated line per measurement:

  system  N  wall_ns_per_item  cpu_ns_per_item  runs

  asyncio_bench.py [--sizes 1000,10000,100000,1000000] [--min-time 0.2] [--smoke]
"""

import argparse
import asyncio
import sys
import time


async def twice(i):
    return i * 2


async def gather_map(xs):
    return await asyncio.gather(*(twice(x) for x in xs))


def post_async_map(func, *iterables, event_loop):
    # The post's async_map, with asyncio.async spelled ensure_future.
    loop = event_loop
    args_iter = zip(*iterables)
    tasks = [asyncio.ensure_future(func(*args), loop=loop) for args in args_iter]
    for task in tasks:
        yield loop.run_until_complete(task)


def run_gather(loop, xs):
    return loop.run_until_complete(gather_map(xs))


def run_post_style(loop, xs):
    return [r for r in post_async_map(twice, xs, event_loop=loop)]


def measure(run, n, min_time):
    xs = range(n)
    expected = [2 * x for x in xs]
    loop = asyncio.new_event_loop()
    try:
        if n <= 10_000:
            run(loop, xs)
        runs = 0
        wall = cpu = 0
        while True:
            w0, c0 = time.perf_counter_ns(), time.process_time_ns()
            out = run(loop, xs)
            wall += time.perf_counter_ns() - w0
            cpu += time.process_time_ns() - c0
            runs += 1
            if wall >= min_time * 1e9:
                break
        if list(out) != expected:
            raise SystemExit(f"asyncio: wrong results for N={n}")
    finally:
        loop.close()
    return wall / (runs * n), cpu / (runs * n), runs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--min-time", type=float, default=0.2)
    parser.add_argument("--smoke", action="store_true", help="N = 1 and 100, one run each")
    args = parser.parse_args()
    sizes = [1, 100] if args.smoke else [int(s) for s in args.sizes.split(",") if s]
    min_time = 0.0 if args.smoke else args.min_time
    for name, run in (("python-asyncio-gather", run_gather), ("python-asyncio-post-style", run_post_style)):
        for n in sizes:
            wall, cpu, runs = measure(run, n, min_time)
            print(f"{name}\t{n}\t{wall:.2f}\t{cpu:.2f}\t{runs}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
