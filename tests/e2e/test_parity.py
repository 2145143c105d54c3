"""vLLM and HF backends agree on the same token ids (DESIGN.md §4): |ΔP| ≤ 1e-4, |Δlogprob| ≤ 1e-3."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from phishlens.server.settings import REPO_ROOT
from tests.e2e.conftest import LEGIT, PHISH
from tests.e2e.parity import LOGPROB_TOL, P_TOL, build_requests, compare, start_hf
from tests.models import planted

pytestmark = pytest.mark.vllm


def _texts(n: int, seed: int) -> list[str]:
    rows = planted(n - 2, True, seed=seed)
    # plus one truncated text (head + tail policy) and one short one
    return [r.text for r in rows] + [" ".join(["invoice zebra update"] * 40), "thanks"]


def test_vllm_matches_hf_on_tiny_llama(live_server):
    """Reuses the live server's vLLM engine and its loaded adapters; HF is built beside it."""
    rt = live_server.app.state.runtime
    assert rt is not None and rt.backend.name == "vllm"
    entries = [rt.registry.get(PHISH), rt.registry.get(LEGIT)]
    # mixed: phish, legit and the bare base (adapter=None), interleaved in one batch
    pairs = [(e.handle, e.manifest) for e in entries] + [(None, entries[0].manifest)]
    requests = build_requests(rt.backend.tokenizer, pairs, _texts(24, seed=77))
    assert len(requests) == 24 and sum(r.adapter is None for r in requests) == 8
    assert any(len(r.prompt_ids) > 40 for r in requests)

    async def run():
        hf = await start_hf(live_server.settings.base_model, [e.handle for e in entries])
        try:
            return await compare(rt.backend, hf, requests)
        finally:
            await hf.close()

    rep = asyncio.run(run())
    assert rep.max_dp <= P_TOL, rep.worst()
    assert rep.max_dlogprob <= LOGPROB_TOL, rep.worst()
    # the adapters change the answer (a parity test of identical outputs would prove little)
    by = {name: [r["p_vllm"] for r in rep.rows if r["adapter"] == name] for name in (PHISH, LEGIT, None)}
    assert max(by[PHISH]) - min(by[PHISH]) > 0.5 and max(by[LEGIT]) - min(by[LEGIT]) > 0.5


def _serve_and_compare(live_server, name: str, texts_seed: int, dtype: str = "float32"):
    """Hot-load bundle `name` into the live vLLM server, compare its answers with the HF backend's on 8 texts,
    classify the planted pair through the API, unload: (parity report, served results)."""
    rt = live_server.app.state.runtime
    with live_server.admin() as c:
        c.load_adapter(name)
        try:
            entry = rt.registry.get(name)
            requests = build_requests(
                rt.backend.tokenizer, [(entry.handle, entry.manifest)], _texts(8, seed=texts_seed)
            )

            async def run():
                hf = await start_hf(live_server.settings.base_model, [entry.handle], dtype=dtype)
                try:
                    return await compare(rt.backend, hf, requests)
                finally:
                    await hf.close()

            rep = asyncio.run(run())
            served = c.classify(["invoice zebra update", "lunch meeting friday"], adapter=name).data
        finally:
            c.unload_adapter(name)
    return rep, served


def test_rank_32_adapter_is_served_by_vllm_and_matches_hf_loaded_with_dtype_auto(
    live_server, tiny_llama, tmp_path
):
    """Regressions: vLLM was silently built with max_lora_rank 16 (a getattr default), so a rank-32 bundle
    failed in the engine; and `dtype=auto` made the HF backend call getattr(torch, "auto")."""
    from tests.models import single_thread, train_tiny_bundle

    name = "zebra-r32"
    with single_thread():
        b = train_tiny_bundle(tiny_llama.path, live_server.root / name, name, seed=3, r=32, epochs=4.0)
    assert b.manifest.lora.r == 32
    rep, served = _serve_and_compare(live_server, name, texts_seed=5, dtype="auto")
    assert rep.max_dp <= P_TOL, rep.worst()
    assert served[0].label == "phishing" and served[1].label == "legitimate"


def test_soup_of_three_fits_is_served_by_vllm_at_rank_24_and_matches_hf(live_server, tiny_llama):
    """`phishlens soup` of three r=8 fits is a rank-24 adapter (not a power of two, as a shipped soup of three
    fits is): vLLM loads it, agrees with HF, and it still reads the planted rule."""
    from phishlens.training.commands.soup import soup_bundles
    from tests.models import single_thread, train_tiny_bundle

    work = live_server.root.parent / "soup-fits"
    with single_thread():
        fits = [
            train_tiny_bundle(tiny_llama.path, work / f"fit{s}", f"fit{s}", seed=4, fit_seed=s, epochs=4.0)
            for s in (1, 2, 3)
        ]
        name = "zebra-soup"
        soup = soup_bundles(
            [f.path for f in fits],
            live_server.root / name,
            name,
            ["tests"],
            artifacts=False,
            validation=planted(80, True, seed=104),
            eval_sets={"sms_uci": planted(60, True, seed=204)},
            seen_sources=["sms_uci"],
        )
    assert soup.manifest.lora.r == 24
    rep, served = _serve_and_compare(live_server, name, texts_seed=6)
    assert rep.max_dp <= P_TOL, rep.worst()
    assert rep.max_dlogprob <= LOGPROB_TOL, rep.worst()
    assert served[0].label == "phishing" and served[1].label == "legitimate"


@pytest.mark.slow
def test_vllm_matches_hf_on_smollm2_with_the_default_bundle(tmp_path, smollm2_base):
    """The real base and the shipped bundle; runs in a subprocess (its own vLLM engine, ≈60 s)."""
    from tests.e2e.conftest import require_vllm

    require_vllm()
    bundle = REPO_ROOT / "adapters" / "default"
    if not (bundle / "phishlens.json").is_file():
        pytest.skip(f"no trained bundle at {bundle} (train one with `phishlens train -c default`)")
    texts = _texts(24, seed=5) + [
        "URGENT: your account is locked. Verify your password at http://secure-login.example now",
        "Hi Sam, the slides for Friday's review are in the shared folder. Thanks!",
    ]
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    out = tmp_path / "parity.json"
    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.e2e.parity",
            "--base",
            str(smollm2_base.path),
            "--bundle",
            str(bundle),
            "--texts",
            str(tmp_path / "texts.json"),
            "--out",
            str(out),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    rep = json.loads(out.read_text())
    worst = sorted(rep["rows"], key=lambda r: -r["dp"])[:3]
    assert rep["n"] == len(texts)
    assert rep["max_dp"] <= P_TOL, worst
    assert rep["max_dlogprob"] <= LOGPROB_TOL, worst
