"""Base models: the embedded SmolLM2 is prepared once and pinned by its weights sha256; tiny random
checkpoints for tests load, and keep the label words single tokens."""

from __future__ import annotations

import time

import pytest
import torch

from phishlens.training.contract.base_models import build_tiny, prepare_base, resolve_base, weights_sha256
from phishlens.training.contract.prompt import DEFAULT_LABEL_WORDS, PromptEncoder, label_token_ids


def test_prepare_base_is_idempotent_and_pins_the_weights(smollm2_base):
    marker = smollm2_base.path / "phishlens_base.json"
    mtime = marker.stat().st_mtime_ns
    t0 = time.monotonic()
    again = prepare_base("smollm2")
    elapsed = time.monotonic() - t0
    assert elapsed < 2.0, f"second prepare_base took {elapsed:.1f}s: it converted again"
    assert again == smollm2_base
    assert marker.stat().st_mtime_ns == mtime  # nothing rewritten
    assert again.architecture == "llama"
    assert again.sha256 == weights_sha256(again.path)
    assert resolve_base("smollm2") == again


def test_prepare_base_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown embedded base 'gpt-5'"):
        prepare_base("gpt-5")


def test_weights_sha256_needs_safetensors(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="no \\*.safetensors"):
        weights_sha256(tmp_path)


@pytest.mark.parametrize("arch", ["llama", "mistral", "gemma2"])
def test_build_tiny_gives_loadable_checkpoints(tmp_path, smollm2_base, tokenizer, arch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with torch.random.fork_rng():
        b = build_tiny(arch, tmp_path / arch, seed=0, vocab_from=smollm2_base.path)
    assert b.architecture == arch and b.sha256 == weights_sha256(b.path)
    assert resolve_base(str(b.path)).sha256 == b.sha256  # the marker is read back
    tok = AutoTokenizer.from_pretrained(str(b.path))
    model = AutoModelForCausalLM.from_pretrained(str(b.path)).eval()
    assert model.config.model_type == arch and model.config.num_hidden_layers == 4
    ids = label_token_ids(tok, DEFAULT_LABEL_WORDS)
    assert ids == label_token_ids(tokenizer, DEFAULT_LABEL_WORDS)  # same vocabulary as SmolLM2
    prompt = PromptEncoder(tok).encode("verify your account at http://example.com").ids
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([prompt])).logits
    assert logits.shape == (1, len(prompt), len(tok))
    assert torch.isfinite(logits).all()


def test_build_tiny_is_deterministic_per_seed(tmp_path, smollm2_base):
    a = build_tiny("llama", tmp_path / "a", seed=3, vocab_from=smollm2_base.path)
    b = build_tiny("llama", tmp_path / "b", seed=3, vocab_from=smollm2_base.path)
    c = build_tiny("llama", tmp_path / "c", seed=4, vocab_from=smollm2_base.path)
    assert a.sha256 == b.sha256 != c.sha256
