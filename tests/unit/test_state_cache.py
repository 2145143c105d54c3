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


class _Interrupt(Exception):
    pass


class _Bar:
    """A tqdm stand-in that counts texts and, like Ctrl-C, stops the pass after ``stop_after`` updates."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.stop_after, self.updates, self.total = stop_after, 0, None

    def reset(self, total: int) -> None:
        self.total = total

    def update(self, n: int) -> None:
        self.updates += 1
        if self.stop_after is not None and self.updates >= self.stop_after:
            raise _Interrupt


def test_an_interrupted_lower_layer_pass_keeps_the_batches_it_finished(tmp_path, tiny_llama):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from phishlens.training.contract.prompt import PromptEncoder
    from phishlens.training.model.loading import CachedScorer
    from tests.models import single_thread

    tok = AutoTokenizer.from_pretrained(str(tiny_llama.path))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama.path)).eval()
    enc = PromptEncoder(tok, max_text_tokens=3000)
    # ~2,000 tokens each: the pass runs in several token batches of at most 8,192 tokens.
    texts = [" ".join(f"w{i}x{j}" for j in range(700)) for i in range(10)]
    ns = namespace("t" * 64, enc.template, 3000, 2)

    def scorer() -> CachedScorer:
        return CachedScorer(model, enc, 2, [0, 1], tok.pad_token_id, cache=StateCache(ns, tmp_path))

    with single_thread():
        bar = _Bar(stop_after=2)
        try:
            scorer().states(texts, progress=bar)
            raise AssertionError("the pass was not interrupted")
        except _Interrupt:
            pass
        kept = [t for t in texts if t in StateCache(ns, tmp_path)]
        assert 0 < len(kept) < len(texts), len(kept)  # the two finished batches survive on disk

        bar = _Bar()
        resumed = scorer().states(texts, progress=bar)
        assert bar.total == len(texts) - len(kept)  # only the rest runs again
        fresh = CachedScorer(model, enc, 2, [0, 1], tok.pad_token_id).states(texts)
    for a, b in zip(resumed, fresh, strict=True):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-5)
