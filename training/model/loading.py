"""Base and adapter loading for everything that runs a bundle's model through transformers + peft
(evaluation, bundle artefacts, diagnosis), and the cached scorer they share.

`load_adapter_model` is the one place a bundle meets peft: it resolves the bundle's base, refuses a base
whose weights differ from the ones the adapter was trained on, and loads the adapter under the bundle's
name onto one model per base (several bundles of one base share it; `AdapterModel.activate` switches).
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from phishlens.training.contract.base_models import PreparedBase, resolve_base
from phishlens.training.contract.bundle import Bundle, BundleError
from phishlens.training.contract.prompt import PromptEncoder
from phishlens.training.model.calibration import apply_temperature
from phishlens.training.model.distributed import DistContext
from phishlens.training.model.finetune import margins
from phishlens.training.model.layers import lower_states


def load_tokenizer(base: PreparedBase) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(base.path))


def load_model(base: PreparedBase, dtype: str = "float32") -> tuple[Any, Any]:
    """(tokenizer, causal LM) of a prepared base, on CPU in `dtype`."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(base.path), dtype=getattr(torch, dtype))
    return load_tokenizer(base), model


@dataclass
class AdapterModel:
    """One transformers copy of a base with the adapters of several bundles on it (peft, eval mode)."""

    base: PreparedBase
    tokenizer: Any
    model: Any  # peft.PeftModel; adapters named by bundle name
    bundles: dict[str, Bundle] = field(default_factory=dict)

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    def activate(self, name: str) -> None:
        self.model.set_adapter(name)

    def encoder(self, bundle: Bundle) -> PromptEncoder:
        """The bundle's prompt encoder (template and truncation as served) on this tokenizer."""
        p = bundle.manifest.prompt
        return PromptEncoder(self.tokenizer, p.template, p.max_text_tokens, p.head_fraction)


def load_adapter_model(bundle: Bundle, into: AdapterModel | None = None) -> AdapterModel:
    """Load `bundle`'s adapter, active, onto its base: into `into` when that holds the same base weights,
    else onto a freshly loaded base. Raises BundleError when the base's weights differ from the ones the
    adapter was trained on."""
    from peft import PeftModel

    m = bundle.manifest
    if into is not None and into.base.sha256 == m.base_model.sha256:
        if bundle.name not in into.bundles:
            into.model.load_adapter(str(bundle.path), adapter_name=bundle.name, is_trainable=False)
        into.bundles[bundle.name] = bundle
        into.activate(bundle.name)
        return into
    base = resolve_base(m.base_model.ref)
    if base.sha256 != m.base_model.sha256:
        raise BundleError(
            f"{bundle.name}: base weights {base.sha256[:12]}… differ from the ones it was "
            f"trained on ({m.base_model.sha256[:12]}…)"
        )
    tok, model = load_model(base)
    peft_model = PeftModel.from_pretrained(
        model, str(bundle.path), adapter_name=bundle.name, is_trainable=False
    ).eval()
    return AdapterModel(base, tok, peft_model, {bundle.name: bundle})


class CachedScorer:
    """texts → calibrated P(phishing) through a peft model, caching the frozen lower layers per text.

    One instance per (base model, prompt, split); adapters evaluated on the same texts share the cache.
    """

    def __init__(
        self,
        model: Any,
        encoder: PromptEncoder,
        split: int,
        label_ids: Sequence[int],
        pad_id: int,
        temperature: float = 1.0,
        cache: MutableMapping[str, torch.Tensor] | None = None,
        sharded_over: DistContext | None = None,
    ) -> None:
        """``sharded_over``: the model is FSDP shards over these ranks (`sharded.load_sharded`), so every call
        is a collective that all of them make with the same texts; they agree on the texts to run first."""
        self.model, self.encoder, self.split = model, encoder, split
        self.label_ids, self.pad_id, self.temperature = list(label_ids), pad_id, temperature
        self._cache: MutableMapping[str, torch.Tensor] = {} if cache is None else cache
        self._ranks = sharded_over

    def states(self, texts: Sequence[str], progress: Any = None) -> list[torch.Tensor]:
        """The lower-layer states of `texts`, running the texts not cached yet; `progress` (a tqdm bar)
        counts those."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if self._ranks is not None:  # a rank whose disk cache holds a text still runs it with the others
            todo = self._ranks.union(todo)
        if progress is not None:
            progress.reset(total=len(todo))
        if todo:
            ids = [self.encoder.encode(t).ids for t in todo]

            def keep(batch: list[int], hs: list[torch.Tensor]) -> None:
                # Cache each batch as it finishes: an interrupted pass (an hour on Gemma) keeps its work.
                self._cache.update((todo[i], h) for i, h in zip(batch, hs, strict=True))

            lower_states(self.model, ids, self.split, self.pad_id, progress=progress, on_batch=keep)
        return [self._cache[t] for t in texts]

    def margins(self, texts: Sequence[str]) -> np.ndarray:
        return margins(self.model, self.states(texts), self.split, self.label_ids).numpy()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return apply_temperature(self.margins(texts), self.temperature)
