"""The frozen-layer state cache: memory first, safetensors on disk across instances, atomic and optional."""

import torch

from phishlens.training.model.state_cache import StateCache, namespace


def test_states_survive_a_new_instance_only_with_a_disk_root(tmp_path):
    ns = namespace("b" * 64, "T {text}", 128, 26)
    a = StateCache(ns, tmp_path)
    h = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    a["hello \ud800 world"] = h[1:]  # a view of a larger tensor; a lone surrogate in the text
    b = StateCache(ns, tmp_path)
    assert "hello \ud800 world" in b and "other" not in b
    assert torch.equal(b["hello \ud800 world"], h[1:])
    assert list((tmp_path / ns).glob("*.tmp*")) == []
    mem = StateCache(ns, None)
    mem["x"] = h
    assert "x" in mem and "x" not in StateCache(ns, None)
    # another prompt, cap or split is another namespace
    assert namespace("b" * 64, "T {text}", 128, 25) != ns and namespace("b" * 64, "U {text}", 128, 26) != ns
