"""PrefixTreeScorer: the same label log-probs as one plain forward per prompt, with shared prefixes run once.

Tiny random checkpoints of three architectures, each with a random (non-zero) LoRA adapter, scored
on SHAP-like perturbations of one prompt (spans replaced by a mask token) in rounds.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from phishlens.explain.prefix_tree import PrefixTreeScorer

LABELS = [17, 23]


@pytest.fixture(scope="module", params=["llama", "mistral", "gemma2"])
def model(request, tmp_path_factory, smollm2_base):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from phishlens.training.contract.base_models import build_tiny

    base = build_tiny(
        request.param, tmp_path_factory.mktemp(f"tiny-{request.param}"), seed=3, vocab_from=smollm2_base.path
    )
    m = AutoModelForCausalLM.from_pretrained(str(base.path), dtype=torch.float32)
    torch.manual_seed(0)
    peft = get_peft_model(
        m,
        LoraConfig(
            r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False
        ),
    )
    return peft.eval()


def plain(model, prompts):
    out = []
    with torch.inference_mode():
        for p in prompts:
            logits = model(input_ids=torch.tensor([p])).logits[0, -1]
            out.append(torch.log_softmax(logits.float(), -1)[LABELS].double().numpy())
    return np.array(out)


def perturbations(rng, n_rounds=6, per_round=8):
    """Rounds of prompts: template prefix + a text with random spans masked (token 7) + template suffix."""
    prefix, suffix = [1, 40, 41, 42, 43], [50, 51, 52]
    text = rng.integers(100, 400, size=24).tolist()
    rounds = [[prefix + text + suffix, prefix + [7] + suffix]]
    for _ in range(n_rounds):
        batch = []
        for _ in range(per_round):
            a = int(rng.integers(0, len(text)))
            b = int(rng.integers(a + 1, len(text) + 1))
            masked = text[:a] + [7] + text[b:]
            batch.append(prefix + masked + suffix)
        rounds.append(batch)
    return rounds


def test_same_logprobs_as_plain_forwards_and_prefixes_reused(model):
    rounds = perturbations(np.random.default_rng(0))
    scorer = PrefixTreeScorer(model, LABELS, chunk_tokens=64)
    got = np.concatenate([scorer.score(r) for r in rounds])
    want = plain(model, [p for r in rounds for p in r])
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-4, np.abs(got - want).max()
    s = scorer.stats
    assert s.prompts == len(want) and s.prompt_tokens == sum(len(p) for r in rounds for p in r)
    # every perturbation shares at least the template prefix and the text before its first mask
    assert s.computed_tokens < 0.7 * s.prompt_tokens, s
    assert s.resets == 0


def test_edge_cases_prefix_prompts_duplicates_tiny_chunks_and_reset(model):
    base = [1, 40, 41, 42, 43, 300, 301, 302]
    batch = [
        base,
        base[:3],
        base,
        base + [5, 6],
        [9],
        base[:1],
    ]  # prefixes of each other, duplicates, 1 token
    want = plain(model, batch)
    for kw in (dict(chunk_tokens=1), dict(chunk_tokens=1000), dict(max_cached_tokens=10)):
        scorer = PrefixTreeScorer(model, LABELS, **kw)
        got = scorer.score(batch)
        again = scorer.score(batch[::-1])  # now everything but each last token is cached
        assert np.abs(got - want).max() <= 1e-4, kw
        assert np.abs(again - want[::-1]).max() <= 1e-4, kw
        if "max_cached_tokens" in kw:
            assert scorer.stats.resets >= 1  # the store was dropped and rebuilt, answers unchanged
    assert PrefixTreeScorer(model, LABELS).score([]).shape == (0, 2)
    with pytest.raises(ValueError):
        PrefixTreeScorer(model, LABELS).score([[1, 2], []])
