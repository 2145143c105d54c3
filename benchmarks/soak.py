"""RSS soak: steady mixed-adapter load (and feedback) on a real server process, its memory sampled throughout.

    python benchmarks/soak.py --minutes 15 [--concurrency 16] [--style sms,url --max-chars 300]
    python benchmarks/soak.py --url http://host:8000 --pid PID --minutes 15   # an already running server

Without --url it starts `python -m phishlens.server.main` as its own process (SmolLM2 base by default, the
four shipped adapters, drift monitor and feedback journal on, state in a temp folder), so the RSS measured
is the server's alone, not the driver's. `--concurrency` clients send requests back to back for
`--minutes`: each scores one real test text through a random 1-4 of the adapters (mixed per request); every
`--feedback-every`-th request instead sends the text's true label for an earlier answer (the feedback
ledger and journal grow too). RSS (the server process and its children, from /proc) is sampled every
`--sample-s` seconds; the table shows it at the start, every `--report-min` minutes and at the end, with
the requests, 5xx and lost requests (no HTTP answer) so far. The slope (MB/min, least squares) is over the
samples after `--warmup-min` (caches, MiniLM and the first batches fill in the first minute).

Reported, not asserted: a flat RSS (slope near 0 after warm-up) is the expectation (docs/reliability.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO = Path(__file__).resolve().parents[1]
ADAPTERS = ["default", "specialist-email", "specialist-sms", "specialist-url"]


def tree_rss_mb(pid: int) -> tuple[float, float]:
    """(RSS of `pid`, RSS of `pid` and all its descendants) in MB, from /proc (Linux)."""

    def rss(p: int) -> float:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += rss(p)
        todo += children.get(p, [])
    return rss(pid), total


@dataclass
class Sample:
    t_s: float
    rss_mb: float
    tree_mb: float
    requests: int
    ok: int
    server_errors: int
    lost: int
    load: float  # host load average (1 min)


@dataclass
class Counts:
    requests: int = 0
    ok: int = 0
    server_errors: int = 0
    lost: int = 0
    sha_mismatch: int = 0
    feedback_ok: int = 0
    statuses: dict[int, int] | None = None


def slope_mb_per_min(samples: list[Sample]) -> float:
    """Least-squares slope of RSS (tree) over time, MB per minute; NaN with fewer than 2 samples."""
    if len(samples) < 2:
        return float("nan")
    ts = [s.t_s / 60 for s in samples]
    ys = [s.tree_mb for s in samples]
    mt, my = sum(ts) / len(ts), sum(ys) / len(ys)
    den = sum((t - mt) ** 2 for t in ts)
    return sum((t - mt) * (y - my) for t, y in zip(ts, ys)) / den if den else float("nan")


async def soak(
    url: str,
    pid: int,
    rows: list[tuple[str, str]],
    shas: dict[str, str],
    minutes: float,
    concurrency: int,
    sample_s: float,
    feedback_every: int,
    headers: dict[str, str],
    seed: int = 0,
) -> tuple[Counts, list[Sample]]:
    counts = Counts(statuses={})
    samples: list[Sample] = []
    names = sorted(shas)
    rng = random.Random(seed)
    answered: list[tuple[str, str]] = []  # (request id, true label) awaiting feedback
    t0 = time.monotonic()
    deadline = t0 + minutes * 60

    def sample() -> Sample:
        rss, tree = tree_rss_mb(pid)
        return Sample(
            time.monotonic() - t0,
            rss,
            tree,
            counts.requests,
            counts.ok,
            counts.server_errors,
            counts.lost,
            os.getloadavg()[0],
        )

    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)

    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=httpx.Timeout(600.0), limits=limits
    ) as c:

        async def worker() -> None:
            while time.monotonic() < deadline:
                counts.requests += 1
                n = counts.requests
                if feedback_every and n % feedback_every == 0 and answered:
                    rid, label = answered.pop(rng.randrange(len(answered)))
                    req = {"request_id": rid, "labels": [{"index": 0, "label": label}]}
                    path, text, label = "/v1/feedback", None, None
                else:
                    text, label = rows[rng.randrange(len(rows))]
                    req = {"input": text, "adapters": rng.sample(names, rng.randint(1, len(names)))}
                    path = "/v1/classify"
                try:
                    r = await c.post(path, json=req)
                except httpx.HTTPError:
                    counts.lost += 1
                    continue
                counts.statuses[r.status_code] = counts.statuses.get(r.status_code, 0) + 1  # type: ignore[index]
                if r.status_code >= 500:
                    counts.server_errors += 1
                if r.status_code != 200:
                    continue
                counts.ok += 1
                body = r.json()
                if path == "/v1/feedback":
                    counts.feedback_ok += 1
                    continue
                counts.sha_mismatch += sum(
                    1 for d in body["data"] if shas.get(d["adapter"]["name"]) != d["adapter"]["sha256"]
                )
                if len(answered) < 10_000:
                    answered.append((body["id"], label))

        async def sampler() -> None:
            while True:
                samples.append(sample())
                if time.monotonic() >= deadline:
                    return
                await asyncio.sleep(min(sample_s, max(0.0, deadline - time.monotonic())))

        await asyncio.gather(sampler(), *(worker() for _ in range(concurrency)))
    samples.append(sample())  # after the last answers
    return counts, samples


def report(samples: list[Sample], counts: Counts, report_min: float, warmup_min: float) -> str:
    lines = [
        (
            "| t min | server RSS MB | with children MB | requests | ok | 5xx | lost "
            "| ok req/s since last row | load avg |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    shown: list[Sample] = []
    next_t = 0.0
    for s in samples:
        if s.t_s >= next_t or s is samples[-1]:
            shown.append(s)
            next_t = (int(s.t_s / 60 / report_min) + 1) * report_min * 60
    prev = None
    for s in shown:
        rate = (s.ok - prev.ok) / (s.t_s - prev.t_s) if prev and s.t_s > prev.t_s else float("nan")
        lines.append(
            f"| {s.t_s / 60:.1f} | {s.rss_mb:.0f} | {s.tree_mb:.0f} | {s.requests} | {s.ok} | "
            f"{s.server_errors} | {s.lost} | {rate:.1f} | {s.load:.1f} |"
        )
        prev = s
    after = [s for s in samples if s.t_s >= warmup_min * 60]
    base = after[0] if after else samples[0]
    end = samples[-1]
    lines += [
        "",
        (
            f"RSS (with children): start {samples[0].tree_mb:.0f} MB, after warm-up ({warmup_min:g} min) "
            f"{base.tree_mb:.0f} MB, end {end.tree_mb:.0f} MB, max {max(s.tree_mb for s in samples):.0f} MB; "
            f"slope after warm-up {slope_mb_per_min(after):+.2f} MB/min over {len(after)} samples "
            f"(all samples: {slope_mb_per_min(samples):+.2f} MB/min)"
        ),
        (
            f"requests {counts.requests} (feedback answered {counts.feedback_ok}), ok {counts.ok}, "
            f"5xx {counts.server_errors}, lost {counts.lost}, sha256 mismatches {counts.sha_mismatch}, "
            f"statuses {dict(sorted((counts.statuses or {}).items()))}"
        ),
    ]
    return "\n".join(lines)


def start_server(args: argparse.Namespace, port: int, state: Path, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "PHISHLENS_BACKEND": args.backend,
        "PHISHLENS_BASE_MODEL": args.base_model,
        "PHISHLENS_ADAPTER_ROOTS": str(REPO / "adapters"),
        "PHISHLENS_ADAPTERS": ",".join(ADAPTERS),
        "PHISHLENS_PORT": str(port),
        "PHISHLENS_EXPLAIN_WARMUP": "false",
        "PHISHLENS_MAX_LOADED_ADAPTERS": "8",
        "PHISHLENS_DRIFT_STATE_DIR": str(state / "drift"),
        "PHISHLENS_FEEDBACK_STATE_DIR": str(state / "feedback"),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    cmd = [sys.executable, "-m", "phishlens.server.main"]
    if args.memtrace:  # the same server, with a memory timeline (benchmarks/memtrace.py)
        cmd = [sys.executable, str(REPO / "benchmarks" / "memtrace.py"), "--out", str(args.memtrace)]
        cmd += ["--interval-s", str(args.memtrace_interval_s)]
        cmd += ["--tracemalloc"] if args.tracemalloc else []
        cmd += ["--malloc-trim"] if args.malloc_trim else []
    fh = open(log, "ab")  # noqa: SIM115 - the server writes it until it exits
    return subprocess.Popen(cmd, env=env, stdout=fh, stderr=fh)


def wait_ready(url: str, proc: subprocess.Popen | None, timeout_s: float = 900) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the server exited with status {proc.returncode} before it was ready")
        try:
            if httpx.get(url + "/ready", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit("the server was not ready in time")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--sample-s", type=float, default=5.0)
    ap.add_argument("--report-min", type=float, default=1.0, help="a table row every this many minutes")
    ap.add_argument(
        "--warmup-min", type=float, default=1.0, help="samples before this are left out of the slope"
    )
    ap.add_argument("--feedback-every", type=int, default=5, help="every n-th request is feedback (0: none)")
    ap.add_argument("--style", default="sms,url", help="test rows of these styles (email, sms, url)")
    ap.add_argument("--max-chars", type=int, default=300)
    ap.add_argument("--backend", default="vllm")
    ap.add_argument("--base-model", default="smollm2")
    ap.add_argument("--url", help="an already running server (then --pid is its process id)")
    ap.add_argument("--pid", type=int)
    ap.add_argument("--api-key")
    ap.add_argument(
        "--memtrace", type=Path, help="start the server through benchmarks/memtrace.py, its timeline here"
    )
    ap.add_argument("--memtrace-interval-s", type=float, default=30.0)
    ap.add_argument("--malloc-trim", action="store_true", help="with --memtrace: malloc_trim at each sample")
    ap.add_argument("--server-log", type=Path, help="keep the started server's log here")
    ap.add_argument("--tracemalloc", action="store_true", help="with --memtrace: trace the Python heap too")
    args = ap.parse_args()
    if args.url and not args.pid:
        ap.error("--url needs --pid (the server process whose RSS is sampled)")

    from _common import corpus_rows, free_port, machine

    from phishlens.training.contract.bundle import load_bundle

    rows = corpus_rows(2000, args.style.split(","), args.max_chars)
    shas = {a: load_bundle(REPO / "adapters" / a).sha256 for a in ADAPTERS}
    headers = {"X-API-Key": args.api_key} if args.api_key else {}
    with tempfile.TemporaryDirectory(prefix="phishlens-soak-") as tmp:
        proc = None
        if args.url:
            url, pid = args.url, args.pid
        else:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            proc = start_server(args, port, Path(tmp), args.server_log or Path(tmp) / "server.log")
            pid = proc.pid
        try:
            t_start = time.time()
            wait_ready(url, proc)
            print(
                f"server ready in {time.time() - t_start:.0f} s (pid {pid}); soaking {args.minutes:g} min",
                flush=True,
            )
            counts, samples = asyncio.run(
                soak(
                    url,
                    pid,
                    rows,
                    shas,
                    args.minutes,
                    args.concurrency,
                    args.sample_s,
                    args.feedback_every,
                    headers,
                )
            )
        finally:
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(120)
                except subprocess.TimeoutExpired:
                    proc.kill()
                log_path = args.server_log or Path(tmp) / "server.log"
                log = log_path.read_text(errors="replace") if proc is not None else ""
                tracebacks = log.count("Traceback")
                print(f"server log: {len(log.splitlines())} lines, {tracebacks} tracebacks")
    mean_chars = sum(len(t) for t, _ in rows) / len(rows)
    print(
        f"\nphishlens RSS soak — {machine()}, backend {args.backend}, base {args.base_model}, "
        f"{args.concurrency} clients, {len(ADAPTERS)} adapters mixed per request, {args.minutes:g} min; "
        f"texts: test rows of style {args.style} ≤ {args.max_chars} chars (mean {mean_chars:.0f}); "
        "feedback every "
        f"{args.feedback_every} requests; host load average at the end {os.getloadavg()[0]:.1f}\n"
    )
    print(report(samples, counts, args.report_min, args.warmup_min))
    if args.memtrace:
        from memtrace import report as memtrace_report

        print(f"\nserver memory timeline ({args.memtrace}):\n")
        print(memtrace_report(args.memtrace))


if __name__ == "__main__":
    main()
