"""Shared pytest fixtures. Keep each block small and in its own section."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Servers built in tests persist drift windows; keep them out of the user's ~/.cache (one folder per run).
os.environ.setdefault("PHISHLENS_DRIFT_STATE_DIR", tempfile.mkdtemp(prefix="phishlens-test-drift-"))
# Feedback state is journaled only where a test asks for it (counts asserted per test must start at zero).
os.environ.setdefault("PHISHLENS_FEEDBACK_STATE_DIR", "")

# =====================================================================================================
# Data (real corpora under PHISHLENS_DATA_ROOT or <repo>/../shared/data) — owner: training/data
# Tests that read the corpora: mark them `@pytest.mark.data` and take the `data_root` fixture; they are
# skipped with a clear reason when the data root is absent.
# =====================================================================================================


def _data_root_or_reason() -> tuple[Path | None, str]:
    from phishlens.training.data.config import DataRootMissing, data_root

    try:
        return data_root(), ""
    except DataRootMissing as e:
        return None, f"corpora not available: {e}"


def skip_without_data() -> Path:
    """Return the data root, or skip the calling test with the reason it is missing."""
    root, reason = _data_root_or_reason()
    if root is None:
        pytest.skip(reason)
    return root


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The corpora root; skips the test (clear reason) when it is absent."""
    return skip_without_data()


@pytest.fixture(scope="session")
def splits(data_root: Path):
    """All sources, masked, de-duplicated and split with the default seed (memoised)."""
    from phishlens.training.data.splits import load_splits

    return load_splits(data_root, seed=13)


# =====================================================================================================
# Server (fake backend, tiny bundles; see tests/fakes.py) — owner: server
# =====================================================================================================


@pytest.fixture(scope="session")
def smollm2_base():
    """The prepared SmolLM2 base (converted once, ≈30 s, then cached under ~/.cache/phishlens)."""
    from phishlens.training.contract.base_models import prepare_base

    return prepare_base("smollm2")


@pytest.fixture(scope="session")
def tokenizer(smollm2_base):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(smollm2_base.path))


@pytest.fixture(scope="session")
def adapter_root(tmp_path_factory, tokenizer, smollm2_base) -> Path:
    """A root holding bundles `default` (T=1), `alt` (T=2) and `spare` (T=4), all with passing golden
    examples."""
    from tests.fakes import write_bundle

    root = tmp_path_factory.mktemp("adapters")
    golden = [("please reply urgent with your password", "phishing"), ("lunch at noon?", "legitimate")]
    for name, temp in (("default", 1.0), ("alt", 2.0), ("spare", 4.0)):
        write_bundle(
            root,
            name,
            tokenizer=tokenizer,
            base_sha256=smollm2_base.sha256,
            temperature=temp,
            golden=golden,
            seed=int(temp),
        )
    return root


@pytest.fixture()
def fake_backend(tokenizer, smollm2_base):
    from tests.fakes import FakeBackend

    return FakeBackend(tokenizer, smollm2_base.sha256)


# =====================================================================================================
# Tiny trained models (real training code on tiny random bases; see tests/models.py) — owner: training
# =====================================================================================================


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory, smollm2_base):
    """A tiny random Llama (4 layers, d=128) with the SmolLM2 tokenizer, built in about a second."""
    from phishlens.training.contract.base_models import build_tiny

    return build_tiny("llama", tmp_path_factory.mktemp("tiny-llama"), seed=0, vocab_from=smollm2_base.path)


@pytest.fixture(scope="session")
def tiny_bundles(tmp_path_factory, tiny_llama):
    """(root, bundle_zebra_phish, bundle_zebra_legit): two real trained bundles with opposite planted
    rules."""
    from tests.models import single_thread, train_tiny_bundle

    root = tmp_path_factory.mktemp("tiny-bundles")
    with single_thread():
        phish = train_tiny_bundle(
            tiny_llama.path, root / "zebra-phish", "zebra-phish", trigger_means_phishing=True, seed=0
        )
        legit = train_tiny_bundle(
            tiny_llama.path, root / "zebra-legit", "zebra-legit", trigger_means_phishing=False, seed=1
        )
    return root, phish, legit
