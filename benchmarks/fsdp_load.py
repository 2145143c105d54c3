"""Peak resident memory per rank when `phishlens train --strategy fsdp` loads a base into shards, against the
whole-base load of DDP / one process (training/model/sharded.py).

    python benchmarks/fsdp_load.py [--layers 24] [--hidden 512] [--vocab 8192] [--ranks 2 4]

Builds a random Llama of that shape (float32 safetensors in a temporary folder), then for each rank count
runs `tests/torchrun_shard_load.py ... fsdp` under `torchrun` (every rank loads its shards, then runs the
frozen lower-layer pass through them) and once `... whole` in one process (loads the whole base and reads
every weight). Prints, per rank count, the largest over ranks of the peak RSS (VmHWM) growth from just before
loading, after the load and after the lower-layer pass, in MB and as a share of the base's size.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DRIVER = REPO / "tests" / "torchrun_shard_load.py"


def build(out: Path, layers: int, hidden: int, vocab: int) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.for_model(
        "llama",
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=hidden * 8 // 3 // 64 * 64,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,
        num_key_value_heads=max(1, hidden // 256),
        head_dim=64,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).save_pretrained(str(out))


def measure(argv: list[str]) -> list[dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    res = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if res.returncode:
        raise SystemExit(res.stdout[-2000:] + res.stderr[-4000:])
    # one JSON object per rank; torchrun interleaves the ranks' output, so not one per line
    return [json.loads(m) for m in re.findall(r'\{"rank"[^{}]*\}', res.stdout)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, default=24)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--ranks", type=int, nargs="+", default=[2, 4])
    args = ap.parse_args()
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    with tempfile.TemporaryDirectory(prefix="fsdp-load-") as tmp:
        base = Path(tmp)
        build(base, args.layers, args.hidden, args.vocab)
        rows = [("whole (DDP / 1 process)", measure([sys.executable, str(DRIVER), str(base), "whole"]))]
        for n in args.ranks:
            argv = [str(torchrun), "--standalone", "--nproc_per_node", str(n), str(DRIVER), str(base), "fsdp"]
            rows.append((f"fsdp, {n} ranks", measure(argv)))
    size = rows[0][1][0]["base_mb"]
    print(
        f"base: random Llama, {args.layers} layers, d={args.hidden}, vocab {args.vocab}, float32: {size} MB\n"
        "peak RSS growth per rank from just before loading (largest over ranks)\n"
    )
    print(f"| {'load':<24} | {'after load':>16} | {'after lower pass':>18} | {'same states':>11} |")
    print(f"|{'-' * 26}|{'-' * 18}|{'-' * 20}|{'-' * 13}|")
    ref = rows[0][1][0]["state_norm"]
    for name, ranks in rows:
        load = max(r["loaded_mb"] - r["before_mb"] for r in ranks)
        lower = max(r["lower_pass_mb"] - r["before_mb"] for r in ranks)
        same = all(abs(r["state_norm"] - ref) <= 1e-5 * abs(ref) for r in ranks)
        print(
            f"| {name:<24} | {load:7.0f} MB {load / size:4.0%} | {lower:9.0f} MB {lower / size:4.0%} "
            f"| {'yes' if same else 'NO':>11} |"
        )


if __name__ == "__main__":
    main()
