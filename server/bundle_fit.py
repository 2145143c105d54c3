"""Do an adapter's LoRA weights fit the served base model? Checked from the safetensors header only.

A bundle can pass the format checks (valid JSON, readable safetensors) and still carry tensors the
engine cannot use: a float64 or int8 `lora_A`, a rank that differs from the manifest, a layer the base
does not have, or in/out sizes of another architecture. vLLM would then fail later, on a request, or
allocate whatever the header claims. Here every tensor's dtype and shape is read from the header
(no tensor data is loaded: memory stays bounded whatever the header says) and compared with the base
config's dimensions (Llama-style decoders: Llama, Mistral, Gemma, SmolLM).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from phishlens.training.contract.bundle import ADAPTER_WEIGHTS, BundleError

_KEY = re.compile(r"(?:^|\.)layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.lora_([AB])(?:\.default)?\.weight$")
_FLOATS = {"F32", "F16", "BF16"}


def module_dims(config: dict) -> dict[str, tuple[int, int]]:
    """(in_features, out_features) of each LoRA-targetable projection of a Llama-style decoder."""
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    kv = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or hidden // heads)
    inter = int(config["intermediate_size"])
    return {
        "q_proj": (hidden, heads * head_dim),
        "k_proj": (hidden, kv * head_dim),
        "v_proj": (hidden, kv * head_dim),
        "o_proj": (heads * head_dim, hidden),
        "gate_proj": (hidden, inter),
        "up_proj": (hidden, inter),
        "down_proj": (inter, hidden),
    }


def check_adapter_fits(bundle: Path, base_config: Path, rank: int) -> None:
    """Raise BundleError naming the first tensor whose dtype or shape does not fit the base."""
    from safetensors import safe_open

    try:
        config = json.loads(base_config.read_text())
        dims = module_dims(config.get("text_config", config))
        layers = int(config.get("text_config", config)["num_hidden_layers"])
    except (OSError, ValueError, KeyError, TypeError):
        return  # not a Llama-style config we can read: the engine's own checks apply
    name = bundle.name
    try:
        with safe_open(str(bundle / ADAPTER_WEIGHTS), framework="numpy") as st:
            keys = list(st.keys())
            if not keys:
                raise BundleError(f"bundle {name}: {ADAPTER_WEIGHTS} holds no tensors")
            for key in keys:
                sl = st.get_slice(key)
                _check(name, key, sl.get_dtype(), list(sl.get_shape()), dims, layers, rank)
    except BundleError:
        raise
    except Exception as e:  # safetensors raises several types for corrupt headers
        raise BundleError(f"bundle {name}: {ADAPTER_WEIGHTS} is not a readable safetensors file ({e})") from e


def _check(
    name: str,
    key: str,
    dtype: str,
    shape: list[int],
    dims: dict[str, tuple[int, int]],
    layers: int,
    rank: int,
) -> None:
    m = _KEY.search(key)
    if m is None:
        raise BundleError(f"bundle {name}: tensor {key[:120]!r} is not a LoRA A/B weight of a decoder layer")
    layer, module, ab = int(m.group(1)), m.group(2), m.group(3)
    if module not in dims:
        raise BundleError(
            f"bundle {name}: tensor {key[:120]!r} targets {module!r}, which the base does not have"
        )
    if layer >= layers:
        raise BundleError(f"bundle {name}: tensor {key[:120]!r} is for layer {layer}; the base has {layers}")
    if dtype not in _FLOATS:
        raise BundleError(
            f"bundle {name}: tensor {key[:120]!r} has dtype {dtype}; LoRA weights must be "
            f"one of {sorted(_FLOATS)}"
        )
    fan_in, fan_out = dims[module]
    want = [rank, fan_in] if ab == "A" else [fan_out, rank]
    if shape != want:
        raise BundleError(
            f"bundle {name}: tensor {key[:120]!r} has shape {shape[:4]}; {module} lora_{ab} on this "
            f"base with rank {rank} must be {want}"
        )
