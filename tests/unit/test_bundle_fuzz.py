"""The bundle loader fuzzed with hypothesis: malformed manifests and adapter configs, safetensors headers
with absurd lengths, dtypes and shapes that do not fit the base. Every input must end in a clear
error (BundleError, or the registry's 400/413) or a valid bundle: no other exception, no crash, and
no allocation that follows what a header claims (process RSS stays within a bound over the run).

The loader under test is the server's whole path: `snapshot_bundle` (no-follow copy, size caps) →
`load_bundle` (format) → `check_adapter_fits` (dtypes and shapes against the tiny Llama's config).
"""

from __future__ import annotations

import json
import resource
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phishlens.server.bundle_fit import check_adapter_fits
from phishlens.server.bundle_snapshot import snapshot_bundle
from phishlens.server.errors import PhishlensError
from phishlens.training.contract.bundle import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    MANIFEST,
    BundleError,
    load_bundle,
)

R = 4
EXAMPLES = 120


@pytest.fixture(scope="module")
def valid(tmp_path_factory, tokenizer, tiny_llama) -> Path:
    """A bundle whose weights fit the tiny Llama (q/v projections of layers 0-1, rank 4)."""
    from safetensors.numpy import save_file

    from phishlens.server.bundle_fit import module_dims
    from tests.fakes import write_bundle

    root = tmp_path_factory.mktemp("fuzz-src")
    path = write_bundle(root, "ok", tokenizer=tokenizer, base_sha256=tiny_llama.sha256, r=R)
    dims = module_dims(json.loads((tiny_llama.path / "config.json").read_text()))
    rng = np.random.default_rng(0)
    tensors = {}
    for layer in (0, 1):
        for mod in ("q_proj", "v_proj"):
            fan_in, fan_out = dims[mod]
            pre = f"base_model.model.model.layers.{layer}.self_attn.{mod}"
            tensors[f"{pre}.lora_A.weight"] = rng.standard_normal((R, fan_in)).astype(np.float32)
            tensors[f"{pre}.lora_B.weight"] = rng.standard_normal((fan_out, R)).astype(np.float32)
    save_file(tensors, str(path / ADAPTER_WEIGHTS))
    return path


def load(path: Path, tiny_llama, staging: Path):
    copy = snapshot_bundle(path, [path.parent], staging, max_bytes=8 * 1024 * 1024, max_files=16)
    bundle = load_bundle(copy, tiny_llama.sha256)
    check_adapter_fits(copy, tiny_llama.path / "config.json", bundle.manifest.lora.r)
    return bundle


def test_the_valid_bundle_loads(valid, tiny_llama, tmp_path):
    bundle = load(valid, tiny_llama, tmp_path)
    assert bundle.manifest.base_model.sha256 == tiny_llama.sha256  # the fuzz's seed is a bundle that loads


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=30),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
    max_leaves=12,
)
DTYPES = st.sampled_from(["F32", "F16", "BF16", "F64", "I8", "U8", "BOOL", "F8_E4M3", "", "X" * 300, "f32"])
dims_ = st.integers(-5, 2**62) | st.sampled_from([0, 1, R, 64, 128, 256, 10**12])


@st.composite
def mutation(draw):
    kind = draw(
        st.sampled_from(
            [
                "manifest_value",
                "manifest_json",
                "manifest_bytes",
                "config_value",
                "st_length",
                "st_header",
                "st_tensor",
                "st_truncate",
                "st_bytes",
            ]
        )
    )
    return kind, draw(st.data())


def _mutate(path: Path, kind: str, data) -> None:
    if kind == "manifest_value":
        m = json.loads((path / MANIFEST).read_text())
        key = data.draw(st.sampled_from(sorted(m)))
        m[key] = data.draw(json_values)
        (path / MANIFEST).write_text(json.dumps(m))
    elif kind == "manifest_json":
        (path / MANIFEST).write_text(json.dumps(data.draw(json_values)))
    elif kind == "manifest_bytes":
        (path / MANIFEST).write_bytes(data.draw(st.binary(max_size=200)))
    elif kind == "config_value":
        c = json.loads((path / ADAPTER_CONFIG).read_text())
        c[data.draw(st.sampled_from(sorted(c) + ["r", "peft_type", "use_dora"]))] = data.draw(json_values)
        (path / ADAPTER_CONFIG).write_text(json.dumps(c))
    else:
        raw = (path / ADAPTER_WEIGHTS).read_bytes()
        (n,) = struct.unpack("<Q", raw[:8])
        header, body = json.loads(raw[8 : 8 + n]), raw[8 + n :]
        if kind == "st_length":  # the 8-byte header length: absurd, off by some, or huge
            n2 = data.draw(st.integers(0, 2**64 - 1) | st.integers(max(0, n - 8), n + 8))
            out = struct.pack("<Q", n2) + raw[8:]
        elif kind in ("st_header", "st_tensor"):
            name = data.draw(st.sampled_from(sorted(k for k in header if k != "__metadata__")))
            t = header[name]
            if kind == "st_header":
                field = data.draw(st.sampled_from(["dtype", "shape", "data_offsets"]))
                t[field] = data.draw(DTYPES if field == "dtype" else st.lists(dims_, max_size=4))
            else:  # a well-formed tensor that does not fit: dtype, shape or rank of another model
                dtype = data.draw(DTYPES)
                shape = data.draw(
                    st.lists(st.sampled_from([1, 2, R, 8, 32, 64, 128, 256, 576]), min_size=1, max_size=3)
                )
                size = int(np.prod(shape)) * {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}.get(dtype, 1)
                if size > 4 * 1024 * 1024:
                    shape, size = [R, 8], R * 8 * 4
                start = len(body)
                body += b"\0" * size
                header[
                    data.draw(
                        st.sampled_from(
                            [
                                name,
                                name.replace("layers.0", "layers.99"),
                                name.replace("q_proj", "lm_head"),
                                "bogus",
                            ]
                        )
                    )
                ] = {"dtype": dtype, "shape": shape, "data_offsets": [start, start + size]}
            hb = json.dumps(header).encode()
            out = struct.pack("<Q", len(hb)) + hb + body
        elif kind == "st_truncate":
            out = raw[: data.draw(st.integers(0, len(raw) - 1))]
        else:
            out = data.draw(st.binary(max_size=300))
        (path / ADAPTER_WEIGHTS).write_bytes(out)


def test_fuzzed_bundles_fail_clearly(valid, tiny_llama, tmp_path_factory):
    work = tmp_path_factory.mktemp("fuzz")
    staging = tmp_path_factory.mktemp("staging")
    outcomes: dict[str, int] = {}
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(mutation())
    def run(m):
        kind, data = m
        path = work / "b"
        shutil.rmtree(path, ignore_errors=True)
        shutil.copytree(valid, path)
        _mutate(path, kind, data)
        try:
            load(path, tiny_llama, staging)
            outcome = "loaded"
        except BundleError as e:
            assert str(e) and "bundle" in str(e)
            outcome = "BundleError"
        except PhishlensError as e:  # the registry's 400 / 413
            assert e.status in (400, 413) and e.message
            outcome = type(e).__name__
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    run()
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    print(
        f"bundle fuzz: {sum(outcomes.values())} inputs; outcomes {outcomes}; peak RSS grew {grown_mb:.0f} MB"
    )
    assert sum(outcomes.values()) >= EXAMPLES * 0.9
    assert outcomes.get("BundleError", 0) > EXAMPLES // 2  # the mutations really do break bundles
    assert grown_mb < 300  # no allocation sized by a header's claims (a 2**63-byte header would OOM)
    assert list(staging.iterdir()) == [] or all(p.is_dir() for p in staging.iterdir())
