"""The bundle contract (training/contract) is what serving shares with training: it must import without
torch (or transformers, peft, pandas) and without pulling in any other training module."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import importlib, pkgutil, sys
for heavy in ("torch", "transformers", "peft", "vllm", "pandas", "sklearn"):
    sys.modules[heavy] = None  # any import of these now raises ImportError
import phishlens.training.contract as contract
names = sorted(i.name for i in pkgutil.iter_modules(contract.__path__))
for name in names:
    importlib.import_module("phishlens.training.contract." + name)
others = sorted(m for m in sys.modules if m.startswith("phishlens.training.")
                and not m.startswith("phishlens.training.contract"))
print(" ".join(names))
print("OTHERS", others)
assert not others, others
from phishlens.training.contract.bundle import load_bundle
from phishlens.training.contract.prompt import PromptEncoder
from phishlens.training.contract.base_models import resolve_base
"""


def test_contract_imports_with_torch_blocked_and_pulls_in_no_training_code():
    r = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    modules = set(r.stdout.split("\n", 1)[0].split())
    assert {"bundle", "prompt", "base_models", "pipeline", "style", "mime", "masking"} <= modules


def test_blocking_torch_is_a_real_check():
    """The same harness fails for a module that needs torch (so the test above can fail)."""
    needs_torch = "import phishlens.training.model.layers\nimport phishlens.training.contract as contract"
    code = CHECK.replace("import phishlens.training.contract as contract", needs_torch)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "import of torch halted" in r.stderr
