"""The torch.nn and PatchTST converters (xformer/interop/torch_nn.py, patchtst.py): round trips, outputs on
converted weights, and one-line refusals of what the other side cannot express."""
import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xformer import ModelConfig, PartConfig, build_model
from xformer.config import ConfigError
from xformer.core import CoreConfig, build
from xformer.interop.patchtst import from_patchtst_state_dict, load_patchtst, to_patchtst_state_dict
from xformer.interop.torch_nn import (config_from_torch_nn, from_torch_nn, load_torch_nn, to_torch_nn,
                                      to_torch_nn_state_dict)

D, H, FF = 32, 4, 64


def core(**kw):
    return CoreConfig(**{"d_model": D, "n_layers": 2, "n_heads": H, "d_ff": FF, "init": "torch", **kw})


def assert_same_state(a: nn.Module, b: nn.Module):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def one_line_naming(error, feature: str):
    message = str(error.value)
    assert "\n" not in message and feature in message, message


# ---------------------------------------------------------------- torch.nn


STACKS = {
    "encoder": lambda cfg: build.encoder(cfg),
    "decoder": lambda cfg: build.decoder(cfg),
    "encoder-decoder": lambda cfg: build.encoder_decoder(cfg),
    "cross-decoder": lambda cfg: build.decoder(cfg, cross=True),
}
TORCH_KIND = {"encoder": nn.TransformerEncoder, "decoder": nn.TransformerEncoder,
              "encoder-decoder": nn.Transformer, "cross-decoder": nn.TransformerDecoder}


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("stack", list(STACKS))
def test_xformer_to_torch_nn_and_back_gives_identical_state_dicts(stack, norm_first):
    ours = STACKS[stack](core(norm_first=norm_first, final_norm=True, activation="relu", dropout=0.1,
                              attn_dropout=0.05)).eval()
    theirs = to_torch_nn(ours)
    assert type(theirs) is TORCH_KIND[stack] and not theirs.training
    assert all(m.dropout == 0.05 for m in theirs.modules() if isinstance(m, nn.MultiheadAttention))
    back = from_torch_nn(theirs, causal=stack == "decoder")
    assert type(back) is type(ours)
    assert_same_state(ours, back)
    block = ours.encoder.blocks[0] if stack == "encoder-decoder" else ours.blocks[0]
    layer = to_torch_nn(block)  # a block pairs with a layer
    assert type(layer) is (nn.TransformerDecoderLayer if stack == "cross-decoder" else nn.TransformerEncoderLayer)
    back_block = from_torch_nn(layer, causal=stack == "decoder")
    assert type(back_block) is type(block)
    assert_same_state(block, back_block)


@pytest.mark.parametrize("activation", ["relu", "gelu", "gelu_tanh"])
def test_torch_nn_modules_compute_what_the_xformer_stacks_compute(activation):
    """nn.Transformer and TransformerDecoder (with cross-attention) from xformer weights, under a causal mask."""
    cfg = core(activation=activation)
    src, tgt = torch.randn(2, 5, D), torch.randn(2, 6, D)
    causal = nn.Transformer.generate_square_subsequent_mask(6)
    src_pad = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    with torch.no_grad():
        ours = build.encoder_decoder(cfg).eval()
        expected = to_torch_nn(ours)(src, tgt, tgt_mask=causal, tgt_is_causal=True,
                                     src_key_padding_mask=~src_pad, memory_key_padding_mask=~src_pad)
        torch.testing.assert_close(ours(src, tgt, src_padding_mask=src_pad), expected, atol=1e-5, rtol=1e-5)
        decoder = build.decoder(cfg, cross=True).eval()
        expected = to_torch_nn(decoder)(tgt, src, tgt_mask=causal, tgt_is_causal=True)
        torch.testing.assert_close(decoder(tgt, src), expected, atol=1e-5, rtol=1e-5)


def test_a_torch_nn_encoder_reads_back_with_its_config():
    layer = nn.TransformerEncoderLayer(D, H, FF, dropout=0.2, activation="gelu", batch_first=True, norm_first=True,
                                       layer_norm_eps=1e-6)
    theirs = nn.TransformerEncoder(layer, 3, norm=nn.LayerNorm(D, eps=1e-6), enable_nested_tensor=False).eval()
    cfg = config_from_torch_nn(theirs)
    assert (cfg.n_layers, cfg.n_heads, cfg.hidden_dim, cfg.activation, cfg.norm_eps, cfg.dropout, cfg.has_final_norm) \
        == (3, H, FF, "gelu", 1e-6, 0.2, True)
    ours = from_torch_nn(theirs)
    x = torch.randn(2, 7, D)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=1e-5)
    tanh = nn.TransformerEncoderLayer(D, H, FF, activation=functools.partial(F.gelu, approximate="tanh"))
    assert config_from_torch_nn(tanh).activation == "gelu_tanh"


REFUSED = {  # core setting -> the words the one-line refusal must contain
    "rope": (dict(rope=True), "rotary positions"),
    "rmsnorm": (dict(norm="rmsnorm"), "RMSNorm"),
    "batchnorm": (dict(norm="batchnorm", norm_first=False), "BatchNorm"),
    "swiglu": (dict(activation="swiglu"), "SwiGLU"),
    "gqa": (dict(n_kv_heads=2), "grouped-query attention"),
    "residual attention": (dict(residual_attention=True, norm_first=False), "residual attention"),
    "layer scale": (dict(layer_scale=1e-5), "layer scale"),
    "drop path": (dict(drop_path=0.1), "stochastic depth"),
    "attn proj dropout": (dict(attn_proj_dropout=0.1), "dropout after the attention projection"),
    "no bias": (dict(bias=False), "without biases"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_to_torch_nn_refuses_in_one_line_what_torch_nn_cannot_express(name):
    overrides, feature = REFUSED[name]
    stack = build.encoder(core(**overrides))
    with pytest.raises(ConfigError) as error:
        to_torch_nn(stack)
    one_line_naming(error, feature)
    with pytest.raises(ConfigError) as error:  # a block alone is read the same way
        to_torch_nn(stack.blocks[-1])  # the last: drop path grows from 0 at the first block
    one_line_naming(error, feature)
    with pytest.raises(ConfigError) as error:  # and loading torch.nn weights into it
        load_torch_nn(stack.blocks[-1], nn.TransformerEncoderLayer(D, H, FF, batch_first=True))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("name", ["rmsnorm", "batchnorm", "swiglu", "gqa", "layer scale", "no bias"])
def test_the_state_dict_converter_refuses_what_the_weights_show(name):
    overrides, feature = REFUSED[name]
    with pytest.raises(ConfigError) as error:
        to_torch_nn_state_dict(build.encoder(core(**overrides)).state_dict())
    one_line_naming(error, feature)


def test_from_torch_nn_refusals_and_mismatches_in_one_line():
    with pytest.raises(ConfigError) as error:
        from_torch_nn(nn.TransformerEncoderLayer(D, H, FF, batch_first=True, bias=False))
    one_line_naming(error, "bias=False")
    with pytest.raises(ConfigError) as error:
        from_torch_nn(nn.TransformerEncoderLayer(D, H, FF, batch_first=True, activation=F.silu))
    one_line_naming(error, "activation")
    post_norm = build.encoder(core(norm_first=False))
    with pytest.raises(ConfigError) as error:
        load_torch_nn(post_norm.blocks[0], nn.TransformerEncoderLayer(D, H, FF, activation="gelu", batch_first=True,
                                                                       norm_first=True))
    one_line_naming(error, "norm_first")


# ---------------------------------------------------------------- PatchTST


def patchtst(horizon=6, affine=True, core_overrides=None, tokenizer=None, head=None) -> nn.Module:
    """A small PatchTST/42-shaped model: residual attention, post-norm BatchNorm blocks, end padding, RevIN."""
    core_args = {**dict(d_model=16, n_layers=2, n_heads=4, d_ff=32, dropout=0.2, attn_proj_dropout=0.2,
                        norm="batchnorm", norm_first=False, residual_attention=True, init="torch"),
                 **(core_overrides or {})}
    return build_model(ModelConfig("encoder", CoreConfig(**core_args),
                                   PartConfig("series_patches", {"n_channels": 3, "input_len": 48, "patch_len": 8,
                                                                 "stride": 4, "affine": affine, **(tokenizer or {})}),
                                   PartConfig("forecast", {"horizon": horizon, **(head or {})})))


def trained_a_little(model: nn.Module) -> nn.Module:
    """Weights away from their initial values (affine RevIN too) and BatchNorm statistics that have moved."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
        model.train()
        model({"inputs": torch.randn(8, 48, 3) * 2 + 1})
    return model.eval()


def reference_forecast(state: dict, encoder: nn.Module, x, patch_len=8, stride=4, eps=1e-5):
    """PatchTST_backbone.forward on reference-named weights: RevIN, end padding (ReplicationPad1d), W_P, W_pos,
    the encoder, Flatten_Head over (d_model, patch_num), RevIN undone."""
    s = {k.removeprefix("model."): v for k, v in state.items()}
    mean, std = x.mean(1, keepdim=True), torch.sqrt(x.var(1, keepdim=True, unbiased=False) + eps)
    z = (x - mean) / std * s["revin_layer.affine_weight"] + s["revin_layer.affine_bias"]
    z = F.pad(z.permute(0, 2, 1), (0, stride), mode="replicate").unfold(-1, patch_len, stride)  # (B, C, N, P)
    u = F.linear(z, s["backbone.W_P.weight"], s["backbone.W_P.bias"])  # (B, C, N, d)
    b, c, n, d = u.shape
    h = encoder(u.reshape(b * c, n, d) + s["backbone.W_pos"]).reshape(b, c, n, d)
    y = F.linear(h.permute(0, 1, 3, 2).flatten(-2), s["head.linear.weight"], s["head.linear.bias"])  # (B, C, H)
    y = (y.permute(0, 2, 1) - s["revin_layer.affine_bias"]) / (s["revin_layer.affine_weight"] + eps * eps)
    return y * std + mean


def test_patchtst_model_weights_give_the_reference_forecast():
    from test_series_models import _PatchTSTEncoderReference

    model = trained_a_little(patchtst())
    state = to_patchtst_state_dict(model)
    assert state["model.head.linear.weight"].shape == (6, 16 * 12)  # (H, d * N): 11 patches + 1 of end padding
    encoder = _PatchTSTEncoderReference(16, 4, 32, 2, 0.2).eval()
    flat = to_patchtst_state_dict(model, layout="flat")
    encoder.load_state_dict({k.removeprefix("model.backbone.encoder."): v for k, v in flat.items()
                             if k.startswith("model.backbone.encoder.")})
    x = torch.randn(4, 48, 3) * 3 + 2
    with torch.no_grad():
        torch.testing.assert_close(model({"inputs": x})["prediction"], reference_forecast(state, encoder, x),
                                   atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("layout", ["patchtst", "flat"])
def test_xformer_to_patchtst_and_back_gives_identical_state_dicts(layout):
    model = trained_a_little(patchtst())
    for source in (model, model.core):
        state = to_patchtst_state_dict(source, layout)
        fresh = patchtst() if source is model else patchtst().core
        load_patchtst(fresh, state, layout)
        assert_same_state(source, fresh)
    # without RevIN's affine parameters, and with the checkpoint's "model." prefix dropped
    plain = trained_a_little(patchtst(affine=False))
    fresh = patchtst(affine=False)
    load_patchtst(fresh, {k.removeprefix("model."): v for k, v in to_patchtst_state_dict(plain).items()})
    assert_same_state(plain, fresh)


def test_patchtst_names_are_the_reference_layers():
    """The names of PatchTST_supervised/layers/PatchTST_backbone.py: TSTEncoderLayer with BatchNorm, in order."""
    state = to_patchtst_state_dict(patchtst(core_overrides={"n_layers": 1}).core)
    bn = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert sorted(state) == sorted(
        [f"layers.0.self_attn.W_{x}.{p}" for x in "QKV" for p in ("weight", "bias")]
        + [f"layers.0.self_attn.to_out.0.{p}" for p in ("weight", "bias")] + ["layers.0.self_attn.sdp_attn.scale"]
        + [f"layers.0.{n}.1.{p}" for n in ("norm_attn", "norm_ffn") for p in bn]
        + [f"layers.0.ff.{i}.{p}" for i in (0, 3) for p in ("weight", "bias")])
    assert float(state["layers.0.self_attn.sdp_attn.scale"]) == pytest.approx(4 ** -0.5)


PATCHTST_REFUSED = {
    "rope": (dict(core_overrides={"rope": True}), "rotary positions"),
    "pre-norm": (dict(core_overrides={"norm_first": True, "final_norm": False}), "pre-norm"),
    "final norm": (dict(core_overrides={"final_norm": True}), "a final norm"),
    "rmsnorm": (dict(core_overrides={"norm": "rmsnorm"}), "rmsnorm"),
    "swiglu": (dict(core_overrides={"activation": "swiglu"}), "swiglu"),
    "positions": (dict(tokenizer={"positions": "sinusoidal"}), "SinusoidalPositions"),
    "quantiles": (dict(head={"quantiles": [0.1, 0.5, 0.9]}), "quantile"),
}


@pytest.mark.parametrize("name", list(PATCHTST_REFUSED))
def test_patchtst_converter_refuses_in_one_line_what_the_reference_cannot_express(name):
    kwargs, feature = PATCHTST_REFUSED[name]
    model = patchtst(**kwargs)
    with pytest.raises(ConfigError) as error:
        to_patchtst_state_dict(model)
    one_line_naming(error, feature)
    with pytest.raises(ConfigError) as error:
        from_patchtst_state_dict({}, model)
    one_line_naming(error, feature)
    with pytest.raises(ConfigError) as error:
        to_patchtst_state_dict(build.decoder(CoreConfig(d_model=16, n_heads=4)))
    one_line_naming(error, "PatchTST's is an encoder")


def test_patchtst_checkpoints_xformer_cannot_read_are_refused_in_one_line():
    model = patchtst()
    state = to_patchtst_state_dict(model)
    cases = {
        "series decomposition": {f"model_trend.{k[len('model.'):]}": v for k, v in state.items()},
        "a head per channel": {**state, "model.head.linears.0.weight": torch.zeros(6, 192)},
        "learned attention scale": {**state, "model.backbone.encoder.layers.0.self_attn.sdp_attn.scale":
                                    torch.tensor(0.7)},
    }
    for feature, bad in cases.items():
        with pytest.raises(ConfigError) as error:
            load_patchtst(model, bad)
        one_line_naming(error, feature)
