"""The fused attention path equals softmax(QK^T / sqrt(d_k)) V written out, for every mask kind."""
import math

import pytest
import torch

from xformer.analysis.attention_maps import capture_attention
from xformer.core import CrossAttention, SelfAttention, attend, attention_math, combine_masks


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
    explicit, weights, _ = attention_math(q, k, v, mask)
    expected = reference_attention(q, k, v, *reference_for(parts))
    torch.testing.assert_close(fused, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(explicit, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, H, NQ, NK)[..., 0], atol=1e-6, rtol=0)


def test_is_causal_fast_path_equals_explicit_mask():
    q, k, v = qkv(nq=NK)
    fused = attend(q, k, v, None, causal=True)
    explicit, _, _ = attention_math(q, k, v, None, causal=True)
    expected = reference_attention(q, k, v, torch.ones(NK, NK, dtype=torch.bool).tril())
    torch.testing.assert_close(fused, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(explicit, expected, atol=1e-6, rtol=0)


def test_fully_masked_rows_stay_finite():
    q, k, v = qkv(nq=4, nk=4)
    pad = torch.tensor([[False, False, True, True]] * B)  # left padding
    mask = combine_masks(n_queries=4, n_keys=4, causal=True, key_padding_mask=pad)
    assert torch.isfinite(attend(q, k, v, mask)).all()
    assert torch.isfinite(attention_math(q, k, v, mask)[0]).all()


def test_a_row_an_additive_mask_leaves_without_keys_sees_every_key_with_the_bias():
    """A float mask (a bias) folded with left padding under a causal mask: the padding rows see no key; they
    see every key instead, as with boolean masks (a NaN row would poison later layers), and the real rows
    are the reference's."""
    q, k, v = qkv(nq=4, nk=4)
    pad = torch.tensor([[False, False, True, True]] * B)
    bias = torch.randn(4, 4)
    mask = combine_masks(n_queries=4, n_keys=4, causal=True, key_padding_mask=pad, attn_mask=bias)
    keep = torch.ones(4, 4, dtype=torch.bool).tril() & pad[:, None, None, :]
    expected = reference_attention(q, k, v, keep | ~keep.any(-1, keepdim=True), bias)
    expected[:, :, :2] = reference_attention(q, k, v)[:, :, :2]  # the padding rows: every key, no bias
    torch.testing.assert_close(attend(q, k, v, mask), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(attention_math(q, k, v, mask)[0], expected, atol=1e-6, rtol=0)


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


def test_attention_math_adds_previous_scores_before_the_mask():
    """Residual attention: S = QK^T/sqrt(d) + S_prev is returned unmasked; the mask applies to the softmax only."""
    q, k, v = qkv()
    prev = torch.randn(B, H, NQ, NK)
    keep = combine_masks(n_queries=NQ, n_keys=NK, key_padding_mask=padding(NK))
    out, weights, scores = attention_math(q, k, v, keep, prev_scores=prev)
    torch.testing.assert_close(scores, q @ k.transpose(-2, -1) / math.sqrt(D) + prev)
    torch.testing.assert_close(out, reference_attention(q, k, v, keep=keep, additive=prev))
    assert torch.isfinite(scores).all() and (weights[0, :, :, -2:] == 0).all()


def _post_norm_encoder(residual: bool, n_layers: int = 3):
    from xformer.core import CoreConfig, build

    torch.manual_seed(0)
    encoder = build.encoder(CoreConfig(d_model=8, n_layers=n_layers, n_heads=2, d_ff=16, norm_first=False,
                                 residual_attention=residual, init="torch")).eval()
    with torch.no_grad():
        for block in encoder.blocks:
            block.attn.qkv.weight.mul_(3.0)  # peaked attention, so that adding scores shows
    return encoder


def test_residual_attention_encoder_follows_the_realformer_equations():
    """Layer l: S_l = Q_l K_l^T / sqrt(d_k) + S_{l-1}, x = Norm(x + proj(softmax(S_l) V_l)), x = Norm(x + MLP(x))."""
    encoder = _post_norm_encoder(residual=True)
    x = torch.randn(2, 5, 8)
    expected, prev = x, 0.0
    for block in encoder.blocks:
        q, k, v = (t.view(2, 5, 2, 4).transpose(1, 2) for t in block.attn.qkv(expected).chunk(3, dim=-1))
        prev = q @ k.transpose(-2, -1) / 2.0 + prev
        attended = (prev.softmax(-1) @ v).transpose(1, 2).reshape(2, 5, 8)
        expected = block.res1.norm(expected + block.attn.proj(attended))
        expected = block.res2.norm(expected + block.mlp(expected))
    with torch.no_grad():
        torch.testing.assert_close(encoder(x), expected)
        plain = _post_norm_encoder(residual=False)
        plain.load_state_dict(encoder.state_dict())  # same parameters: residual attention adds none
        assert not torch.allclose(plain(x), encoder(x), atol=1e-4)
        one = _post_norm_encoder(residual=True, n_layers=1)
        one_plain = _post_norm_encoder(residual=False, n_layers=1)
        one_plain.load_state_dict(one.state_dict())
        torch.testing.assert_close(one(x), one_plain(x))  # a single layer has no previous scores


def test_residual_attention_ignores_padding_and_is_encoder_only():
    from xformer.core import CoreConfig, build

    encoder = _post_norm_encoder(residual=True)
    x = torch.randn(2, 6, 8)
    keep = torch.ones(2, 6, dtype=torch.bool)
    keep[0, -2:] = False
    changed = x.clone()
    changed[0, -2:] = 100.0
    with torch.no_grad():
        a, b = encoder(x, keep), encoder(changed, keep)
    torch.testing.assert_close(a[0, :4], b[0, :4])
    assert torch.isfinite(a).all()
    with pytest.raises(ValueError, match="residual_attention is for encoders"):
        build.decoder(CoreConfig(d_model=8, n_layers=2, n_heads=2, residual_attention=True))
