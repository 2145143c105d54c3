"""`phishlens train`'s training code under `torchrun --nproc_per_node 2` (DDP, gloo on CPU) gives the adapter
one process gives for the same global batch (training/model/distributed.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
DRIVER = REPO / "tests" / "torchrun_train.py"
BATCH = 15  # odd: the two ranks get 8 and 7 texts of each global batch (and 5 + 5 of the last one)


def run(argv: list[str], tmp: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    res = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]


def weights(bundle: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(bundle / "adapter_model.safetensors"))


def train_metrics(bundle: Path) -> dict:
    return json.loads((bundle / "phishlens.json").read_text())["metrics"]["train"]


@pytest.fixture(scope="module")
def runs(tiny_llama, tmp_path_factory) -> dict[str, Path]:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun not found (it ships with torch)")
    tmp = tmp_path_factory.mktemp("ddp")
    out = {"single": tmp / "single", "ddp2": tmp / "ddp2", "single-b8": tmp / "single-b8"}
    run([sys.executable, str(DRIVER), str(tiny_llama.path), str(out["single"]), str(BATCH)], tmp)
    run([torchrun, "--standalone", "--nproc_per_node", "2", str(DRIVER), str(tiny_llama.path), str(out["ddp2"]),
         str(BATCH)], tmp)
    run([sys.executable, str(DRIVER), str(tiny_llama.path), str(out["single-b8"]), "8"], tmp)
    return out


@pytest.mark.slow
def test_two_ranks_train_the_single_process_adapter(runs):
    one, two = weights(runs["single"]), weights(runs["ddp2"])
    assert one.keys() == two.keys() and one
    worst = max(float((one[k] - two[k]).abs().max()) for k in one)
    assert worst < 1e-4, f"largest LoRA weight difference {worst:.2e}"
    m1, m2 = train_metrics(runs["single"]), train_metrics(runs["ddp2"])
    assert m1["steps"] == m2["steps"] and m1["examples"] == m2["examples"]  # the same global batches
    assert abs(m1["final_loss"] - m2["final_loss"]) < 1e-4
    # training moved the weights (LoRA B starts at zero), so the agreement above is not trivial
    assert max(float(one[k].abs().max()) for k in one if "lora_B" in k) > 1e-3


@pytest.mark.slow
def test_a_different_global_batch_gives_a_different_adapter(runs):
    """The control: the comparison above can fail, since a changed global batch changes the weights."""
    one, other = weights(runs["single"]), weights(runs["single-b8"])
    assert max(float((one[k] - other[k]).abs().max()) for k in one) > 1e-3
