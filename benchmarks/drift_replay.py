"""Drift monitor replay: false alerts on in-distribution traffic, detection delay on novel traffic, and the
cost of drift bookkeeping on /v1/classify latency.

    python benchmarks/drift_replay.py [--adapters default,specialist-sms] [--n 2000] [--skip-overhead]

For each shipped adapter with a reference profile (``adapters/<name>/reference.json``):

* in-distribution replay: ``--n`` test rows of the adapter's own mix sources, in the same (source, label)
  proportions as its validation rows (rows reused when a group has fewer test rows), fed one request of
  ``--batch`` texts at a time into a fresh `DriftMonitor` (real window, statistics, thresholds, MiniLM
  embeddings). Counted: alert onsets (0 → 1) over the run. Goal: 0 per 2,000 requests.
* novel replay: after the in-distribution run (a full in-distribution window), texts of a style or source
  absent from the adapter's mix. Counted: texts until the first alert. Goal: <= 200.

Scores: scoring 2,000 texts per adapter through SmolLM2 on a 2-core CPU takes far too long, so the replay
drives the monitor directly and draws each text's P(phishing) from the adapter's own reference score
sample of the text's class (benchmarks/drift_live.py uses real scores). The score and uncertainty features
are therefore in distribution by construction: the false-alert count covers the style and embedding
features, and the detection delays are upper bounds (a real model's scores shift too on novel traffic,
which can only add evidence).

Overhead: real /v1/classify single-text requests (mixed SMS / e-mail test rows) through one real uvicorn
server, the monitor attached vs detached in alternating blocks (see `overhead`), p50 latency each.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_texts, free_port, machine

REPO = Path(__file__).resolve().parents[1]
# novel traffic per adapter: sources of a style (or, for the generalist, sources) absent from its mix
NOVEL = {
    "default": ["email_lingspam", "sms_smishtank"],
    "specialist-email": ["sms_uci"],
    "specialist-sms": ["email_spamassassin"],
    "specialist-url": ["sms_uci"],
}


class _Registry:
    """The two registry calls the monitor makes, over bundles loaded from disk."""

    def __init__(self, bundles) -> None:
        self.entries = {
            b.manifest.name: SimpleNamespace(
                name=b.manifest.name, sha256=b.sha256, manifest=b.manifest, bundle=b
            )
            for b in bundles
        }

    def get(self, name):
        return self.entries[name]

    def list(self):
        return list(self.entries.values())


class _CachedEmbedder:
    """MiniLM with a per-text cache: the same test row replayed for several adapters is embedded once."""

    def __init__(self, max_tokens: int) -> None:
        from phishlens.explain.embed import Embedder

        self.inner = Embedder(max_tokens=max_tokens)
        self.cache: dict[str, np.ndarray] = {}

    def warm(self, texts) -> None:
        todo = list(dict.fromkeys(t for t in texts if t not in self.cache))
        for i in range(0, len(todo), 64):
            self.cache.update(zip(todo[i : i + 64], self.inner(todo[i : i + 64])))

    def __call__(self, texts):
        self.warm(texts)
        return np.stack([self.cache[t] for t in texts])


def streams(bundle, splits, n: int, n_novel: int, seed: int):
    from phishlens.training.artifacts import validation_rows

    rng = random.Random(seed)
    val = validation_rows(bundle.manifest)
    groups = defaultdict(int)
    for r in val:
        groups[(r.source, r.label)] += 1
    test = defaultdict(list)
    for r in splits.rows("test", sorted({s for s, _ in groups})):
        test[(r.source, r.label)].append((r.text, r.label))
    ind = []
    for g, k in groups.items():
        pool = test[g]
        want = round(n * k / len(val))
        ind += [pool[i % len(pool)] for i in rng.sample(range(max(want, len(pool))), want)] if pool else []
    rng.shuffle(ind)
    novel = [(r.text, r.label) for r in splits.rows("test", NOVEL[bundle.manifest.name])]
    rng.shuffle(novel)
    return ind[:n], novel[:n_novel]


def replay(bundle, ind, novel, embedder, window: int, eval_every: int, batch: int, seed: int):
    from prometheus_client import CollectorRegistry

    from phishlens.explain.reference import ReferenceProfile
    from phishlens.server.services.classify import Classification, ClassifyOutcome
    from phishlens.server.services.drift import DriftMonitor
    from phishlens.server.services.drift_metrics import DriftMetrics
    from phishlens.server.settings import Settings

    name = bundle.manifest.name
    ref = ReferenceProfile.load(bundle.path / bundle.manifest.extras["reference"])
    by_class = ref.features["score"].sorted  # (legitimate, phishing) reference scores
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as state:
        settings = Settings(
            drift_window=window,
            drift_eval_every=eval_every,
            drift_state_dir=Path(state),
            drift_persist_s=3600,
        )
        mon = DriftMonitor(
            settings, _Registry([bundle]), DriftMetrics(CollectorRegistry()), embedder=embedder
        )
        mon.start()
        t0 = time.perf_counter()

        def feed(rows) -> bool:
            texts = [t for t, _ in rows]
            p = [rng.choice(by_class[lab == "phishing"]) for _, lab in rows]
            res = [
                Classification(
                    i,
                    "phishing" if q >= 0.5 else "legitimate",
                    float(q),
                    False,
                    False,
                    name,
                    bundle.sha256,
                    0,
                )
                for i, q in enumerate(p)
            ]
            mon.observe(texts, ClassifyOutcome(res, len(texts), 0, "clf-replay"))
            mon.flush(60, evaluate=False)
            return mon._windows[name].report.alert

        onsets, prev = 0, False
        for i in range(0, len(ind), batch):
            a = feed(ind[i : i + batch])
            onsets += a and not prev
            prev = a
        delay = None
        for i in range(0, len(novel), batch):
            if feed(novel[i : i + batch]):
                delay = i + batch
                break
        rep = mon._windows[name].report
        mon.close()
    return onsets, delay, rep, (time.perf_counter() - t0) / (len(ind) + (delay or len(novel)))


def overhead(adapter: str, backend: str, blocks: int, block: int) -> tuple[float, float, int]:
    """p50 single-text /v1/classify latency (s) with the monitor off and on, and the texts measured each.

    One real uvicorn server; the monitor is detached from / attached to the ClassifyService between blocks of
    `block` requests (off/on, on/off, ... so machine-load changes hit both alike). Before an "off" block the
    worker is drained, so no drift work from the previous block overlaps it.
    """
    import threading

    import uvicorn

    from phishlens.clients import PhishlensClient
    from phishlens.server.app import create_app
    from phishlens.server.main import uvicorn_config
    from phishlens.server.settings import Settings

    texts = bench_texts(blocks * block * 2 + 8, seed=11)
    lat: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as state:
        s = Settings(
            backend=backend,
            adapters=[adapter],
            default_adapter=adapter,
            port=free_port(),
            drift_state_dir=Path(state),
            max_queue=4096,
        )
        app = create_app(s)
        server = uvicorn.Server(uvicorn_config(app, s, log_level="warning"))
        th = threading.Thread(target=server.run, daemon=True)
        th.start()
        try:
            with PhishlensClient(f"http://127.0.0.1:{s.port}", timeout=600) as c:
                c.wait_ready(timeout=900)
                rt = app.state.runtime
                mon, observers = rt.drift, rt.classify.observers
                on_loop: list[float] = []  # time spent inside observe(), i.e. on the event loop
                timed = _Timed(mon, on_loop)
                for t in texts[:8]:
                    c.classify(t)  # warm-up: engine, and MiniLM loads in the drift worker
                mon.flush(600, evaluate=False)
                observers.remove(mon)  # from here on it is attached only through `timed`, per block
                k = 8
                for b in range(blocks):
                    for on in (False, True) if b % 2 == 0 else (True, False):
                        if on and timed not in observers:
                            observers.append(timed)
                        if not on:
                            if timed in observers:
                                observers.remove(timed)
                            mon.flush(600, evaluate=False)
                        for t in texts[k : k + block]:
                            t1 = time.perf_counter()
                            c.classify(t)
                            lat[on].append(time.perf_counter() - t1)
                        k += block
        finally:
            server.should_exit = True
            th.join(60)
    return (
        statistics.median(lat[False]),
        statistics.median(lat[True]),
        len(lat[True]),
        statistics.mean(on_loop),
    )


class _Timed:
    """Wraps the monitor as an observer and records how long each observe() call holds the event loop."""

    def __init__(self, monitor, sink: list[float]) -> None:
        self.monitor, self.sink = monitor, sink

    def observe(self, texts, outcome) -> None:
        t = time.perf_counter()
        self.monitor.observe(texts, outcome)
        self.sink.append(time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--adapters",
        default="default,specialist-email,specialist-sms,specialist-url",
        help="comma-separated; empty for the overhead measurement only",
    )
    ap.add_argument("--n", type=int, default=2000, help="in-distribution texts per adapter")
    ap.add_argument("--novel", type=int, default=600, help="most novel texts fed before giving up")
    ap.add_argument("--window", type=int, default=200)
    ap.add_argument("--eval-every", type=int, default=20)
    ap.add_argument("--batch", type=int, default=4, help="texts per replayed request")
    ap.add_argument("--backend", default="vllm", choices=["vllm", "hf"])
    ap.add_argument("--blocks", type=int, default=6, help="off/on pairs of request blocks (overhead)")
    ap.add_argument("--block", type=int, default=10, help="single-text requests per block (overhead)")
    ap.add_argument("--overhead-adapter", default="default")
    ap.add_argument("--skip-overhead", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

    from phishlens.training.contract.bundle import load_bundle
    from phishlens.training.data.splits import load_splits

    splits = load_splits() if args.adapters else None
    embedders: dict[int, _CachedEmbedder] = {}
    rows = []
    for name in [a for a in args.adapters.split(",") if a]:  # --adapters "" : overhead only
        b = load_bundle(REPO / "adapters" / name)
        if "reference" not in b.manifest.extras:
            print(
                f"{name}: no reference profile (phishlens augment adapters/{name} --only reference); skipped"
            )
            continue
        from phishlens.explain.reference import ReferenceProfile

        mt = ReferenceProfile.load(b.path / b.manifest.extras["reference"]).embedding.max_tokens
        emb = embedders.setdefault(mt, _CachedEmbedder(mt))
        ind, novel = streams(b, splits, args.n, args.novel, seed=5)
        t = time.perf_counter()
        emb.warm([t for t, _ in ind + novel])
        t_emb = (time.perf_counter() - t) / max(len(ind) + len(novel), 1)
        onsets, delay, rep, per_text = replay(b, ind, novel, emb, args.window, args.eval_every, args.batch, 7)
        top = ", ".join(rep.most_shifted[:3])
        rows.append((name, len(ind), onsets, "+".join(NOVEL[name]), delay, top, per_text, t_emb))
        print(f"{name}: done ({onsets} false alerts, delay {delay})", flush=True)

    print(
        f"\nmachine: {machine()}; window {args.window} texts, statistics every {args.eval_every} texts, "
        f"{args.batch} texts per replayed request; scores drawn from each reference (see docstring)\n"
    )
    print(
        "| adapter | in-dist texts | false alerts (per 2,000) | novel traffic | detection delay (texts) "
        "| most shifted at alert | monitor ms/text (excl. MiniLM) | MiniLM ms/text |"
    )
    print("|---|---:|---:|---|---:|---|---:|---:|")
    for name, n, onsets, nov, delay, top, per_text, t_emb in rows:
        d = str(delay) if delay is not None else f"> {args.novel} (none)"
        print(
            f"| {name} | {n} | {onsets * 2000 / max(n, 1):.1f} | {nov} | {d} | {top} | {per_text * 1000:.1f} "
            f"| {t_emb * 1000:.1f} |"
        )
    if not args.skip_overhead:
        off, on, n, loop_s = overhead(args.overhead_adapter, args.backend, args.blocks, args.block)
        print(
            f"\n/v1/classify single-text p50 ({args.backend} backend, adapter {args.overhead_adapter}, "
            f"{n} requests each, interleaved blocks of {args.block}): "
            f"monitor off {off * 1000:.0f} ms, on {on * 1000:.0f} ms, "
            f"overhead {(on / off - 1) * 100:+.1f} %; observe() holds the event loop {loop_s * 1e6:.0f} µs "
            "per request"
        )


if __name__ == "__main__":
    main()
