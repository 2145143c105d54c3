"""Sustained load, overload and hot reload under load against a real server: a bounded asyncio driver.

    python benchmarks/load.py [--n 10000] [--concurrency 32] [--backend vllm|hf] [--reloads 50]
    python benchmarks/load.py --url http://host:8000 --admin-key KEY   # an already running server
    python benchmarks/load.py --n 10000 --style sms,url --max-chars 300 --phases load   # short real texts

Texts: by default half SMS, half e-mail test rows (e-mails are long: ≈ 0.6 requests/s on the 2-core host);
`--style` picks real test rows of the given styles only (round-robin over style × label), `--max-chars`
drops longer ones, so a 10,000-request run fits in well under an hour on small hosts.

Without --url it starts a real uvicorn server (SmolLM2 base, the four shipped adapters: default and the
email, SMS and URL specialists) on a free port. Phases, each printed as a table row:

1. load: `--n` requests from `--concurrency` clients, each request one text scored by a random 1-4 of
   the loaded adapters (mixed per request). Counts 5xx, lost requests (no HTTP answer) and answers
   whose `adapter.sha256` is not the sha256 of the bundle loaded under that name; p50/p99 latency.
2. overload: a burst of requests with `--burst-texts` texts each from 4× the clients, past the queue
   cap: 429 with Retry-After, then throughput measured again (recovery: after / before).
3. reload: while the clients classify a probe text through adapter name `flip`, `flip` is replaced
   (`POST /v1/adapters` with `replace: true`) `--reloads` times alternating between two bundles that
   disagree on the probe text; every answer's label must be the one the bundle named by its sha256 gives,
   and no request may find the name missing (a 404 is counted; a client then waits 50 ms).

`run_load`, `run_overload` and `run_reload` are reused by tests/e2e/test_reliability_load.py at small
sizes on the tiny e2e adapters.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Phase:
    name: str
    requests: int = 0
    ok: int = 0
    status: dict[int, int] = field(default_factory=dict)
    lost: int = 0  # no HTTP answer at all (reset, timeout)
    sha_mismatch: int = 0
    label_mismatch: int = 0
    retry_after_missing: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)  # transport errors of the lost requests, by type
    unexpected: dict[str, int] = field(
        default_factory=dict
    )  # sha256 prefixes answered that were not expected
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def server_errors(self) -> int:
        return sum(n for s, n in self.status.items() if s >= 500)

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ys = sorted(self.latencies)
        return ys[min(len(ys) - 1, round(q / 100 * (len(ys) - 1)))]

    @property
    def rps(self) -> float:
        return self.ok / self.wall_s if self.wall_s else 0.0

    def row(self) -> str:
        st = " ".join(f"{k}:{v}" for k, v in sorted(self.status.items()))
        notes = "; ".join(self.notes + [f"{k}: {v}" for k, v in {**self.errors, **self.unexpected}.items()])
        return (
            f"| {self.name} | {self.requests} | {st} | {self.server_errors} | {self.lost} | "
            f"{self.sha_mismatch} | {self.label_mismatch} | {self.pct(50) * 1000:.0f} | "
            f"{self.pct(99) * 1000:.0f} | {self.rps:.1f} | {notes} |"
        )


HEADER = (
    "| phase | requests | statuses | 5xx | lost | sha mismatches | label mismatches | p50 ms | p99 ms | "
    "ok req/s | notes |\n|---|---|---|---|---|---|---|---|---|---|---|"
)


async def _drive(
    n: int,
    concurrency: int,
    make,
    check,
    phase: Phase,
    stop: asyncio.Event | None = None,
    backoff: dict[int, float] | None = None,
) -> None:
    """`concurrency` workers send `n` requests in all (or until `stop`); `make(i)` builds one, `check` reads
    it; after a status in `backoff` a worker waits that many seconds (a client retrying politely)."""
    counter = iter(range(n))
    t0 = time.perf_counter()

    async def worker() -> None:
        for i in counter:
            if stop is not None and stop.is_set():
                return
            method, url, kw = make(i)
            phase.requests += 1
            t = time.perf_counter()
            try:
                r = await _CLIENT.request(method, url, **kw)
            except httpx.HTTPError as e:
                phase.lost += 1
                phase.errors[type(e).__name__] = phase.errors.get(type(e).__name__, 0) + 1
                continue
            phase.status[r.status_code] = phase.status.get(r.status_code, 0) + 1
            if r.status_code == 200:
                phase.ok += 1
                phase.latencies.append(time.perf_counter() - t)
                check(i, r.json(), phase)
            elif r.status_code == 429 and "retry-after" not in r.headers:
                phase.retry_after_missing += 1
            if backoff and r.status_code in backoff:
                await asyncio.sleep(backoff[r.status_code])

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    phase.wall_s = time.perf_counter() - t0


_CLIENT: httpx.AsyncClient  # set by `_client`


class _client:
    def __init__(self, url: str, concurrency: int, headers: dict[str, str]) -> None:
        self.kw = {
            "base_url": url,
            "headers": headers,
            "timeout": httpx.Timeout(600.0),
            "limits": httpx.Limits(
                max_connections=concurrency * 4 + 8, max_keepalive_connections=concurrency * 4 + 8
            ),
        }

    async def __aenter__(self) -> httpx.AsyncClient:
        global _CLIENT
        _CLIENT = httpx.AsyncClient(**self.kw)
        return _CLIENT

    async def __aexit__(self, *exc) -> None:
        await _CLIENT.aclose()


async def run_load(
    url: str,
    shas: dict[str, str],
    texts: list[str],
    n: int,
    concurrency: int,
    headers: dict[str, str],
    seed: int = 0,
    progress_s: float | None = None,
) -> Phase:
    """Phase 1: n requests, each one text through a random non-empty subset of the adapters."""
    rng = random.Random(seed)
    names = sorted(shas)
    plan = [
        (texts[rng.randrange(len(texts))], rng.sample(names, rng.randint(1, len(names)))) for _ in range(n)
    ]
    phase = Phase("load")

    def make(i):
        text, adapters = plan[i]
        return "POST", "/v1/classify", {"json": {"input": text, "adapters": adapters}}

    def check(i, body, ph):
        _, adapters = plan[i]
        got = [(d["adapter"]["name"], d["adapter"]["sha256"]) for d in body["data"]]
        if [g[0] for g in got] != adapters:
            ph.label_mismatch += 1
        ph.sha_mismatch += sum(1 for name, sha in got if shas.get(name) != sha)

    async with _client(url, concurrency, headers):
        if progress_s is None:
            await _drive(n, concurrency, make, check, phase)
        else:
            await _with_progress(_drive(n, concurrency, make, check, phase), phase, progress_s)
    return phase


async def _with_progress(work, phase: Phase, every_s: float) -> None:
    """Run `work`, printing the phase's counts every `every_s` seconds (a cut-short run still reports)."""
    task = asyncio.ensure_future(work)
    t0 = time.perf_counter()
    while not task.done():
        await asyncio.wait([task], timeout=every_s)
        dt = time.perf_counter() - t0
        print(
            f"[{dt:.0f} s] {phase.name}: {phase.ok} answered 200 of {phase.requests} sent, "
            f"{phase.server_errors} 5xx, {phase.lost} lost, {phase.ok / dt:.2f} req/s, "
            f"load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    task.result()


async def run_overload(
    url: str, texts: list[str], n: int, concurrency: int, burst_texts: int, headers: dict[str, str]
) -> tuple[Phase, Phase, Phase]:
    """Phase 2: throughput before, a burst past the queue cap (429 + Retry-After), throughput after."""

    def single(i):
        return "POST", "/v1/classify", {"json": {"input": texts[i % len(texts)]}}

    def burst(i):
        return (
            "POST",
            "/v1/classify",
            {"json": {"input": [texts[(i + k) % len(texts)] for k in range(burst_texts)]}},
        )

    def nothing(i, body, ph):
        pass

    before, over, after = Phase("before burst"), Phase("burst"), Phase("after burst")
    async with _client(url, concurrency * 4, headers):
        await _drive(n, concurrency, single, nothing, before)
        await _drive(concurrency * 8, concurrency * 4, burst, nothing, over)
        await _settle(_CLIENT)
        await _drive(n, concurrency, single, nothing, after)
    over.notes.append(f"429 without Retry-After: {over.retry_after_missing}")
    after.notes.append(
        f"throughput after/before: {after.rps / before.rps:.2f}" if before.rps else "no baseline"
    )
    return before, over, after


async def _settle(client: httpx.AsyncClient, timeout_s: float = 120.0) -> None:
    """Wait until the server has no text in flight (the burst's admitted requests are all answered)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = await client.get("/metrics")
        inflight = next(
            (
                float(line.split()[1])
                for line in r.text.splitlines()
                if line.startswith("phishlens_inflight_texts ")
            ),
            0.0,
        )
        if r.status_code != 200 or inflight == 0:
            return
        await asyncio.sleep(0.2)


async def run_reload(
    url: str,
    flip_paths: tuple[str, str],
    flip_labels: dict[str, str],
    probe: str,
    n: int,
    concurrency: int,
    reloads: int,
    headers: dict[str, str],
    admin_headers: dict[str, str],
) -> Phase:
    """Phase 3: clients classify `probe` via adapter `flip` while `flip` is reloaded with alternating
    bundles; `flip_labels` maps each bundle's sha256 to the label it gives the probe."""
    phase = Phase("hot reload")
    stop = asyncio.Event()

    def make(i):
        return "POST", "/v1/classify", {"json": {"input": probe, "adapter": "flip"}}

    def check(i, body, ph):
        d = body["data"][0]
        want = flip_labels.get(d["adapter"]["sha256"])
        if want is None:
            ph.sha_mismatch += 1
            key = d["adapter"]["sha256"][:12]
            ph.unexpected[key] = ph.unexpected.get(key, 0) + 1
        elif d["label"] != want:
            ph.label_mismatch += 1

    async def swap(admin: httpx.AsyncClient, path: str) -> None:
        # replace=true: the new weights load beside the old and take the name in one step (no 404 gap)
        r = await admin.post("/v1/adapters", json={"path": path, "name": "flip", "replace": True})
        assert r.status_code == 201, r.text

    async def reloader() -> None:
        async with httpx.AsyncClient(base_url=url, headers=admin_headers, timeout=600) as admin:
            done = 0
            for k in range(1, reloads + 1):
                await swap(admin, flip_paths[k % 2])
                done += 1
                await asyncio.sleep(0.05)
            phase.notes.append(f"{done} reloads")
        stop.set()

    async with httpx.AsyncClient(base_url=url, headers=admin_headers, timeout=600) as admin:
        await swap(admin, flip_paths[0])  # served before the first client asks
    async with _client(url, concurrency, headers):
        await asyncio.gather(
            _drive(n, concurrency, make, check, phase, stop, backoff={404: 0.05}), reloader()
        )
    return phase


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--backend", default="vllm")
    ap.add_argument("--reloads", type=int, default=50)
    ap.add_argument("--burst-texts", type=int, default=64)
    ap.add_argument("--url")
    ap.add_argument("--api-key")
    ap.add_argument("--admin-key", default="load-admin")
    ap.add_argument("--only-reload", action="store_true", help="skip the load and overload phases")
    ap.add_argument(
        "--phases",
        default="load,overload,reload",
        help="comma-separated subset of load, overload, reload (default: all three)",
    )
    ap.add_argument(
        "--style",
        help="only test rows of these styles, comma-separated (email, sms, url); "
        "default: half SMS, half e-mail",
    )
    ap.add_argument("--max-chars", type=int, help="only texts of at most this many characters (with --style)")
    ap.add_argument("--pool", type=int, default=2000, help="distinct texts drawn for --style (default 2000)")
    ap.add_argument("--progress-s", type=float, default=30.0, help="print the load phase's counts this often")
    args = ap.parse_args()
    phases_wanted = {"reload"} if args.only_reload else set(args.phases.split(","))
    if phases_wanted - {"load", "overload", "reload"}:
        ap.error(f"--phases: unknown {sorted(phases_wanted - {'load', 'overload', 'reload'})}")
    if args.max_chars is not None and not args.style:
        ap.error("--max-chars needs --style")

    from _common import bench_texts, corpus_rows, free_port, machine, running_server

    from phishlens.server.settings import Settings
    from phishlens.training.contract.bundle import load_bundle

    adapters = ["default", "specialist-email", "specialist-sms", "specialist-url"]
    if args.style:
        texts = [t for t, _ in corpus_rows(args.pool, args.style.split(","), args.max_chars)]
        source = f"test rows of style {args.style}" + (f" ≤ {args.max_chars} chars" if args.max_chars else "")
    else:
        texts, source = bench_texts(200), "SMS and e-mail test rows"
    mean_chars = sum(map(len, texts)) / len(texts)
    headers = {"X-API-Key": args.api_key} if args.api_key else {}
    admin = {"X-API-Key": args.admin_key}
    root = REPO / "adapters"
    shas = {a: load_bundle(root / a).sha256 for a in adapters}
    settings = Settings(
        backend=args.backend,
        adapter_roots=[root],
        adapters=adapters,
        admin_keys=[args.admin_key],
        port=free_port(),
        explain_warmup=False,
        max_loaded_adapters=8,
    )
    probe = texts[0]
    t0 = time.time()
    with running_server(settings) if args.url is None else _nothing(args.url) as url:
        phases = []
        if "load" in phases_wanted:
            phases.append(
                asyncio.run(
                    run_load(url, shas, texts, args.n, args.concurrency, headers, progress_s=args.progress_s)
                )
            )
        if "overload" in phases_wanted:
            phases += asyncio.run(
                run_overload(url, texts, max(64, args.n // 20), args.concurrency, args.burst_texts, headers)
            )
        if "reload" not in phases_wanted:
            labels, a = {}, None
        else:
            labels = asyncio.run(_labels(url, probe, adapters, headers))
            # two shipped bundles that disagree on the probe text: the label names which weights answered
            a, b = next(((x, y) for x in adapters for y in adapters if labels[x] != labels[y]), (None, None))
            print(
                "flip:",
                a,
                shas.get(a, "")[:12],
                labels.get(a),
                "/",
                b,
                shas.get(b, "")[:12],
                labels.get(b),
                {k: v[:12] for k, v in shas.items()},
            )
        if a is not None:
            flip = {shas[a]: labels[a], shas[b]: labels[b]}
            phases.append(
                asyncio.run(
                    run_reload(
                        url, (a, b), flip, probe, 10**9, args.concurrency, args.reloads, headers, admin
                    )
                )
            )  # until the reloads are done
    print(
        f"\nphishlens load benchmark — {machine()}, backend {args.backend}, {args.concurrency} clients, "
        f"{len(adapters)} adapters, {time.time() - t0:.0f} s; texts: {source}, {len(texts)} distinct, "
        f"mean {mean_chars:.0f} chars; host load average at the end {os.getloadavg()[0]:.1f}\n"
    )
    print(HEADER)
    for p in phases:
        print(p.row())
    for p in phases:
        if p.name == "load" and p.rps:
            print(
                f"\nload phase: {p.rps:.2f} answered requests/s; 10,000 requests at this rate ≈ "
                f"{10_000 / p.rps / 60:.0f} min"
            )


async def _labels(url: str, probe: str, adapters: list[str], headers: dict[str, str]) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600) as c:
        r = await c.post("/v1/classify", json={"input": probe, "adapters": adapters})
        return {d["adapter"]["name"]: d["label"] for d in r.json()["data"]}


class _nothing:
    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> str:
        return self.url

    def __exit__(self, *exc) -> None:
        pass


if __name__ == "__main__":
    main()
