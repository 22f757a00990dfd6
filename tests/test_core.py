"""Causality, padding invariance and KV-cache decoding of the three stacks."""
import pytest
import torch

from xformer.core import CoreConfig, build

VARIANTS = {
    "pre-norm": dict(),
    "post-norm": dict(norm_first=False),
    "rope+gqa+rmsnorm+swiglu": dict(rope=True, n_kv_heads=2, norm="rmsnorm", activation="swiglu"),
}


def config(**kw):
    return CoreConfig(d_model=32, n_layers=2, n_heads=4, d_ff=64, **kw)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_decoder_is_causal(variant):
    dec = build.decoder(config(**VARIANTS[variant])).eval()
    x = torch.randn(2, 10, 32)
    changed = x.clone()
    t = 4
    changed[:, t + 1:] = torch.randn(2, 10 - t - 1, 32)
    a, b = dec(x), dec(changed)
    torch.testing.assert_close(a[:, : t + 1], b[:, : t + 1], atol=1e-6, rtol=0)
    assert (a[:, t + 1:] - b[:, t + 1:]).abs().max() > 1e-3  # later positions do see the change


def test_encoder_is_bidirectional():
    enc = build.encoder(config()).eval()
    x = torch.randn(1, 6, 32)
    changed = x.clone()
    changed[:, -1] = torch.randn(32)  # not a constant shift, which LayerNorm would remove
    assert (enc(x)[:, 0] - enc(changed)[:, 0]).abs().max() > 1e-4


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("stack", ["encoder", "decoder"])
def test_padding_invariance(stack, variant):
    module = (build.encoder if stack == "encoder" else build.decoder)(config(**VARIANTS[variant])).eval()
    x = torch.randn(2, 6, 32)
    padded = torch.cat([x, torch.randn(2, 3, 32) * 5], dim=1)  # right padding, arbitrary values
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[:, 6:] = False
    torch.testing.assert_close(module(padded, padding_mask=mask)[:, :6], module(x), atol=1e-5, rtol=0)


def test_decoder_left_padding_with_rope_equals_unpadded():
    """Rotary positions depend only on relative offsets, so left padding changes nothing."""
    dec = build.decoder(config(rope=True)).eval()
    x = torch.randn(1, 5, 32)
    padded = torch.cat([torch.randn(1, 3, 32), x], dim=1)
    mask = torch.tensor([[False] * 3 + [True] * 5])
    torch.testing.assert_close(dec(padded, padding_mask=mask)[:, 3:], dec(x), atol=1e-5, rtol=0)


def test_encoder_decoder_source_padding_invariance():
    model = build.encoder_decoder(config()).eval()
    src, tgt = torch.randn(2, 5, 32), torch.randn(2, 4, 32)
    padded = torch.cat([src, torch.randn(2, 2, 32)], dim=1)
    mask = torch.tensor([[True] * 5 + [False] * 2] * 2)
    torch.testing.assert_close(model(padded, tgt, src_padding_mask=mask), model(src, tgt), atol=1e-5, rtol=0)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("chunk", [1, 3])
def test_decoder_kv_cache_equals_full_forward(variant, chunk):
    dec = build.decoder(config(**VARIANTS[variant])).eval()
    x = torch.randn(2, 9, 32)
    full = dec(x)
    cache = dec.new_cache()
    steps = [dec(x[:, i: i + chunk], cache=cache) for i in range(0, 9, chunk)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=0)
    assert cache.length == 9


def test_decoder_kv_cache_with_left_padding():
    dec = build.decoder(config(rope=True)).eval()
    x = torch.randn(2, 7, 32)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[0, :2] = False
    full = dec(x, padding_mask=mask)
    cache = dec.new_cache()
    prefix = dec(x[:, :4], padding_mask=mask[:, :4], cache=cache)
    steps = [dec(x[:, i: i + 1], padding_mask=mask[:, : i + 1], cache=cache) for i in range(4, 7)]
    out = torch.cat([prefix] + steps, dim=1)
    torch.testing.assert_close(out[:, 2:], full[:, 2:], atol=1e-5, rtol=0)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_encoder_decoder_kv_cache_equals_full_forward(variant):
    model = build.encoder_decoder(config(**VARIANTS[variant])).eval()
    src, tgt = torch.randn(2, 6, 32), torch.randn(2, 5, 32)
    src_mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    full = model(src, tgt, src_padding_mask=src_mask)
    memory = model.encoder(src, src_mask)
    cache = model.new_cache()
    steps = [model.decoder(tgt[:, i: i + 1], memory, memory_padding_mask=src_mask, cache=cache) for i in range(5)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=0)


def test_cache_padding_mask_must_cover_cached_positions():
    dec = build.decoder(config()).eval()
    cache = dec.new_cache()
    dec(torch.randn(1, 3, 32), cache=cache)
    with pytest.raises(ValueError, match="cached"):
        dec(torch.randn(1, 1, 32), padding_mask=torch.ones(1, 1, dtype=torch.bool), cache=cache)


def test_cross_attention_decoder_needs_memory():
    model = build.encoder_decoder(config())
    with pytest.raises(ValueError, match="memory"):
        model.decoder(torch.randn(1, 2, 32))


def test_gpt2_initialisation_scales_residual_projections():
    cfg = CoreConfig(d_model=256, n_layers=8, n_heads=4)
    dec = build.decoder(cfg)
    block = dec.blocks[0]
    assert abs(block.attn.qkv.weight.std().item() - 0.02) < 2e-3
    expected = 0.02 / (2 * 8) ** 0.5
    assert abs(block.attn.proj.weight.std().item() - expected) < 1e-3
    assert abs(block.mlp.fc2.weight.std().item() - expected) < 1e-3
    assert block.attn.qkv.bias.abs().max() == 0
    assert torch.equal(block.res1.norm.weight, torch.ones(256))


def test_drop_path_and_dropout_are_active_only_in_training():
    dec = build.decoder(CoreConfig(d_model=32, n_layers=4, n_heads=4, dropout=0.2, drop_path=0.3))
    x = torch.randn(4, 5, 32)
    dec.train()
    assert not torch.allclose(dec(x), dec(x))
    dec.eval()
    torch.testing.assert_close(dec(x), dec(x))
    rates = [b.res1.drop_path.drop_prob for b in dec.blocks[1:]]
    assert rates == sorted(rates) and abs(rates[-1] - 0.3) < 1e-6


def test_layer_scale_starts_small():
    enc = build.encoder(CoreConfig(d_model=32, n_layers=1, n_heads=4, layer_scale=1e-6, final_norm=False)).eval()
    x = torch.randn(2, 3, 32)
    torch.testing.assert_close(enc(x), x, atol=1e-3, rtol=0)


def test_dropout_keeps_each_element_with_probability_1_minus_p_and_rescales():
    """y = x * m / (1 - p), m ~ Bernoulli(1 - p): the zero fraction, the survivors' scale, the gradient."""
    from xformer.core import Dropout

    torch.manual_seed(0)
    drop = Dropout(0.3)
    x = torch.rand(1000, 1000, dtype=torch.float64) + 1.0  # no exact zeros of its own
    x.requires_grad_(True)
    y = drop(x)
    kept = y != 0
    assert abs(1.0 - kept.double().mean().item() - 0.3) < 0.003  # 1e6 draws: the std of the fraction is 5e-4
    torch.testing.assert_close(y[kept], x[kept] / 0.7)
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.double() / 0.7)
    assert not torch.equal(drop(x), y)  # a new mask each call
    drop.eval()
    assert torch.equal(drop(x), x)
    assert torch.equal(Dropout(0.0)(x), x)
    assert repr(Dropout(0.3)) == repr(torch.nn.Dropout(0.3)) and Dropout(0.3).state_dict() == {}


@pytest.mark.parametrize("mask_kind", ["none", "causal", "bool", "additive"])
def test_attend_computes_low_precision_cpu_inputs_in_fp32(mask_kind):
    """On a CPU, bf16 inputs (as autocast makes them from bf16 projections) are attended in fp32 and the
    output cast back to bf16: the CPU's bf16 SDPA kernel takes 3-4x the fp32 one's time."""
    from xformer.core import attend

    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 9, 8).bfloat16() for _ in range(3))
    mask = {"none": None, "causal": None, "bool": torch.rand(2, 1, 9, 9) > 0.3,
            "additive": torch.randn(2, 1, 9, 9)}[mask_kind]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = attend(q, k, v, mask, causal=mask_kind == "causal")
    expected = torch.nn.functional.scaled_dot_product_attention(
        q.float(), k.float(), v.float(), attn_mask=mask, is_causal=mask_kind == "causal").bfloat16()
    assert out.dtype == torch.bfloat16
    assert torch.equal(out, expected)


def test_drop_path_drops_whole_samples_of_the_branch_and_rescales_the_kept_ones():
    """Stochastic depth: in training each sample's branch F(x) is dropped whole with probability p or kept as
    F(x) / (1 - p), so its expectation is F(x); at eval it is F(x) itself."""
    from xformer.core.blocks import PreNormResidual

    torch.manual_seed(0)
    res = PreNormResidual(torch.nn.Identity(), 8, drop_path=0.25)
    x = torch.randn(2000, 3, 8)
    branch = res.train()(x, lambda h: 2 * h) - x
    dropped = (branch == 0).flatten(1).all(1)
    kept = ~dropped
    torch.testing.assert_close(branch[kept], 2 * x[kept] / 0.75)
    assert abs(dropped.float().mean().item() - 0.25) < 0.04
    torch.testing.assert_close(res.eval()(x, lambda h: 2 * h), 3 * x)
