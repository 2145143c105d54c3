"""The server bounds oneDNN's primitive cache (server/backends/onednn.py): vLLM's CPU matmuls build one
primitive per batch token count, and at oneDNN's default capacity (1024) they piled up in the heap (the
RSS soak's growth, docs/reliability.md).

Each case runs in its own process (oneDNN reads the capacity once per process) on vLLM's real oneDNN
matmul kernels with SmolLM2-135M's projection shapes, and counts the bytes glibc malloc holds in use.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent(
    """
    import ctypes, json, sys
    import torch
    from phishlens.server.backends.onednn import configure_onednn
    from phishlens.server.settings import Settings

    configure_onednn(Settings(onednn_primitive_cache_capacity=int(sys.argv[1])))
    from vllm import _custom_ops as ops

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")]
    mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
    mallinfo2.restype = Mallinfo2
    in_use = lambda: (lambda m: m.uordblks + m.hblkhd)(mallinfo2())

    torch.manual_seed(0)
    shapes = [(576, 960), (576, 576), (576, 3072), (1536, 576)]  # SmolLM2-135M: qkv, o, gate_up, down
    handlers = [ops.create_onednn_mm(torch.randn(k, n), 32) for k, n in shapes]
    def run(ms):
        for m in ms:  # m: the batch's token count; every new one needs a new primitive per shape
            for h in handlers:
                ops.onednn_mm(h, torch.randn(m, h.k), None)
    run(range(1, 33))  # vLLM's own per-shape caches (32 each) full
    before = in_use()
    run(range(33, 333))  # 300 new token counts x 4 shapes = 1,200 primitives
    print(json.dumps({"grew_mb": (in_use() - before) / 2**20}))
    """
)


def _supported() -> str | None:
    try:
        ctypes.CDLL("libc.so.6").mallinfo2  # noqa: B018 - glibc >= 2.33
    except (OSError, AttributeError):
        return "needs glibc's mallinfo2"
    try:
        from vllm import _custom_ops as ops
    except ImportError:
        return "needs vllm"
    return None if getattr(ops, "_supports_onednn", False) else "this vLLM build has no oneDNN matmul"


def heap_growth_mb(capacity: int) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONEDNN_", "DNNL_"))}
    env["OMP_NUM_THREADS"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(capacity)], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])["grew_mb"]


@pytest.mark.skipif(_supported() is not None, reason=str(_supported()))
def test_default_setting_bounds_the_primitive_cache_that_onednns_default_lets_grow():
    from phishlens.server.settings import Settings

    bounded = heap_growth_mb(Settings().onednn_primitive_cache_capacity)
    unbounded = heap_growth_mb(1024)  # oneDNN's own default: what the server ran with before
    assert bounded < 40, f"{bounded:.0f} MB held after 1,200 new primitives with the server's default"
    assert unbounded > 150, f"oneDNN's default held only {unbounded:.0f} MB: the probe no longer shows it"
