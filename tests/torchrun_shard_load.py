"""Driver for the load-memory measurements (tests/unit/test_distributed_training.py,
benchmarks/fsdp_load.py): each rank loads a base as `phishlens train` does and reports its peak resident
memory, as one JSON line per rank on stdout.

    torchrun --standalone --nproc_per_node N tests/torchrun_shard_load.py BASE_DIR fsdp    # into shards
    python tests/torchrun_shard_load.py BASE_DIR whole                                     # the whole base

``fsdp`` loads with `sharded.load_sharded` (every rank reads its shards) and then runs the frozen lower-layer
pass through the shards on a few prompts; ``whole`` loads the whole base (as `loading.load_model`: what DDP
and one process do), reads every weight once as training would, and runs the same pass. Both add LoRA in
the top 2 layers, as `phishlens train` would.
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from transformers import AutoModelForCausalLM

from phishlens.training.commands.train import LoraOptions, lora_model
from phishlens.training.contract.base_models import PreparedBase, architecture_of
from phishlens.training.model.distributed import from_env
from phishlens.training.model.layers import lower_states
from phishlens.training.model.sharded import load_sharded, peak_rss_mb


def main(base_dir: str, how: str) -> None:
    base = PreparedBase("measured", Path(base_dir), "", architecture_of(base_dir))
    opts = LoraOptions(r=8, alpha=16, dropout=0.0, top_layers=2)
    ctx = from_env("fsdp")
    torch.manual_seed(0)
    prompts = [torch.randint(0, 1000, (n,)).tolist() for n in (48, 32, 64, 16)]
    gc.collect()
    before = peak_rss_mb()
    if how == "fsdp":
        model, split, _ = load_sharded(base, lambda m: lora_model(m, base.architecture, opts), [1, 2], ctx)
    else:
        model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)  # as loading.load_model
        model, split, _ = lora_model(model, base.architecture, opts)
        # from_pretrained maps the file: a weight is resident once read, and training reads every one
        for p in model.parameters():
            p.detach().sum()
    loaded = peak_rss_mb()
    states = lower_states(model, prompts, split, 0)
    print(
        json.dumps(
            {
                "rank": ctx.rank,
                "world": ctx.world,
                "how": how,
                "before_mb": round(before, 1),
                "loaded_mb": round(loaded, 1),
                "lower_pass_mb": round(peak_rss_mb(), 1),
                "base_mb": round(sum(f.stat().st_size for f in Path(base_dir).glob("*.safetensors")) / 2**20),
                "state_norm": round(float(sum(s.norm() for s in states)), 4),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
