"""vLLM vs HF backend parity (DESIGN.md §4: "both backends must agree").

Used in-process by `test_parity.py` (reusing the live server's vLLM engine) and as a subprocess worker
(`python -m tests.e2e.parity --base ... --bundle ...`) for bases that need their own vLLM engine: a
second in-process engine in the pytest process is not something vLLM promises to support.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phishlens.server.backends.base import AdapterHandle, Backend, ScoreRequest

P_TOL = 1e-4  # |ΔP(phishing)|, P = sigmoid(lp_phishing - lp_legitimate)
LOGPROB_TOL = 1e-3  # |Δ log-prob| of each label token


def p_phishing(lps: Sequence[float]) -> float:
    return 1.0 / (1.0 + math.exp(-(lps[0] - lps[1])))


@dataclass(frozen=True)
class ParityReport:
    n: int
    max_dp: float
    max_dlogprob: float
    rows: list[dict[str, Any]]  # per prompt: adapter, vllm/hf log-probs, P from each

    @property
    def ok(self) -> bool:
        return self.max_dp <= P_TOL and self.max_dlogprob <= LOGPROB_TOL

    def worst(self, k: int = 3) -> list[dict[str, Any]]:
        return sorted(self.rows, key=lambda r: -r["dp"])[:k]


def build_requests(
    tokenizer: Any, adapters: Sequence[tuple[AdapterHandle | None, Any]], texts: Sequence[str]
) -> list[ScoreRequest]:
    """Text i goes through adapters[i % len(adapters)]: (handle or None for the bare base, manifest)."""
    from phishlens.training.contract.prompt import PromptEncoder

    encoders = {}
    out = []
    for i, text in enumerate(texts):
        handle, m = adapters[i % len(adapters)]
        key = id(m)
        if key not in encoders:
            encoders[key] = PromptEncoder(
                tokenizer, m.prompt.template, m.prompt.max_text_tokens, m.prompt.head_fraction
            )
        out.append(ScoreRequest(encoders[key].encode(text).ids, handle, m.label_token_ids))
    return out


async def compare(vllm: Backend, hf: Backend, requests: Sequence[ScoreRequest]) -> ParityReport:
    v = await vllm.score(requests)
    h = await hf.score(requests)
    rows = []
    for r, a, b in zip(requests, v, h):
        pa, pb = p_phishing(a.label_logprobs), p_phishing(b.label_logprobs)
        rows.append(
            {
                "adapter": r.adapter.name if r.adapter else None,
                "vllm": list(a.label_logprobs),
                "hf": list(b.label_logprobs),
                "p_vllm": pa,
                "p_hf": pb,
                "dp": abs(pa - pb),
                "dlogprob": max(abs(x - y) for x, y in zip(a.label_logprobs, b.label_logprobs)),
                "n_tokens": (a.n_prompt_tokens, b.n_prompt_tokens),
            }
        )
    return ParityReport(len(rows), max(r["dp"] for r in rows), max(r["dlogprob"] for r in rows), rows)


def _settings(base: str, max_model_len: int, dtype: str = "float32"):
    from phishlens.server.settings import Settings

    return Settings(
        backend="hf",
        base_model=base,
        adapters=[],
        max_model_len=max_model_len,
        max_loaded_adapters=4,
        vllm_kv_cache_gb=1.0,
        dtype=dtype,
    )


async def start_hf(base: str, handles: Sequence[AdapterHandle], dtype: str = "float32") -> Backend:
    from phishlens.server.backends.hf_backend import HFBackend

    hf = HFBackend(_settings(base, 1024, dtype))
    await hf.start()
    for h in handles:
        await hf.add_adapter(h)
    return hf


async def run_standalone(
    base: str, bundle_dirs: Sequence[Path], texts: Sequence[str], max_model_len: int = 1024
) -> ParityReport:
    """Both backends from scratch on `base` with `bundle_dirs` loaded; bare-base rows interleaved."""
    from phishlens.server.backends.vllm_backend import VLLMBackend
    from phishlens.training.contract.bundle import load_bundle

    vllm = VLLMBackend(_settings(base, max_model_len))
    await vllm.start()
    try:
        bundles = [load_bundle(d, vllm.base_sha256) for d in bundle_dirs]
        handles = [AdapterHandle(i + 1, b.name, b.path) for i, b in enumerate(bundles)]
        for h in handles:
            await vllm.add_adapter(h)
        hf = await start_hf(base, handles)
        try:
            pairs = [(h, b.manifest) for h, b in zip(handles, bundles)] + [(None, bundles[0].manifest)]
            return await compare(vllm, hf, build_requests(vllm.tokenizer, pairs, texts))
        finally:
            await hf.close()
    finally:
        await vllm.close()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--base", required=True)
    ap.add_argument("--bundle", action="append", required=True, type=Path)
    ap.add_argument("--texts", type=Path, required=True, help="JSON list of texts")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    texts = json.loads(args.texts.read_text())
    rep = asyncio.run(run_standalone(args.base, args.bundle, texts))
    args.out.write_text(
        json.dumps({"n": rep.n, "max_dp": rep.max_dp, "max_dlogprob": rep.max_dlogprob, "rows": rep.rows})
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
