"""The fused attention path equals softmax(QK^T / sqrt(d_k)) V written out, for every mask kind."""
import math

import pytest
import torch

from xformer.core import CrossAttention, SelfAttention, attend, attention_math, capture_attention, combine_masks


def reference_attention(q, k, v, keep=None, additive=None):
    """softmax(QK^T/sqrt(d) + M) V with the key/value heads repeated for GQA; no xformer code."""
    groups = q.shape[1] // k.shape[1]
    k = torch.repeat_interleave(k, groups, dim=1)
    v = torch.repeat_interleave(v, groups, dim=1)
    scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(q.shape[-1])
    if additive is not None:
        scores = scores + additive
    if keep is not None:
        scores = scores.masked_fill(~keep, float("-inf"))
    return torch.einsum("bhqk,bhkd->bhqd", scores.softmax(-1), v)


B, H, NQ, NK, D = 2, 4, 5, 7, 8


def qkv(kv_heads=H, nq=NQ, nk=NK):
    return torch.randn(B, H, nq, D), torch.randn(B, kv_heads, nk, D), torch.randn(B, kv_heads, nk, D)


def padding(n):
    pad = torch.ones(B, n, dtype=torch.bool)
    pad[0, -2:] = False
    return pad


MASKS = {
    "none": lambda: dict(),
    "causal": lambda: dict(causal=True),
    "key_padding": lambda: dict(key_padding_mask=padding(NK)),
    "causal+key_padding": lambda: dict(causal=True, key_padding_mask=padding(NK)),
    "bool": lambda: dict(attn_mask=torch.rand(B, 1, NQ, NK) > 0.3),
    "additive": lambda: dict(attn_mask=torch.randn(NQ, NK)),
    "additive+padding": lambda: dict(attn_mask=torch.randn(B, H, NQ, NK), key_padding_mask=padding(NK)),
}


def reference_for(parts, nq=NQ, nk=NK):
    keep = torch.ones(B, 1, nq, nk, dtype=torch.bool)
    additive = None
    if parts.get("causal"):
        keep = keep & torch.ones(nq, nk, dtype=torch.bool).tril(nk - nq)
    if "key_padding_mask" in parts:
        keep = keep & parts["key_padding_mask"][:, None, None, :]
    m = parts.get("attn_mask")
    if m is not None and m.dtype == torch.bool:
        keep = keep & m
    elif m is not None:
        additive = m
    keep = keep | ~keep.any(-1, keepdim=True)  # xformer's documented rule for rows with no key
    return keep, additive


@pytest.mark.parametrize("kv_heads", [H, 2, 1], ids=["mha", "gqa", "mqa"])
@pytest.mark.parametrize("kind", list(MASKS))
def test_fused_equals_explicit_and_reference(kind, kv_heads):
    q, k, v = qkv(kv_heads)
    parts = MASKS[kind]()
    mask = combine_masks(n_queries=NQ, n_keys=NK, **parts)
    fused = attend(q, k, v, mask)
    explicit, weights = attention_math(q, k, v, mask)
    expected = reference_attention(q, k, v, *reference_for(parts))
    torch.testing.assert_close(fused, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(explicit, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, H, NQ, NK)[..., 0], atol=1e-6, rtol=0)


def test_is_causal_fast_path_equals_explicit_mask():
    q, k, v = qkv(nq=NK)
    fused = attend(q, k, v, None, causal=True)
    explicit, _ = attention_math(q, k, v, None, causal=True)
    expected = reference_attention(q, k, v, torch.ones(NK, NK, dtype=torch.bool).tril())
    torch.testing.assert_close(fused, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(explicit, expected, atol=1e-6, rtol=0)


def test_fully_masked_rows_stay_finite():
    q, k, v = qkv(nq=4, nk=4)
    pad = torch.tensor([[False, False, True, True]] * B)  # left padding
    mask = combine_masks(n_queries=4, n_keys=4, causal=True, key_padding_mask=pad)
    assert torch.isfinite(attend(q, k, v, mask)).all()
    assert torch.isfinite(attention_math(q, k, v, mask)[0]).all()


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_module_paths_agree_and_weights_are_captured(kv_heads):
    attn = SelfAttention(32, 4, kv_heads).eval()
    x = torch.randn(B, 6, 32)
    mask = combine_masks(n_queries=6, n_keys=6, causal=True, key_padding_mask=padding(6))
    fused = attn(x, mask)
    with capture_attention(attn) as maps:
        explicit = attn(x, mask)
    torch.testing.assert_close(fused, explicit, atol=1e-6, rtol=0)
    assert len(maps) == 1 and maps[0].shape == (B, 4, 6, 6)
    assert maps[0][0, :, :, -2:][:, :-2].abs().max() == 0  # padded keys get no weight from real queries
    assert not attn.keep_weights


def test_module_matches_reference_with_copied_projections():
    dim, heads, kv_heads = 32, 4, 2
    attn = SelfAttention(dim, heads, kv_heads).eval()
    x = torch.randn(B, 6, dim)
    hd = dim // heads
    q, k, v = attn.qkv(x).split([heads * hd, kv_heads * hd, kv_heads * hd], -1)
    split = lambda t, h: t.view(B, 6, h, hd).transpose(1, 2)  # noqa: E731
    expected = reference_attention(split(q, heads), split(k, kv_heads), split(v, kv_heads))
    expected = attn.proj(expected.transpose(1, 2).reshape(B, 6, dim))
    torch.testing.assert_close(attn(x), expected, atol=1e-6, rtol=0)


def test_cross_attention_with_memory_padding():
    cross = CrossAttention(32, 4, memory_dim=16).eval()
    x, memory = torch.randn(B, 3, 32), torch.randn(B, 5, 16)
    pad = torch.tensor([[True, True, True, False, False], [True] * 5])
    mask = combine_masks(n_queries=3, n_keys=5, key_padding_mask=pad)
    full = cross(x, memory, mask)
    trimmed = cross(x[:1], memory[:1, :3])
    torch.testing.assert_close(full[:1], trimmed, atol=1e-6, rtol=0)


def test_bad_head_counts_are_rejected():
    with pytest.raises(ValueError, match="divisible"):
        SelfAttention(30, 4)
    with pytest.raises(ValueError, match="multiple"):
        SelfAttention(32, 4, 3)
