"""Run the server (`phishlens.server.main`) with a memory timeline, to tell Python objects from native memory.

    python benchmarks/memtrace.py --out mem.jsonl [--interval-s 30] [--tracemalloc]
    python benchmarks/memtrace.py --report mem.jsonl

A diagnostic, not a serving mode: `benchmarks/soak.py --memtrace FILE` starts the server through it. Every
`--interval-s` seconds a thread appends one JSON line to `--out`: the process RSS split by mapping (the
brk heap, anonymous maps — glibc's per-thread malloc arenas and large mmap'd blocks, torch's tensors —,
file maps), glibc's `mallinfo2` (bytes in use vs free inside malloc's arenas: free bytes that grow
mean fragmentation, in-use bytes that grow mean live native objects), the thread count, and with
`--tracemalloc` the Python heap traced by tracemalloc (its own overhead excluded) and the 12 source lines
whose allocations grew most since the previous line. `--report` prints the timeline as a table.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import runpy
import sys
import threading
import time
from pathlib import Path

MB = 1 << 20


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (n, ctypes.c_size_t)
        for n in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def mallinfo() -> dict[str, float]:
    """glibc malloc totals in MB: `arena` (obtained with brk/arena mmaps), `mmapped` (blocks mmap'd one by
    one), `in_use`, `free` (held by malloc, not returned to the OS). Empty when not glibc >= 2.33."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return {}
    fn.restype = _Mallinfo2
    m = fn()
    return {
        "arena": m.arena / MB,
        "mmapped": m.hblkhd / MB,
        "in_use": (m.uordblks + m.hblkhd) / MB,
        "free": m.fordblks / MB,
    }


def smaps_mb() -> dict[str, float]:
    """Resident MB by kind of mapping: heap (brk), anon (arenas, mmap'd blocks, tensors), file, other."""
    out = {"heap": 0.0, "anon": 0.0, "file": 0.0, "other": 0.0}
    kind = "other"
    try:
        lines = Path("/proc/self/smaps").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        head = line.split(maxsplit=5)
        if not head:
            continue
        if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
            name = head[5] if len(head) > 5 else ""
            kind = (
                "heap"
                if name == "[heap]"
                else "anon"
                if name == ""
                else "file"
                if name.startswith("/")
                else "other"
            )
        elif head[0] == "Rss:":
            out[kind] += int(head[1]) / 1024
    return out


def status() -> dict[str, float]:
    out: dict[str, float] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, val = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "Threads"):
            out[key] = int(val.split()[0]) / (1024 if key != "Threads" else 1)
    return out


def malloc_trim() -> float:
    """glibc `malloc_trim(0)` (free pages inside every arena back to the OS); the RSS it released, MB."""
    before = status()["VmRSS"]
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return before - status()["VmRSS"]


def sampler(out: Path, interval_s: float, trace: bool, trim: bool) -> None:
    import tracemalloc

    t0 = time.monotonic()
    prev = None
    with out.open("a") as fh:
        while True:
            released = malloc_trim() if trim else None
            row: dict[str, object] = {"t_s": round(time.monotonic() - t0, 1), **status(), **smaps_mb()}
            if released is not None:
                row["trim_released_mb"] = released
            row["malloc"] = mallinfo()
            if trace and tracemalloc.is_tracing():
                cur, _peak = tracemalloc.get_traced_memory()
                row["py_traced_mb"] = cur / MB
                row["tracemalloc_overhead_mb"] = tracemalloc.get_tracemalloc_memory() / MB
                snap = tracemalloc.take_snapshot().filter_traces(
                    [tracemalloc.Filter(False, tracemalloc.__file__)]
                )
                if prev is not None:
                    row["py_growth"] = [
                        [str(s.traceback[0]), round(s.size_diff / 1024, 1), s.count_diff]
                        for s in snap.compare_to(prev, "lineno")[:12]
                    ]
                prev = snap
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            time.sleep(interval_s)


def report(path: Path) -> str:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    lines = [
        "| t min | RSS MB | anon MB | heap MB | file MB | malloc in use MB | malloc free MB "
        "| Python traced MB | threads | released by malloc_trim MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = r.get("malloc") or {}
        py, trimmed = r.get("py_traced_mb"), r.get("trim_released_mb")
        lines.append(
            f"| {r['t_s'] / 60:.1f} | {r['VmRSS']:.0f} | {r['anon']:.0f} | {r['heap']:.0f} | {r['file']:.0f} "
            f"| {m.get('in_use', float('nan')):.0f} | {m.get('free', float('nan')):.0f} "
            f"| {'' if py is None else f'{py:.1f}'} | {r['Threads']:.0f} "
            f"| {'' if trimmed is None else f'{trimmed:.0f}'} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--interval-s", type=float, default=30.0)
    ap.add_argument("--tracemalloc", action="store_true", help="trace Python allocations (slower)")
    ap.add_argument("--malloc-trim", action="store_true", help="call glibc malloc_trim(0) before each sample")
    ap.add_argument("--report", type=Path, help="print the table of a timeline and exit")
    args = ap.parse_args()
    if args.report:
        print(report(args.report))
        return
    if args.out is None:
        ap.error("--out is required to run the server")
    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start(1)
    threading.Thread(
        target=sampler,
        args=(args.out, args.interval_s, args.tracemalloc, args.malloc_trim),
        name="memtrace",
        daemon=True,
    ).start()
    sys.argv = [sys.argv[0]]
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # one process: its memory is the server's
    runpy.run_module("phishlens.server.main", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
