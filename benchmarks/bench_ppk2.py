"""PPK2 stream decoding speed against real time, on one core.

Usage: python benchmarks/bench_ppk2.py [--seconds S] [--chunk-bytes B] [--repeats N] [--json]

Builds S seconds of a 100 kHz PPK2 stream (paced-inference load, encoded by the emulator with
the example metadata of meters.md §2.3), then feeds it to ``Ppk2StreamDecoder`` in chunks of
B bytes — 4000 bytes is 10 ms of stream, what the driver sees when it polls every 10 ms — and
decodes to calibrated microamperes with the counter check. The minimum and median over the
repeats are printed as "x real time" (100,000 samples per second of stream). BLAS/OpenMP are
pinned to one thread so the number is per core.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import platform
import statistics
import time

import numpy as np

from perflab.emulator.meters.ppk2 import encode_words, metadata_text
from perflab.emulator.meters.source import PeriodicLoad
from perflab.telemetry.meters.ppk2 import SAMPLE_RATE_HZ, Ppk2StreamDecoder, parse_metadata


def _stream(seconds: float) -> bytes:
    n = int(seconds * SAMPLE_RATE_HZ)
    t = np.arange(n) / SAMPLE_RATE_HZ
    load = PeriodicLoad(3.9, 0.18, 0.42, 1 / 30, 0.012)
    return encode_words(load.amps(t), 0, 3900, load.logic(t)).astype("<u4").tobytes()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--chunk-bytes", type=int, default=4000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    data = _stream(args.seconds)
    cal = parse_metadata(metadata_text(3900, 2).decode())
    times: list[float] = []
    for _ in range(args.repeats):
        dec = Ppk2StreamDecoder(cal, 3900)
        t0 = time.perf_counter()
        for i in range(0, len(data), args.chunk_bytes):
            dec.feed(data[i:i + args.chunk_bytes])
        times.append(time.perf_counter() - t0)
        if dec.samples_decoded != len(data) // 4 or dec.samples_lost or dec.garbage_bytes:
            raise SystemExit(f"decode error: {dec.samples_decoded} samples, {dec.samples_lost} lost")
    best, median = min(times), statistics.median(times)
    result = {
        "stream_s": args.seconds, "chunk_bytes": args.chunk_bytes, "repeats": args.repeats,
        "best_s": best, "median_s": median,
        "x_real_time_best": args.seconds / best, "x_real_time_median": args.seconds / median,
        "samples_per_s_best": len(data) / 4 / best, "python": platform.python_version(),
        "numpy": np.__version__, "machine": platform.machine(),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"PPK2 decode, {args.seconds:g} s of stream in {args.chunk_bytes}-byte chunks: "
              f"{result['x_real_time_best']:.0f}x real time (best), {result['x_real_time_median']:.0f}x (median); "
              f"{result['samples_per_s_best'] / 1e6:.1f} M samples/s")


if __name__ == "__main__":
    main()
