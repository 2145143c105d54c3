"""`/v1/explain` vs a naive `shap.Explainer` over transformers + peft, side by side, in one run.

    python benchmarks/explain.py [--n 3] [--max-evals 300] [--adapter default] [--max-words 60]

Both explain the same texts (whitespace-normalised, cut to ``--max-words``) with the same adapter, at
token granularity and equal ``max_evals``. Naive: ``shap.Explainer(f, shap.maskers.Text(tokenizer))``
(Partition, shap's default rounds of ~6 texts), where ``f`` runs each batch shap hands it through a peft
model (fp32, right-padded, full logits) and calibrates like the server. phishlens: a real uvicorn
server on the vLLM backend; each round of perturbations goes to the engine as one batch, duplicates
are scored once and the prefix cache is on. Reported: wall time per text, the speed ratio, unique
texts scored, the Pearson correlation of the two attribution vectors, and the additivity error.
``--example-html PATH`` also explains a classic phishing e-mail (word level) and writes its HTML page.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_texts, free_port, machine, running_server  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CLASSIC = ("Dear Customer, we have detected unusual activity on your PayPal account and it has been "
           "temporarily suspended. To restore access, please verify your identity within 24 hours by "
           "clicking the secure link below: http://paypal-security-check.com/login Failure to do so will "
           "result in permanent closure of your account. Thank you, PayPal Security Team")


def naive_explainer(bundle_path: Path):
    """(explain(text, max_evals) -> (values, base, evals), tokenizer) over a plain peft model."""
    import shap
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from phishlens.server.services.classify import calibrate
    from phishlens.training.base_models import resolve_base
    from phishlens.training.bundle import load_bundle
    from phishlens.training.prompt import PromptEncoder

    b = load_bundle(bundle_path)
    m = b.manifest
    base = resolve_base(m.base_model.ref)
    tok = AutoTokenizer.from_pretrained(str(base.path))
    model = AutoModelForCausalLM.from_pretrained(str(base.path), dtype=torch.float32)
    model = PeftModel.from_pretrained(model, str(bundle_path)).eval()
    enc = PromptEncoder(tok, m.prompt.template, m.prompt.max_text_tokens, m.prompt.head_fraction)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    calls = [0]

    def f(texts) -> np.ndarray:
        ids = [enc.encode(str(t)).ids for t in texts]
        calls[0] += len(ids)
        width = max(len(x) for x in ids)
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
        calls[0] = 0
        np.random.seed(0)
        ex = explainer([text], max_evals=max_evals, silent=True)
        base = float(np.asarray(ex.base_values).reshape(-1)[0])
        return np.asarray(ex.values[0]).reshape(-1), base, calls[0]

    return explain, tok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3, help="texts to explain")
    ap.add_argument("--max-evals", type=int, default=300)
    ap.add_argument("--adapter", default="default")
    ap.add_argument("--max-words", type=int, default=60, help="cut each text to its first N words")
    ap.add_argument("--round-nodes", type=int, default=None,
                    help="server explain_round_nodes (default: setting)")
    ap.add_argument("--block-size", type=int, default=None, help="server vllm_block_size (default: setting)")
    ap.add_argument("--example-html", type=Path, default=None)
    args = ap.parse_args()
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

    from phishlens.clients import PhishlensClient
    from phishlens.explain.attribution import normalise
    from phishlens.server.settings import Settings

    texts = [normalise(" ".join(t.split()[: args.max_words])) for t in bench_texts(args.n, seed=11)]
    bundle = REPO / "adapters" / args.adapter

    naive, tok = naive_explainer(bundle)
    naive("warm up shap and torch", 20)  # numba JIT + allocator, not measured
    naive_runs = []
    for t in texts:
        t0 = time.perf_counter()
        values, base, evals = naive(t, args.max_evals)
        naive_runs.append((time.perf_counter() - t0, values, base, evals))
    del naive

    extra: dict = {} if args.round_nodes is None else {"explain_round_nodes": args.round_nodes}
    if args.block_size is not None:
        extra["vllm_block_size"] = args.block_size
    settings = Settings(backend="vllm", adapters=[args.adapter], default_adapter=args.adapter,
                        port=free_port(),
                        explain_max_evals=max(1000, args.max_evals), **extra)
    served = []
    example = None
    with running_server(settings) as url, PhishlensClient(url, timeout=900) as c:
        c.explain("warm up the engine and shap", max_evals=20)
        for t in texts:
            t0 = time.perf_counter()
            ex = c.explain(t, granularity="token", max_evals=args.max_evals)
            served.append((time.perf_counter() - t0, ex))
        if args.example_html is not None:
            example = c.explain(CLASSIC, granularity="word", max_evals=args.max_evals, html=True)

    rows, corrs = [], []
    for (tn, v, base, evals), (ts, ex) in zip(naive_runs, served):
        same = len(v) == len(ex.attributions)
        corr = float(np.corrcoef(v, ex.attributions)[0, 1]) if same and len(v) > 1 else float("nan")
        corrs.append(corr)
        rows.append((len(ex.tokens), tn, ts, evals, ex.evaluations, corr, ex.additivity_error))
    tn_all = sum(r[1] for r in rows)
    ts_all = sum(r[2] for r in rows)
    print(f"\nmachine: {machine()}; load average {os.getloadavg()[0]:.1f}; adapter {args.adapter}; "
          f"{len(texts)} texts (<= {args.max_words} words), token granularity, max_evals {args.max_evals}, "
          f"server round size {settings.explain_round_nodes} nodes, vLLM block size "
          f"{settings.vllm_block_size or 'default (128 on CPU)'}\n")
    print("| text | tokens | naive s | phishlens s | speed-up | naive evals | phishlens unique evals | "
          "correlation | additivity err |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for i, (n, tn, ts, en, es, corr, add) in enumerate(rows):
        print(f"| {i} | {n} | {tn:.1f} | {ts:.1f} | {tn / ts:.2f}x | {en} | {es} | {corr:.4f} | {add:.1e} |")
    print(f"| all | | {tn_all:.1f} | {ts_all:.1f} | **{tn_all / ts_all:.2f}x** | | | "
          f"min {min(corrs):.4f} / mean {statistics.fmean(corrs):.4f} | |")
    if example is not None:
        args.example_html.parent.mkdir(parents=True, exist_ok=True)
        args.example_html.write_text(example.html or "", encoding="utf-8")
        print(f"\nclassic phishing e-mail, word level: P(phishing) = {example.prediction:.4f}, base "
              f"{example.base_value:.4f}, {example.evaluations} evaluations, {example.seconds:.1f}s; "
              f"HTML -> {args.example_html}")
        print("| rank | towards phishing | attribution | towards legitimate | attribution |")
        print("|---:|---|---:|---|---:|")
        for k, ((tp, vp), (tl, vl)) in enumerate(zip(example.top(8, 1), example.top(8, -1)), 1):
            print(f"| {k} | `{tp}` | {vp:+.4f} | `{tl}` | {vl:+.4f} |")


if __name__ == "__main__":
    main()
