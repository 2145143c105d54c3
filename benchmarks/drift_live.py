"""Drift monitor on real model scores: does it flag generalization failure, and only that?

    python benchmarks/drift_live.py [--adapters default,specialist-email,specialist-sms,specialist-url]
                                    [--per-class 100] [--unseen 60] [--other 40] [--n 2000]

For each shipped adapter, every distinct text of its pools is scored ONCE through the adapter (HF, the
reference builder's code path: calibrated P(phishing) exactly as served) and embedded once with MiniLM;
scores and embeddings are cached by text uid under ``--cache`` (default runs/drift_live/), so a rerun
scores nothing. The pools (test split only: no row is in a reference profile or was trained on):

* in-distribution: ``--per-class`` phishing and ``--legit`` legitimate rows per style of the adapter's mix,
  in the proportions the mix trains on (shrunk until every source suffices). At low prevalence a window
  is nearly all legitimate, so the pool must hold clearly more distinct legitimate texts than a window: a
  window drawn from 50 texts is a sample of 50, not 200, and its statistics are noisier than any
  calibration assumes;
* unseen sources: ``--unseen`` rows of each held-out source of the adapter's styles, labels as they come;
* other styles (specialists): ``--other`` rows (half per label) of the main source of each style the
  adapter was not trained on.

Streams are then drawn from the cache and fed, ``--batch`` texts per request, to a fresh real
`DriftMonitor` (window 200, statistics every 20 texts). An in-distribution stream holds no text twice when
its pool has enough texts of each class (`at_prevalence`; e.g. ``--per-class 1000 --legit 2000`` for
`specialist-url`, whose source has the test rows); otherwise it resamples the pool and is named "pool
resampled":

* in-distribution at 1 %, 5 %, 13 % and 50 % phishing, ``--n`` texts each: drift-alert evaluations
  (goal 0), and the prevalence estimate against the truth;
* adapters with several training sources: the same sources blended otherwise (each class's largest source
  over-weighted, `reblended`) at 5 % and 50 %: drift alerts (goal 0: the thresholds are calibrated for
  such blends, explain.drift_calibration);
* each unseen-source / other-style stream after one in-distribution window (5 % phishing): texts until
  the first drift alert (goal <= 200);
* a phishing wave: ``--n``/2 texts at 2 % then ``--n``/2 at 30 %: drift alerts (goal 0) and whether the
  prevalence rule of deploy/prometheus/alerts.yml (PhishlensPrevalenceShift, emulated on the monitor's
  estimates) fires, and how many texts after the jump.

CBPE under prior shift: expected precision / recall from the prior-adjusted posteriors of each
in-distribution stream, next to the precision / recall the stream's true labels give.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine

REPO = Path(__file__).resolve().parents[1]
PREVALENCES = (0.01, 0.05, 0.13, 0.5)
OTHER_STYLE_SOURCE = {"email": "email_spamassassin", "sms": "sms_uci", "url": "url_phishtank_iscx"}
WAVE = (0.02, 0.30)
WARM_PREVALENCE = 0.05
REBLEND = 0.5  # in-distribution streams with each class's largest source over-weighted (see `reblended`)


# ---- pools ----------------------------------------------------------------------------------------------
def _h(*parts: object) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()


def pools(
    manifest,
    splits,
    per_class: int,
    unseen: int,
    other: int,
    seed: int = 5,
    legit_per_class: int | None = None,
) -> dict[str, list]:
    """group → test-split records: "in", "unseen:<source>", "style:<style>" (see the module docstring)."""
    from phishlens.training.data.mixes import allocate, load_mix
    from phishlens.training.data.records import LABELS

    spec = load_mix(manifest.training_data.mix)
    out: dict[str, list] = {"in": []}
    for style in spec.styles:
        srcs = spec.sources_of(style)
        for lab in LABELS:
            avail = {s: splits.available("test", s, lab) for s in srcs}
            quota = per_class if lab == "phishing" or legit_per_class is None else legit_per_class
            # The sources of a class in the proportions the mix trained on (the reference's), shrunk as a
            # whole until every source's test rows suffice: topping a short source up from the others
            # shifts the class's composition, which the monitor rightly reports as drift (issue 19).
            mix = allocate(spec.train_per_style_label, {s: splits.available("train", s, lab) for s in srcs})
            total = sum(mix.values())
            want = {s: quota * k / total for s, k in mix.items() if k}
            fit = min([1.0] + [avail[s] / w for s, w in want.items()])
            for s, w in want.items():
                k = int(w * fit)
                if k:
                    out["in"] += splits.sample("test", s, k, seed=seed, labels=(lab,))
    for src in spec.held_out:
        rows = splits.rows("test", [src])
        if rows and rows[0].style in spec.styles:
            out[f"unseen:{src}"] = sorted(rows, key=lambda r: _h(seed, src, r.uid))[:unseen]
    for style, src in OTHER_STYLE_SOURCE.items():
        if style not in spec.styles:
            out[f"style:{style}"] = splits.sample("test", src, other // 2, seed=seed)
    return out


# ---- cached scores and embeddings -----------------------------------------------------------------------
def model_key(bundle) -> str:
    """What a cached score depends on: adapter weights, calibration, prompt (not the reference files)."""
    m = bundle.manifest
    h = hashlib.sha256((bundle.path / "adapter_model.safetensors").read_bytes())
    h.update(
        json.dumps(
            [m.calibration.temperature, m.prompt.model_dump(mode="json"), m.base_model.sha256]
        ).encode()
    )
    return h.hexdigest()[:16]


class _Cache:
    """uid → value, persisted as JSON (scores) or safetensors (embeddings) after every chunk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, object] = {}
        if path.is_file():
            if path.suffix == ".json":
                self.data = json.loads(path.read_text())
            else:
                from safetensors.numpy import load_file

                d = load_file(str(path))
                self.data = dict(zip(json.loads(path.with_suffix(".uids.json").read_text()), d["v"]))

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        if self.path.suffix == ".json":
            tmp.write_text(json.dumps(self.data))
        else:
            from safetensors.numpy import save_file

            uids = list(self.data)
            save_file({"v": np.stack([self.data[u] for u in uids]).astype(np.float32)}, str(tmp))
            self.path.with_suffix(".uids.json").write_text(json.dumps(uids))
        tmp.replace(self.path)


def score_all(bundle, records, cache_dir: Path, chunk: int = 32) -> dict[str, float]:
    """Calibrated P(phishing) per uid through the bundle's adapter; only texts not cached are scored."""
    cache = _Cache(cache_dir / f"scores-{bundle.manifest.name}-{model_key(bundle)}.json")
    todo = {r.uid: r.text for r in records if r.uid not in cache.data}
    if todo:
        import torch

        from phishlens.training.model.loading import CachedScorer, load_adapter_model

        am = load_adapter_model(bundle)
        scorer = CachedScorer(
            am.model,
            am.encoder(bundle),
            0,
            bundle.manifest.label_token_ids,
            am.pad_id,
            temperature=bundle.manifest.calibration.temperature,
            cache={},
        )
        items = sorted(todo.items(), key=lambda kv: len(kv[1]))  # similar lengths batch with little padding
        t0 = time.perf_counter()
        for i in range(0, len(items), chunk):
            part = items[i : i + chunk]
            with torch.inference_mode():
                p = np.concatenate([scorer([t for _, t in part[j : j + 8]]) for j in range(0, len(part), 8)])
            cache.data.update({u: float(x) for (u, _), x in zip(part, p)})
            scorer._cache.clear()
            cache.save()
            print(
                f"  {bundle.manifest.name}: scored {i + len(part)}/{len(items)} "
                f"({(i + len(part)) / (time.perf_counter() - t0):.1f} texts/s)",
                flush=True,
            )
    return {u: float(v) for u, v in cache.data.items()}  # type: ignore[arg-type]


def embed_all(records, cache_dir: Path, max_tokens: int) -> dict[str, np.ndarray]:
    from phishlens.explain.embed import Embedder

    cache = _Cache(cache_dir / f"minilm-{max_tokens}.safetensors")
    todo = {r.uid: r.text for r in records if r.uid not in cache.data}
    if todo:
        emb = Embedder(max_tokens=max_tokens)
        items = list(todo.items())
        for i in range(0, len(items), 256):
            part = items[i : i + 256]
            cache.data.update(zip([u for u, _ in part], emb([t for _, t in part])))
            cache.save()
    return cache.data  # type: ignore[return-value]


# ---- streams and replay ---------------------------------------------------------------------------------
@dataclass
class Stream:
    name: str
    records: list
    warm: int = 0  # leading in-distribution texts before the stream proper


def at_prevalence(rows, q: float, n: int, rng: random.Random, used: frozenset[str] = frozenset()) -> list:
    """`n` texts of `rows`, round(q * n) of them phishing, shuffled. When the pool holds enough texts of
    each class that are not in `used` (uids), no text comes twice: real traffic does not repeat a few
    hundred texts, and a window resampled from a small pool repeats some (a 400-text pool: 154-161 distinct
    texts per 200), which fattens the embedding statistic's tail (README "Drift on real scores"). Else the
    pool is resampled with replacement (small pools; `used` is then ignored)."""
    pos = [r for r in rows if r.label == "phishing"]
    neg = [r for r in rows if r.label != "phishing"]
    k = round(q * n)
    fresh_pos = [r for r in pos if r.uid not in used]
    fresh_neg = [r for r in neg if r.uid not in used]
    if k <= len(fresh_pos) and n - k <= len(fresh_neg):
        out = rng.sample(fresh_pos, k) + rng.sample(fresh_neg, n - k)
    else:
        out = [rng.choice(pos) for _ in range(k)] + [rng.choice(neg) for _ in range(n - k)]
    rng.shuffle(out)
    return out


def distinct(records) -> bool:
    return len({r.uid for r in records}) == len(records)


def reblended(rows, q: float, n: int, rng: random.Random, shift: float = REBLEND) -> list:
    """Like `at_prevalence`, but each class's texts come from its sources blended otherwise: shares
    (1 - shift) * p + shift on the class's largest source (p: the pool's shares, the training mix's). At
    `shift` = the reference's `source_shift` this is the edge of what its thresholds are calibrated for."""
    out = []
    for label, k in (("phishing", round(q * n)), ("legitimate", n - round(q * n))):
        by_src: dict[str, list] = {}
        for r in rows:
            if (r.label == "phishing") == (label == "phishing"):
                by_src.setdefault(r.source, []).append(r)
        names = sorted(by_src, key=lambda s: (-len(by_src[s]), s))
        total = sum(len(v) for v in by_src.values())
        weights = [
            (1 - shift) * len(by_src[s]) / total + (shift if j == 0 else 0.0) for j, s in enumerate(names)
        ]
        out += [rng.choice(by_src[s]) for s in rng.choices(names, weights, k=k)]
    rng.shuffle(out)
    return out


class _Registry:
    def __init__(self, bundle) -> None:
        self.e = SimpleNamespace(
            name=bundle.manifest.name, sha256=bundle.sha256, manifest=bundle.manifest, bundle=bundle
        )

    def get(self, name):
        return self.e

    def list(self):
        return [self.e]


def replay(bundle, stream: Stream, scores, embs, window: int, eval_every: int, batch: int):
    """Feed a stream to a fresh monitor; per evaluation: (texts fed, alert, prevalence, low, high)."""
    from prometheus_client import CollectorRegistry

    from phishlens.server.services.classify import Classification, ClassifyOutcome
    from phishlens.server.services.drift import DriftMonitor
    from phishlens.server.services.drift_metrics import DriftMetrics
    from phishlens.server.settings import Settings

    name = bundle.manifest.name
    by_text = {r.text: embs[r.uid] for r in stream.records}
    thr = bundle.manifest.calibration.threshold
    evals = []
    with tempfile.TemporaryDirectory() as state:
        settings = Settings(
            drift_window=window,
            drift_eval_every=eval_every,
            drift_state_dir=Path(state),
            drift_persist_s=3600,
        )
        mon = DriftMonitor(
            settings,
            _Registry(bundle),
            DriftMetrics(CollectorRegistry()),
            embedder=lambda texts: np.stack([by_text[t] for t in texts]),
        )
        mon.start()
        last = None
        for i in range(0, len(stream.records), batch):
            part = stream.records[i : i + batch]
            res = [
                Classification(
                    j,
                    "phishing" if scores[r.uid] >= thr else "legitimate",
                    scores[r.uid],
                    False,
                    False,
                    name,
                    bundle.sha256,
                    0,
                )
                for j, r in enumerate(part)
            ]
            mon.observe([r.text for r in part], ClassifyOutcome(res, len(part), 0, "clf-live"))
            if not mon.flush(600, evaluate=False):
                raise RuntimeError("the drift monitor did not keep up (600 s for one request)")
            rep = mon._windows[name].report
            if rep is not None and rep.evaluated_at != last and rep.status in ("ok", "drift"):
                last = rep.evaluated_at
                pv = rep.prevalence
                evals.append((i + len(part), rep.alert, pv.estimate, pv.low, pv.high, rep.most_shifted[:3]))
        mon.close()
    return evals


def prevalence_rule_fires(evals, start: int) -> int | None:
    """Texts after `start` until the emulated PhishlensPrevalenceShift holds (None: never): the usual level
    is taken from the estimates of the evaluations up to `start` (the alert: the last 6 hours)."""
    from phishlens.explain.prior import prevalence_shift

    usual = [e[2] for e in evals if e[0] <= start]
    if not usual:
        return None
    for n, _, _, lo, hi, _ in evals:
        if n > start and prevalence_shift(lo, hi, usual):
            return n - start
    return None


def cbpe_vs_truth(bundle, rows, scores, ref) -> tuple[float, float, float, float, float, float, float]:
    """(true prevalence, CBPE precision, realised precision, CBPE recall, realised recall, plain CBPE
    precision, plain CBPE recall) on a stream; CBPE from posteriors adjusted to the stream's estimated
    prevalence, plain CBPE from the served probabilities as they are."""
    from phishlens.explain import prior as P
    from phishlens.explain.performance import expected_confusion

    p = np.array([scores[r.uid] for r in rows])
    y = np.array([r.label == "phishing" for r in rows])
    pred = p >= bundle.manifest.calibration.threshold
    est = P.em_prior(p, ref.prior.calibration)
    q = P.adjust_posteriors(p, ref.prior.calibration, est.estimate)
    c = expected_confusion(zip(q.tolist(), pred.tolist()))
    plain = expected_confusion(zip(p.tolist(), pred.tolist()))
    tp, fp, fn = (pred & y).sum(), (pred & ~y).sum(), (~pred & y).sum()
    return (
        y.mean(),
        c.precision,
        tp / max(tp + fp, 1),
        c.recall,
        tp / max(tp + fn, 1),
        plain.precision,
        plain.recall,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adapters", default="default,specialist-email,specialist-sms,specialist-url")
    ap.add_argument("--per-class", type=int, default=100, help="in-distribution phishing pool rows per style")
    ap.add_argument("--legit", type=int, default=400, help="in-distribution legitimate pool rows per style")
    ap.add_argument("--unseen", type=int, default=60, help="pool rows per unseen source")
    ap.add_argument("--other", type=int, default=40, help="pool rows per other style")
    ap.add_argument("--n", type=int, default=2000, help="texts per in-distribution stream")
    ap.add_argument("--novel", type=int, default=400, help="most novel texts fed before giving up")
    ap.add_argument("--window", type=int, default=200)
    ap.add_argument("--eval-every", type=int, default=20)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--cache", type=Path, default=REPO / "runs" / "drift_live")
    ap.add_argument("--score-only", action="store_true", help="fill the score/embedding caches and stop")
    args = ap.parse_args()

    import torch  # noqa: F401 - imported once here, not in the first monitor's worker thread (slow on 2 cores)

    from phishlens.explain.reference import ReferenceProfile
    from phishlens.training.contract.bundle import load_bundle
    from phishlens.training.data.splits import load_splits

    splits = load_splits()
    t_start = time.perf_counter()
    table, cbpe_rows = [], []
    for name in [a for a in args.adapters.split(",") if a]:
        b = load_bundle(REPO / "adapters" / name)
        groups = pools(
            b.manifest, splits, args.per_class, args.unseen, args.other, legit_per_class=args.legit
        )
        every = [r for g in groups.values() for r in g]
        t = time.perf_counter()
        scores = score_all(b, every, args.cache)
        print(f"{name}: {len(every)} pool texts scored/cached in {time.perf_counter() - t:.0f}s", flush=True)
        if args.score_only:
            embed_all(every, args.cache, 128)
            continue
        ref = ReferenceProfile.load(b.path / b.manifest.extras["reference"])
        embs = embed_all(every, args.cache, ref.embedding.max_tokens if ref.embedding else 128)
        rng = random.Random(11)
        ind = groups["in"]
        for q in PREVALENCES:
            recs = at_prevalence(ind, q, args.n, rng)
            s = Stream(f"in-dist {q:.0%}{'' if distinct(recs) else ', pool resampled'}", recs)
            ev = replay(b, s, scores, embs, args.window, args.eval_every, args.batch)
            full = [e for e in ev if e[0] >= args.window]
            est = np.mean([e[2] for e in full]) if full else float("nan")
            cover = np.mean([e[3] <= q <= e[4] for e in full]) if full else float("nan")
            table.append(
                (
                    name,
                    s.name,
                    len(full),
                    sum(e[1] for e in full),
                    "-",
                    f"{est:.3f} (interval covers {q:.0%} in {cover:.0%})",
                )
            )
            cbpe_rows.append((name, q, *cbpe_vs_truth(b, s.records, scores, ref)))
        if len({r.source for r in ind}) > 1:  # several sources: the same ones, blended otherwise
            rb = random.Random(12)  # its own generator: the other streams stay as they were
            for q in (WARM_PREVALENCE, 0.5):
                s = Stream(f"in-dist {q:.0%}, sources reblended", reblended(ind, q, args.n, rb))
                ev = replay(b, s, scores, embs, args.window, args.eval_every, args.batch)
                full = [e for e in ev if e[0] >= args.window]
                shifted = ", ".join(sorted({f for e in full if e[1] for f in e[5]}))
                table.append((name, s.name, len(full), sum(e[1] for e in full), "-", shifted or "-"))
        for g, rows in groups.items():
            if g == "in":
                continue
            warm = at_prevalence(ind, WARM_PREVALENCE, args.window, rng)
            novel = [rng.choice(rows) for _ in range(args.novel)]
            ev = replay(
                b,
                Stream(g, warm + novel, args.window),
                scores,
                embs,
                args.window,
                args.eval_every,
                args.batch,
            )
            first = next((e for e in ev if e[1] and e[0] > args.window), None)
            pos = np.mean([r.label == "phishing" for r in rows])
            table.append(
                (
                    name,
                    f"{g} ({pos:.0%} phishing)",
                    len([e for e in ev if e[0] > args.window]),
                    sum(e[1] for e in ev if e[0] > args.window),
                    str(first[0] - args.window) if first else f"> {args.novel} (none)",
                    ", ".join(first[5]) if first else "",
                )
            )
        half = args.n // 2
        wave = at_prevalence(ind, WAVE[0], half, rng)
        wave += at_prevalence(ind, WAVE[1], half, rng, used=frozenset(r.uid for r in wave))
        ev = replay(b, Stream("wave", wave), scores, embs, args.window, args.eval_every, args.batch)
        full = [e for e in ev if e[0] >= args.window]
        fired = prevalence_rule_fires(full, half)
        before = prevalence_rule_fires([e for e in full if e[0] <= half], args.window * 2)
        after = [e for e in full if e[0] >= half + args.window]
        verdict = (
            f"prevalence alert {'after ' + str(fired) + ' texts' if fired else 'never'}"
            f"{' (also before the wave!)' if before else ''}; "
            f"estimate after {np.mean([e[2] for e in after]):.3f}"
        )
        table.append(
            (
                name,
                f"wave {WAVE[0]:.0%} → {WAVE[1]:.0%}{'' if distinct(wave) else ', pool resampled'}",
                len(full),
                sum(e[1] for e in full),
                "-",
                verdict,
            )
        )
        print(f"{name}: done", flush=True)

    print(
        f"\nmachine: {machine()}; window {args.window}, statistics every {args.eval_every} texts, "
        f"{args.batch} texts per request; real scores (HF, as served); pools: {args.per_class} phishing + "
        f"{args.legit} legitimate per style in-distribution, {args.unseen} per unseen source, "
        f"{args.other} per other style; "
        f"{time.perf_counter() - t_start:.0f}s in all\n"
    )
    print(
        "| adapter | stream | evaluations (full window) | drift alerts | texts to first drift alert "
        "| prevalence / first shifted features |"
    )
    print("|---|---|---:|---:|---:|---|")
    for row in table:
        print("| " + " | ".join(map(str, row)) + " |")
    print(
        "\nCBPE under prior shift (posteriors adjusted to the EM prior estimate) "
        "vs the stream's true labels:\n"
    )
    print(
        "| adapter | prevalence | CBPE precision (adjusted / plain) | true precision "
        "| CBPE recall (adjusted / plain) | true recall |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, q, _, cp, tp, cr, tr, pp, pr in cbpe_rows:
        print(f"| {name} | {q:.0%} | {cp:.3f} / {pp:.3f} | {tp:.3f} | {cr:.3f} / {pr:.3f} | {tr:.3f} |")


if __name__ == "__main__":
    main()
