"""Driver for tests/unit/test_distributed_training.py: one `train_bundle` run (the code `phishlens train`
runs) on planted data and a tiny base, as a plain process or under `torchrun`.

    python tests/torchrun_train.py BASE_DIR OUT_DIR BATCH_SIZE [ddp|fsdp [CRASH_AT_STEP]] [--artifacts]
    torchrun --standalone --nproc_per_node 2 tests/torchrun_train.py ...    # the same arguments

CRASH_AT_STEP: every rank exits (code 3) right after the checkpoint of that step is on disk — a crash at an
exact step, which killing the process from outside cannot time; the next run with the same OUT_DIR resumes.
--artifacts: build the bundle's artefacts (drift reference, probes) too.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phishlens.training.commands.train import TrainConfig, train_bundle
from tests.models import planted


def crash_after_checkpoint(at_step: int) -> None:
    import os

    import torch

    from phishlens.training.model import finetune

    save = finetune._save_ckpt

    def save_then_crash(*args: object, **kwargs: object) -> None:  # (path, model, opt, step, losses, write)
        save(*args, **kwargs)  # type: ignore[arg-type]
        step = args[3]
        if step == at_step:
            if torch.distributed.is_initialized():
                torch.distributed.barrier()  # rank 0 has written the checkpoint
            os._exit(3)

    finetune._save_ckpt = save_then_crash


def main(base: str, out: str, batch_size: int, strategy: str = "ddp", artifacts: bool = False) -> None:
    cfg = TrainConfig(
        name="ddp-check",
        base=base,
        mix="planted",
        max_text_tokens=32,
        lora={"r": 4, "alpha": 8, "dropout": 0.0, "top_layers": 2},
        fit={"lr": 5e-3, "epochs": 2, "batch_size": batch_size, "checkpoint_every": 5},
        seed=13,
    )
    train_bundle(
        cfg,
        Path(out),
        ["tests/torchrun_train.py"],
        records=(planted(100, seed=0), planted(40, seed=1)),
        eval_sets={"sms_uci": planted(40, seed=2)},
        seen_sources=["sms_uci"],
        progress=False,
        artifacts=None if artifacts else (),
        strategy=strategy,
    )  # type: ignore[arg-type]


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(name)s: %(message)s"
    )  # the test reads the fsdp shard line
    build = "--artifacts" in sys.argv
    args = [a for a in sys.argv if a != "--artifacts"]
    if len(args) > 5:
        crash_after_checkpoint(int(args[5]))
    main(args[1], args[2], int(args[3]), *args[4:5], artifacts=build)
