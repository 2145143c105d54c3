"""The grouped CPU LoRA matmul computes exactly vLLM's per-token gather + einsum."""

import pytest
import torch

from phishlens.server.backends import vllm_cpu_lora as g


@pytest.mark.parametrize(
    "tokens,indices",
    [
        (50, None),  # random mix of slots, including -1 (no adapter)
        (7, [2] * 7),  # one adapter for the whole batch (fast path)
        (1, [1]),
        (5, [0, 0, 1, 1, -1]),
    ],
)
def test_grouped_matches_vllm_einsum(tokens, indices):
    torch.manual_seed(0)
    idx = torch.randint(-1, 3, (tokens,)) if indices is None else torch.tensor(indices)
    x, w = torch.randn(tokens, 16), torch.randn(4, 1, 32, 16)
    ref = torch.einsum("bi, boi -> bo", x, w.squeeze(1)[idx])
    assert torch.allclose(g._grouped(x, w, idx, torch.float32), ref, atol=1e-5)


def test_expand_and_shrink_write_back_like_vllm():
    torch.manual_seed(1)
    idx = torch.tensor([0, 1, 1, 0])
    x, wa, wb = torch.randn(4, 8), torch.randn(2, 1, 3, 8), torch.randn(2, 1, 10, 3)
    mid = torch.zeros(4, 3)
    g.bgmv_shrink(x, wa, mid, idx, scaling=0.5)
    assert torch.allclose(mid, 0.5 * torch.einsum("bi, boi -> bo", x, wa.squeeze(1)[idx]), atol=1e-6)
    out = torch.ones(4, 12)
    g.bgmv_expand_slice(mid, wb, out, idx, slice_offset=2, slice_size=10, add_inputs=True)
    ref = torch.ones(4, 12)
    ref[:, 2:12] += torch.einsum("bi, boi -> bo", mid, wb.squeeze(1)[idx])
    assert torch.allclose(out, ref, atol=1e-6)
