"""`/v1/classify` throughput and latency vs a naive per-text transformers loop, side by side.

    python benchmarks/classify.py [--n 64] [--backend vllm|hf] [--adapter default]

Both paths score the same texts with the same adapter and the same token ids. Naive: a peft model,
``torch.inference_mode``, one text per forward, full logits at every position. phishlens: a real
uvicorn server on a free port, the client sending batches of ``--batch`` texts from ``--concurrency``
threads. Useful FLOP/s = 2 × non-embedding parameters × prompt tokens / wall time, reported as a share
of this machine's torch fp32 matmul rate measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_texts, free_port, machine, matmul_gflops, percentile, running_server  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def naive(bundle_path: Path, texts: list[str]) -> tuple[float, int, int]:
    """texts/s of the naive loop, total prompt tokens, non-embedding parameter count."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from phishlens.training.contract.base_models import resolve_base
    from phishlens.training.contract.bundle import load_bundle
    from phishlens.training.contract.prompt import PromptEncoder

    b = load_bundle(bundle_path)
    base = resolve_base(b.manifest.base_model.ref)
    tok = AutoTokenizer.from_pretrained(str(base.path))
    model = AutoModelForCausalLM.from_pretrained(str(base.path), dtype=torch.float32)
    params = sum(p.numel() for n, p in model.named_parameters() if "embed" not in n and "lm_head" not in n)
    model = PeftModel.from_pretrained(model, str(bundle_path)).eval()
    enc = PromptEncoder(tok, b.manifest.prompt.template, b.manifest.prompt.max_text_tokens)
    ids = [enc.encode(t).ids for t in texts]
    with torch.inference_mode():
        model(torch.tensor([ids[0]]))  # warm-up
        t = time.perf_counter()
        for x in ids:
            _ = model(torch.tensor([x])).logits  # full logits, one text per forward
        dt = time.perf_counter() - t
    return len(texts) / dt, sum(len(x) for x in ids), params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--backend", default="vllm", choices=["vllm", "hf"])
    ap.add_argument("--adapter", default="default")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--singles", type=int, default=40)
    args = ap.parse_args()
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

    from phishlens.clients import PhishlensClient
    from phishlens.server.settings import Settings

    bundle = REPO / "adapters" / args.adapter
    # Disjoint texts for the measured batch, the warm-up and the single requests: a repeated prompt
    # would hit vLLM's prefix cache and flatter the numbers.
    pool = bench_texts(args.n + args.batch + args.singles)
    texts, warm, singles = pool[: args.n], pool[args.n : args.n + args.batch], pool[args.n + args.batch :]
    rate = matmul_gflops()
    naive_tps, tokens, params = naive(bundle, texts)

    settings = Settings(
        backend=args.backend,
        adapters=[args.adapter],
        default_adapter=args.adapter,
        port=free_port(),
        max_queue=4096,
    )
    with running_server(settings) as url, PhishlensClient(url, timeout=600) as c:
        c.classify(warm)  # warm-up (compilation, allocator) on texts not measured
        chunks = [texts[i : i + args.batch] for i in range(0, len(texts), args.batch)]
        t = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            results = list(pool.map(lambda ch: c.classify(ch), chunks))
        wall = time.perf_counter() - t
        served_tokens = sum(r.usage.prompt_tokens for r in results)
        lat = []
        for text in singles:
            t1 = time.perf_counter()
            c.classify(text)
            lat.append(time.perf_counter() - t1)
    tps = len(texts) / wall
    useful = 2 * params * served_tokens / wall / 1e9
    naive_useful = 2 * params * tokens * naive_tps / len(texts) / 1e9
    print(
        f"\nmachine: {machine()}; {len(texts)} texts ({tokens} prompt tokens), adapter {args.adapter}, "
        f"backend {args.backend}, batch {args.batch} x concurrency {args.concurrency}"
    )
    print(f"torch fp32 matmul rate: {rate:.1f} GFLOP/s\n")
    print("| path | texts/s | ratio | useful GFLOP/s | share of matmul rate |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| naive transformers loop (1 text/forward, full logits) | {naive_tps:.2f} | 1.00x | "
        f"{naive_useful:.1f} | {naive_useful / rate:.0%} |"
    )
    print(
        f"| phishlens /v1/classify ({args.backend}) | {tps:.2f} | {tps / naive_tps:.2f}x | "
        f"{useful:.1f} | {useful / rate:.0%} |"
    )
    print(
        f"\nsingle-request latency over {len(lat)} calls: p50 {statistics.median(lat) * 1000:.0f} ms, "
        f"p99 {percentile(lat, 99) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
