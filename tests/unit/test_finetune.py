"""LoRA fine-tuning on cached frozen layers: it learns a planted rule (checked through the *served*
path, HFScorer on a PeftModel loaded from the bundle), the cached top-layer path equals the full
forward for Llama, Mistral and Gemma 2, and a resumed run ends where an uninterrupted one does."""

from __future__ import annotations

import pytest
import torch

from phishlens.server.backends.hf_backend import HFScorer
from phishlens.training.commands.train import LoraOptions, lora_model
from phishlens.training.contract.prompt import PromptEncoder, label_token_ids
from phishlens.training.model.finetune import FitConfig, fit, margins
from phishlens.training.model.layers import lower_states
from tests.models import planted, single_thread

LABEL_WORDS = (" phishing", " legit")


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


def _load(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path)), AutoModelForCausalLM.from_pretrained(str(path)).eval()


def _lora(path, arch="llama", top_layers=2, r=8, seed=0):
    tok, model = _load(path)
    torch.manual_seed(seed)  # LoRA A init
    model, split, _ = lora_model(model, arch, LoraOptions(r=r, alpha=16, dropout=0.0, top_layers=top_layers))
    return tok, model, split


def _lora_weights(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


# ----------------------------------------------------------------------------- (a) it learns


def test_loss_falls_on_planted_rule(tiny_llama):
    tok, model, split = _lora(tiny_llama.path)
    enc = PromptEncoder(tok, max_text_tokens=32)
    labels = label_token_ids(tok, LABEL_WORDS)
    rows = planted(320, seed=3)
    states = lower_states(model, [enc.encode(r.text).ids for r in rows], split, tok.pad_token_id)
    res = fit(
        model,
        states,
        [r.y for r in rows],
        split,
        labels,
        FitConfig(lr=5e-3, batch_size=16, epochs=10, max_steps=60, seed=1),
    )
    assert res.steps == 60 and res.stopped_by == "max_steps" and len(res.losses) == 60
    first, last = sum(res.losses[:5]) / 5, sum(res.losses[-10:]) / 10
    assert first > 0.5  # starts near ln 2: the random model knows nothing
    assert last < 0.5 * first, (first, last)


def test_bundles_learned_their_rules_through_the_served_path(tiny_bundles, tiny_llama):
    """Both bundles on one PeftModel, scored in one mixed batch by the HF backend's scorer."""
    from peft import PeftModel

    _root, phish, legit = tiny_bundles
    tok, base = _load(tiny_llama.path)
    model = PeftModel.from_pretrained(base, str(phish.path), adapter_name="phish", is_trainable=False)
    model.load_adapter(str(legit.path), adapter_name="legit", is_trainable=False)
    model.eval()
    scorer = HFScorer(model, tok.pad_token_id)

    rows = planted(60, trigger_means_phishing=True, seed=999)  # fresh rows, never trained on
    m = phish.manifest
    assert legit.manifest.prompt == m.prompt and legit.manifest.label_token_ids == m.label_token_ids
    enc = PromptEncoder(tok, m.prompt.template, m.prompt.max_text_tokens, m.prompt.head_fraction)
    prompts = [enc.encode(r.text).ids for r in rows]
    n = len(rows)
    logp = scorer.label_logprobs(
        prompts * 3, [m.label_token_ids] * (3 * n), ["phish"] * n + ["legit"] * n + ["__base__"] * n
    )

    def p_phishing(bundle, part):
        cal = bundle.manifest.calibration
        z = torch.tensor([a - b for a, b in part]) / cal.temperature
        return torch.sigmoid(z), cal.threshold

    y = torch.tensor([r.y for r in rows], dtype=torch.bool)
    p, thr = p_phishing(phish, logp[:n])
    acc_phish = ((p > thr) == y).float().mean().item()
    p, thr = p_phishing(legit, logp[n : 2 * n])
    acc_legit = ((p > thr) == ~y).float().mean().item()  # zebra means legitimate for this one
    assert acc_phish >= 0.95, acc_phish
    assert acc_legit >= 0.95, acc_legit
    # The bare base has no rule: its margins do not separate the classes.
    base_margin = torch.tensor([a - b for a, b in logp[2 * n :]])
    assert abs(base_margin[y].mean() - base_margin[~y].mean()) < 0.5 * base_margin.std() + 1e-3


# ----------------------------------------------------------------------------- (b) cached == full forward


@pytest.mark.parametrize(("arch", "top_layers"), [("llama", 2), ("mistral", 3), ("gemma2", 3)])
def test_cached_top_layers_equal_full_forward(tmp_path, smollm2_base, arch, top_layers):
    from phishlens.training.contract.base_models import build_tiny

    base = build_tiny(arch, tmp_path / arch, seed=1, vocab_from=smollm2_base.path)
    tok, model, split = _lora(base.path, arch, top_layers=top_layers, r=4)
    assert split == 4 - top_layers
    torch.manual_seed(2)
    with torch.no_grad():  # lora_B starts at zero (a no-op adapter); make it matter
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0.0, 0.2)
    model.eval()
    labels = label_token_ids(tok, LABEL_WORDS)
    # 700 text tokens: past Gemma 2's 512-token sliding window, so the per-layer attention types
    # (sliding / full) of the sliced top layers must line up with the right layers.
    enc = PromptEncoder(tok, max_text_tokens=700)
    long_text = " ".join(f"item{i} costs {i * 3} dollars" for i in range(200))
    texts = [r.text for r in planted(6, seed=5)] + ["hi", long_text]
    prompts = [enc.encode(t).ids for t in texts]
    assert max(map(len, prompts)) > 600

    states = lower_states(model, prompts, split, tok.pad_token_id)
    cached = margins(model, states, split, labels)
    full = HFScorer(model, tok.pad_token_id).label_logprobs(prompts, [labels] * len(prompts), None)
    full = torch.tensor([a - b for a, b in full])
    assert torch.allclose(cached, full, atol=1e-4), (cached - full).abs().max()
    # ... and each prompt alone gives the same number (padding changes nothing).
    alone = torch.cat(
        [margins(model, lower_states(model, [p], split, tok.pad_token_id), split, labels) for p in prompts]
    )
    assert torch.allclose(alone, full, atol=1e-4), (alone - full).abs().max()
    # The adapter is live, so the comparison is not vacuous.
    with model.disable_adapter():
        bare = HFScorer(model, tok.pad_token_id).label_logprobs(prompts, [labels] * len(prompts), None)
    bare = torch.tensor([a - b for a, b in bare])
    assert (bare - full).abs().max() > 1e-2


# ----------------------------------------------------------------------------- (c) resume


class _Crash(Exception):
    pass


def test_resume_matches_uninterrupted_run(tiny_llama, tmp_path):
    """A run killed after step 10 (checkpoints every 5) and restarted with the same config ends with
    the same LoRA weights, optimiser path and loss history as a run that was never interrupted."""
    tok, _m, split = _lora(tiny_llama.path)
    enc = PromptEncoder(tok, max_text_tokens=32)
    labels = label_token_ids(tok, LABEL_WORDS)
    rows = planted(72, seed=4)  # 5 batches per epoch (last one short): the resume crosses an epoch
    prompts = [enc.encode(r.text).ids for r in rows]
    y = [r.y for r in rows]
    cfg = FitConfig(lr=5e-3, batch_size=16, epochs=10, max_steps=20, checkpoint_every=5, seed=7)

    _tok, ref, _ = _lora(tiny_llama.path)
    states = lower_states(ref, prompts, split, tok.pad_token_id)
    whole = fit(ref, states, y, split, labels, cfg)
    assert whole.steps == 20

    ckpt = tmp_path / "ckpt"
    _tok, first, _ = _lora(tiny_llama.path)

    def crash_after_10(step, loss, eps):
        if step == 11:
            raise _Crash

    with pytest.raises(_Crash):
        fit(first, states, y, split, labels, cfg, ckpt_dir=ckpt, on_step=crash_after_10)
    assert (ckpt / "ckpt.json").is_file()

    _tok, second, _ = _lora(tiny_llama.path)  # a fresh process: same init, nothing trained
    resumed = fit(second, states, y, split, labels, cfg, ckpt_dir=ckpt)
    assert resumed.steps == 20
    assert len(resumed.losses) == 20
    assert resumed.losses[:10] == pytest.approx(whole.losses[:10], abs=1e-6)
    assert resumed.losses == pytest.approx(whole.losses, abs=1e-5)

    want, got = _lora_weights(ref), _lora_weights(second)
    assert want.keys() == got.keys() and len(want) > 0
    moved = max(
        (w - p).abs().max().item()
        for w, p in zip(want.values(), _lora_weights(_lora(tiny_llama.path)[1]).values())
    )
    assert moved > 1e-3  # training changed the weights
    for name in want:
        assert torch.allclose(got[name], want[name], atol=1e-6), name


def test_stop_after_steps_then_resume_matches_uninterrupted_run(tiny_llama, tmp_path):
    """fit(max_steps=20, stop_after_steps=10) into a ckpt dir, then fit(max_steps=20) from it equals one
    uninterrupted 20-step run. (Cutting with max_steps=10 instead would shorten the LR schedule of the
    first 10 steps, so that run legitimately ends elsewhere.)"""
    import dataclasses

    tok, ref, split = _lora(tiny_llama.path)
    enc = PromptEncoder(tok, max_text_tokens=32)
    labels = label_token_ids(tok, LABEL_WORDS)
    rows = planted(48, seed=6)
    states = lower_states(ref, [enc.encode(r.text).ids for r in rows], split, tok.pad_token_id)
    y = [r.y for r in rows]
    cfg = FitConfig(lr=5e-3, batch_size=16, epochs=10, max_steps=20, checkpoint_every=5, seed=3)
    whole = fit(ref, states, y, split, labels, cfg)

    ckpt = tmp_path / "ckpt"
    _tok, cut, _ = _lora(tiny_llama.path)
    a = fit(cut, states, y, split, labels, dataclasses.replace(cfg, stop_after_steps=10), ckpt_dir=ckpt)
    assert (a.steps, a.stopped_by) == (10, "stop_after_steps")
    assert a.losses == pytest.approx(whole.losses[:10], abs=1e-6)
    _tok, again, _ = _lora(tiny_llama.path)
    b = fit(again, states, y, split, labels, cfg, ckpt_dir=ckpt)
    assert b.steps == 20 and b.examples == 10 * 16  # only the 10 remaining steps ran
    assert b.losses == pytest.approx(whole.losses, abs=1e-5)
    want, got = _lora_weights(ref), _lora_weights(again)
    for name in want:
        assert torch.allclose(got[name], want[name], atol=1e-6), name
