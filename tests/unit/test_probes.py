"""Probes: a planted feature is decodable exactly from the layers where it was injected; files round-trip."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from phishlens.explain.hidden import collect_hidden, decoder, layer_name
from phishlens.explain.probes import ProbeError, ProbeSet, train_probes
from tests.models import WORDS, single_thread

INJECT_AT = 2  # block whose output gets the planted direction


def _feature(ids: list[int]) -> int:
    """A pseudo-random function of the token ids: no linear readout of a random model can know it."""
    return hashlib.sha256(str(ids).encode()).digest()[0] & 1


def _texts(n: int) -> list[str]:
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(4, 12)))) for _ in range(n)]


@pytest.fixture(scope="module")
def tiny(tiny_llama):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_llama.path))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama.path)).eval()
    return tok, model


def test_layer_names_follow_one_scheme(tiny):
    tok, model = tiny
    with single_thread():
        h = collect_hidden(model, [tok.encode("hello there")], pad_id=0)
    assert h.layers == [layer_name(i) for i in range(4)] == [f"layer.{i}.resid_post" for i in range(4)]
    assert h.last.shape == h.mean.shape == (1, 4, 128)


def test_states_do_not_depend_on_batch_mates(tiny):
    tok, model = tiny
    prompts = [tok.encode(t) for t in _texts(6)]
    with single_thread():
        alone = collect_hidden(model, prompts[:1], pad_id=0)
        batched = collect_hidden(model, prompts, pad_id=0)
    assert np.allclose(alone.last[0], batched.last[0], atol=1e-4)
    assert np.allclose(alone.mean[0], batched.mean[0], atol=1e-4)


def test_probe_finds_planted_feature_where_injected(tiny, tmp_path):
    tok, model = tiny
    texts = _texts(200)
    prompts = [tok.encode(t) for t in texts]
    y = [_feature(p) for p in prompts]
    direction = np.random.default_rng(1).normal(size=128).astype(np.float32)
    direction = 6.0 * direction / np.linalg.norm(direction)
    import torch

    seen: dict[str, torch.Tensor] = {}
    dec = decoder(model)

    def grab_ids(_m, args, kwargs):  # the decoder's input ids decide the planted feature per row
        seen["ids"] = kwargs.get("input_ids", args[0] if args else None)

    def plant(_m, _inp, out):
        h = out[0] if isinstance(out, tuple) else out
        (ids,) = (seen["ids"],)
        mask = ids != 0
        f = torch.tensor([_feature(row[m].tolist()) for row, m in zip(ids, mask)], dtype=h.dtype)
        h = h + (2 * f - 1)[:, None, None] * torch.from_numpy(direction)
        return (h, *out[1:]) if isinstance(out, tuple) else h

    handles = [
        dec.register_forward_pre_hook(grab_ids, with_kwargs=True),
        dec.layers[INJECT_AT].register_forward_hook(plant),
    ]
    try:
        with single_thread():
            hidden = collect_hidden(model, prompts, pad_id=0)
    finally:
        for h in handles:
            h.remove()
    probes = train_probes(hidden, {"planted": [str(v) for v in y]}, pooling="last", seed=0)
    acc = probes.probes["planted"].accuracy
    assert all(a >= 0.95 for a in acc[INJECT_AT:]), acc
    assert all(a <= 0.75 for a in acc[:INJECT_AT]), acc
    # the stored weights reproduce the held-out behaviour after a round trip through the files
    extras = probes.save(tmp_path)
    assert extras == {"probes": "probes.safetensors", "probes_index": "probes.json"}
    loaded = ProbeSet.load(tmp_path)
    p = loaded.probes["planted"].proba(hidden.last)[:, :, 1]  # [n, layers]
    pred_acc = ((p[:, -1] >= 0.5).astype(int) == np.array(y)).mean()
    assert pred_acc >= 0.95
    vals = loaded.apply(hidden, row=0)["planted"]
    assert len(vals) == 4 and all(0.0 <= v <= 1.0 for v in vals)


def test_multiclass_probe_and_skips():
    rng = np.random.default_rng(0)
    n, layers, d = 120, 3, 8
    states = rng.normal(size=(n, layers, d)).astype(np.float32)
    style = np.array(["email", "sms", "url"])[np.arange(n) % 3]
    states[:, 1:, 0] += 4.0 * (style == "sms")[:, None]  # style decodable from layer 1 on
    states[:, 1:, 1] += 4.0 * (style == "url")[:, None]
    from phishlens.explain.hidden import HiddenStates

    h = HiddenStates([layer_name(i) for i in range(layers)], states, states)
    ps = train_probes(h, {"style": style.tolist(), "const": ["a"] * n})
    assert "const" in ps.skipped
    acc = ps.probes["style"].accuracy
    assert acc[0] < 0.6 and acc[1] > 0.9 and acc[2] > 0.9
    out = ps.apply(h, 5)["style"]
    assert set(out[1]) == {"email", "sms", "url"} and abs(sum(out[1].values()) - 1) < 1e-6


def test_corrupt_probe_file_is_refused(tmp_path):
    (tmp_path / "probes.json").write_text("{not json")
    (tmp_path / "probes.safetensors").write_bytes(b"junk")
    with pytest.raises(ProbeError):
        ProbeSet.load(tmp_path)


def test_resuming_from_a_block_matches_the_full_forward(tiny):
    tok, model = tiny
    prompts = [tok.encode(t) for t in _texts(5)]
    with single_thread():
        full = collect_hidden(model, prompts, pad_id=0, keep_sequence_of=1)
        top = collect_hidden(model, prompts, pad_id=0, start=2, start_states=full.sequences)
    assert top.layers == ["layer.2.resid_post", "layer.3.resid_post"]
    assert np.allclose(top.last, full.last[:, 2:], atol=1e-4) and np.allclose(
        top.mean, full.mean[:, 2:], atol=1e-4
    )
    with pytest.raises(ValueError):
        collect_hidden(model, prompts, start=2)
