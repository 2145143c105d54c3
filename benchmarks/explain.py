"""`/v1/explain` vs a naive `shap.Explainer` over transformers + peft, side by side, in one run.

    python benchmarks/explain.py [--n 3] [--max-evals 300] [--adapter default] [--max-words 60]
                                 [--engines prefix_tree,backend]

All explain the same texts (whitespace-normalised, cut to ``--max-words``) with the same adapter, at
token granularity and equal ``max_evals``. Naive: ``shap.Explainer(f, shap.maskers.Text(tokenizer))``
(Partition, shap's default rounds of 5 nodes), where ``f`` runs each batch shap hands it through a
peft model (fp32, right-padded, full logits) and calibrates like the server. phishlens: a real
uvicorn server (vLLM backend) per ``explain_engine``: ``prefix_tree`` (HF replica, per-token K/V reuse
across the explanation) and ``backend`` (each round one vLLM batch, block-granular prefix cache).
Reported: wall time per text, the speed ratio, the Pearson correlation with the naive attributions,
the additivity error, and the tokens each side ran through the model (from /metrics).
``--example-html PATH`` also explains a classic phishing e-mail (word level) and writes its HTML page.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_texts, free_port, machine, running_server  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CLASSIC = (
    "Dear Customer, we have detected unusual activity on your PayPal account and it has been "
    "temporarily suspended. To restore access, please verify your identity within 24 hours by "
    "clicking the secure link below: http://paypal-security-check.com/login Failure to do so will "
    "result in permanent closure of your account. Thank you, PayPal Security Team"
)


def naive_explainer(bundle_path: Path):
    """(explain(text, max_evals) -> (values, base, evals), tokenizer) over a plain peft model."""
    import shap
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from phishlens.server.services.classify import calibrate
    from phishlens.training.contract.base_models import resolve_base
    from phishlens.training.contract.bundle import load_bundle
    from phishlens.training.contract.prompt import PromptEncoder

    b = load_bundle(bundle_path)
    m = b.manifest
    base = resolve_base(m.base_model.ref)
    tok = AutoTokenizer.from_pretrained(str(base.path))
    model = AutoModelForCausalLM.from_pretrained(str(base.path), dtype=torch.float32)
    model = PeftModel.from_pretrained(model, str(bundle_path)).eval()
    enc = PromptEncoder(tok, m.prompt.template, m.prompt.max_text_tokens, m.prompt.head_fraction)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    calls = [0, 0]  # texts scored, tokens run (padded)

    def f(texts) -> np.ndarray:
        ids = [enc.encode(str(t)).ids for t in texts]
        calls[0] += len(ids)
        width = max(len(x) for x in ids)
        calls[1] += width * len(ids)
        x = torch.full((len(ids), width), pad, dtype=torch.long)
        mask = torch.zeros_like(x)
        for i, row in enumerate(ids):
            x[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        with torch.inference_mode():
            logits = model(input_ids=x, attention_mask=mask).logits  # full logits at every position
            last = logits[torch.arange(len(ids)), torch.tensor([len(r) - 1 for r in ids])]
            logp = torch.log_softmax(last.float(), dim=-1)[:, m.label_token_ids]
        return np.array([calibrate(lp.tolist(), m.calibration)[0] for lp in logp])

    explainer = shap.Explainer(f, shap.maskers.Text(tok))

    def explain(text: str, max_evals: int):
        calls[0] = calls[1] = 0
        np.random.seed(0)
        ex = explainer([text], max_evals=max_evals, silent=True)
        base = float(np.asarray(ex.base_values).reshape(-1)[0])
        return np.asarray(ex.values[0]).reshape(-1), base, calls[0], calls[1]

    return explain, tok


def tokens_metric(metrics: str, engine: str, kind: str) -> float:
    import re

    m = re.search(rf'phishlens_explain_tokens_total{{engine="{engine}",kind="{kind}"}} (\S+)', metrics)
    return float(m.group(1)) if m else 0.0


def serve_and_explain(args, engine: str, texts: list[str]):
    """One real server with ``explain_engine=engine``: [(seconds, explanation)], the example, metrics text."""
    from phishlens.clients import PhishlensClient
    from phishlens.server.settings import Settings

    extra: dict = {} if args.round_nodes is None else {"explain_round_nodes": args.round_nodes}
    if args.block_size is not None:
        extra["vllm_block_size"] = args.block_size
    settings = Settings(
        backend="vllm",
        adapters=[args.adapter],
        default_adapter=args.adapter,
        port=free_port(),
        explain_engine=engine,
        explain_max_evals=max(1000, args.max_evals),
        **extra,
    )
    served, example = [], None
    with running_server(settings) as url, PhishlensClient(url, timeout=900) as c:
        c.explain("warm up the engine and shap", max_evals=20)
        before = c.metrics()
        for t in texts:
            t0 = time.perf_counter()
            ex = c.explain(t, granularity="token", max_evals=args.max_evals)
            served.append((time.perf_counter() - t0, ex))
        after = c.metrics()
        if args.example_html is not None and engine == args.engines[0]:
            example = c.explain(CLASSIC, granularity="word", max_evals=args.max_evals, html=True)
    tokens = {
        kind: tokens_metric(after, engine, kind) - tokens_metric(before, engine, kind)
        for kind in ("prompt", "computed")
    }
    return served, example, tokens, settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3, help="texts to explain")
    ap.add_argument("--max-evals", type=int, default=300)
    ap.add_argument("--adapter", default="default")
    ap.add_argument("--max-words", type=int, default=60, help="cut each text to its first N words")
    ap.add_argument(
        "--engines",
        default="prefix_tree,backend",
        help="server explain_engine values to measure, comma-separated",
    )
    ap.add_argument(
        "--round-nodes", type=int, default=None, help="server explain_round_nodes (default: setting)"
    )
    ap.add_argument("--block-size", type=int, default=None, help="server vllm_block_size (default: setting)")
    ap.add_argument("--example-html", type=Path, default=None)
    args = ap.parse_args()
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

    from phishlens.explain.attribution import normalise

    texts = [normalise(" ".join(t.split()[: args.max_words])) for t in bench_texts(args.n, seed=11)]
    bundle = REPO / "adapters" / args.adapter

    naive_runs: list = []

    def run_naive() -> None:
        naive, _ = naive_explainer(bundle)
        naive("warm up shap and torch", 20)  # numba JIT + allocator, not measured
        for t in texts:
            t0 = time.perf_counter()
            values, base, evals, padded = naive(t, args.max_evals)
            naive_runs.append((time.perf_counter() - t0, values, base, evals, padded))

    # In a thread that ends before the servers start: a live thread that has run torch keeps an OpenMP
    # team, which slowed torch in the server's threads by 30-60 % on 2 cores (not the naive side's doing).
    worker = threading.Thread(target=run_naive, name="naive-shap")
    worker.start()
    worker.join()
    if len(naive_runs) != len(texts):
        raise SystemExit("the naive explainer failed (see the traceback above)")

    results = {engine: serve_and_explain(args, engine, texts) for engine in args.engines}
    settings = next(iter(results.values()))[3]
    print(
        f"\nmachine: {machine()}; load average {os.getloadavg()[0]:.1f}; adapter {args.adapter}; "
        f"{len(texts)} texts (<= {args.max_words} words), token granularity, max_evals {args.max_evals}, "
        f"round size {settings.explain_round_nodes} nodes, vLLM block size "
        f"{settings.vllm_block_size or 'default'}\n"
    )
    head = "| text | tokens | naive s |" + "".join(f" {e} s | speed-up | corr |" for e in args.engines)
    print(head + " additivity err |")
    print("|---:|---:|---:|" + "---:|---:|---:|" * len(args.engines) + "---:|")
    totals = {e: 0.0 for e in args.engines}
    corrs: dict[str, list[float]] = {e: [] for e in args.engines}
    for i, (tn, v, _base, _evals, _) in enumerate(naive_runs):
        cells, add, ntok = [], 0.0, 0
        for e in args.engines:
            ts, ex = results[e][0][i]
            same = len(v) == len(ex.attributions)
            corr = float(np.corrcoef(v, ex.attributions)[0, 1]) if same and len(v) > 1 else float("nan")
            corrs[e].append(corr)
            totals[e] += ts
            add = max(add, ex.additivity_error)
            ntok = len(ex.tokens)
            cells.append(f" {ts:.1f} | {tn / ts:.2f}x | {corr:.4f} |")
        print(f"| {i} | {ntok} | {tn:.1f} |" + "".join(cells) + f" {add:.1e} |")
    tn_all = sum(r[0] for r in naive_runs)
    print(
        f"| all | | {tn_all:.1f} |"
        + "".join(
            f" {totals[e]:.1f} | **{tn_all / totals[e]:.2f}x** | min {min(corrs[e]):.4f} |"
            for e in args.engines
        )
        + " |"
    )
    padded = sum(r[4] for r in naive_runs)
    print(f"\ntokens through the model: naive {padded:.0f} (padded batches)", end="")
    for e in args.engines:
        tk = results[e][2]
        if tk["computed"]:
            print(
                f"; {e} {tk['computed']:.0f} computed of {tk['prompt']:.0f} prompt tokens "
                f"(naive/computed = {padded / tk['computed']:.2f}x)",
                end="",
            )
        else:
            print(
                f"; {e} {tk['prompt']:.0f} prompt tokens (engine-side prefix-cache hits not visible)", end=""
            )
    print()
    example = results[args.engines[0]][1]
    if example is not None:
        args.example_html.parent.mkdir(parents=True, exist_ok=True)
        args.example_html.write_text(example.html or "", encoding="utf-8")
        print(
            f"\nclassic phishing e-mail, word level: P(phishing) = {example.prediction:.4f}, base "
            f"{example.base_value:.4f}, {example.evaluations} evaluations, {example.seconds:.1f}s; "
            f"HTML -> {args.example_html}"
        )
        print("| rank | towards phishing | attribution | towards legitimate | attribution |")
        print("|---:|---|---:|---|---:|")
        for k, ((tp, vp), (tl, vl)) in enumerate(zip(example.top(8, 1), example.top(8, -1)), 1):
            print(f"| {k} | `{tp}` | {vp:+.4f} | `{tl}` | {vl:+.4f} |")


if __name__ == "__main__":
    main()
