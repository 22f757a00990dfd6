"""The convolutional (CCT) tokenizer and Shifted Patch Tokenization: shapes, TokenState, parameter counts,
the grid formula against a dry run, masks, one-line errors, and a tiny CCT that learns digits."""

import pytest
import torch
from torch import nn

from train_helpers import fit_on_tensors
from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.config import ConfigError
from xformer.core import make_norm
from xformer.tokenizers.image import PatchEmbedding, shift_image, shifted_stack
from xformer.tokenizers.image_conv import ConvTokenizer, conv_grid, conv_out
from xformer.tokens import Tokens, token_state

CORE = CoreConfig(d_model=32, n_layers=1, n_heads=4, d_ff=64)


def model(tokenizer: str, args: dict, head: dict | None = None, core: CoreConfig = CORE):
    return build_model(ModelConfig("encoder", core, PartConfig(tokenizer, args),
                                   PartConfig("classification", {"n_classes": 10, "pool": "attention", **(head or {})})))


# ---------------------------------------------------------------- convolutional tokenizer

@pytest.mark.parametrize("size, layers, k, s, p, pool", [
    ((32, 32), 1, 3, 1, 1, (3, 2, 1)),        # CCT-7/3x1
    ((32, 32), 2, 3, 1, 1, (3, 2, 1)),        # CCT-7/3x2
    ((28, 20), 2, 5, 2, 2, (2, 2, 0)),
    ((8, 8), 1, 3, 1, 1, (3, 2, 1)),
    ((17, 9), 3, 3, 1, 0, None),              # no max pool
    ((64, 48), 2, 7, 2, 3, (3, 2, 1)),        # ResNet-like stem
])
def test_grid_formula_matches_a_dry_run(size, layers, k, s, p, pool):
    pool_args = dict(max_pool=pool is not None, **(dict(zip(("pool_kernel", "pool_stride", "pool_padding"), pool))
                                                    if pool else {}))
    tok = ConvTokenizer(16, image_size=size, channels=2, n_conv_layers=layers, conv_channels=[8] * (layers - 1),
                        kernel_size=k, stride=s, padding=p, **pool_args)
    dry = tok.conv_layers(torch.zeros(1, 2, *size))
    assert tok.grid == tuple(dry.shape[-2:])
    # H_out = floor((H + 2p - k)/s) + 1, twice per block
    h = size[0]
    for _ in range(layers):
        h = (h + 2 * p - k) // s + 1
        if pool:
            h = (h + 2 * pool[2] - pool[0]) // pool[1] + 1
    assert tok.grid[0] == h
    assert conv_grid(*size, layers, (k, k), (s, s), (p, p), None if pool is None else tuple((v, v) for v in pool))[-1] \
        == tok.grid
    assert conv_out(size[1], k, s, p) == tok.conv_layers[0][0](torch.zeros(1, 2, *size)).shape[-1]


@pytest.mark.parametrize("positions", ["learned", "sincos", "none"])
@pytest.mark.parametrize("class_token", [False, True])
def test_conv_tokens_shape_and_state(positions, class_token):
    tok = ConvTokenizer(32, image_size=(16, 24), channels=3, n_conv_layers=2, conv_channels=[16],
                        positions=positions, class_token=class_token)
    assert tok.grid == (4, 6)
    tokens = tok({"images": torch.randn(2, 3, 16, 24)})
    n_prefix = int(class_token)
    assert tokens.x.shape == (2, n_prefix + 24, 32)
    assert tokens.padding_mask is None
    assert tokens.state == {"prefix_tokens": n_prefix, "class_token": class_token, "grid": (4, 6)}
    assert token_state(tok) == {"prefix_tokens": n_prefix, "class_token": class_token, "grid": (4, 6),
                                "n_tokens": n_prefix + 24}
    # the tokens are the stem's feature map in raster order (+ positions)
    img = torch.randn(1, 3, 16, 24)
    fmap = tok.conv_layers(img)[0]                     # (d, 4, 6)
    pos = tok.grid_positions((4, 6))
    expected = fmap[:, 1, 2] + (pos[1 * 6 + 2] if pos is not None else 0)
    torch.testing.assert_close(tok({"images": img}).x[0, n_prefix + 1 * 6 + 2], expected)


def conv_parameter_count(c_in, widths, d, k, bias, n_cells, positions, class_token):
    c = [c_in, *widths, d]
    n = sum(c[i] * c[i + 1] * k * k + (c[i + 1] if bias else 0) for i in range(len(c) - 1))
    return n + (n_cells * d if positions == "learned" else 0) + (d if class_token else 0)


@pytest.mark.parametrize("layers, widths, k, bias, positions, class_token", [
    (1, [], 3, False, "learned", False), (2, [16], 3, False, "none", True), (3, [8, 24], 5, True, "sincos", False),
    (2, [64], 7, True, "learned", True)])
def test_conv_parameter_count_formula(layers, widths, k, bias, positions, class_token):
    tok = ConvTokenizer(32, image_size=32, channels=3, n_conv_layers=layers, conv_channels=widths, kernel_size=k,
                        padding=k // 2, conv_bias=bias, positions=positions, class_token=class_token)
    n_cells = tok.grid[0] * tok.grid[1]
    assert sum(p.numel() for p in tok.parameters()) == conv_parameter_count(3, widths, 32, k, bias, n_cells,
                                                                            positions, class_token)


def test_conv_channels_default_and_last_width_may_be_d_model():
    a = ConvTokenizer(32, image_size=16, channels=1, n_conv_layers=3)
    assert [m[0].out_channels for m in a.conv_layers] == [64, 64, 32]      # CCT's in_planes = 64 between
    b = ConvTokenizer(32, image_size=16, channels=1, n_conv_layers=2, conv_channels=[16, 32])
    assert [m[0].out_channels for m in b.conv_layers] == [16, 32]


def test_conv_learned_positions_are_resampled_for_another_image_size():
    tok = ConvTokenizer(16, image_size=8, channels=1, n_conv_layers=1)  # 8x8 -> 4x4
    tokens = tok({"images": torch.randn(1, 1, 16, 16)})                 # 16x16 -> 8x8
    assert tokens.x.shape == (1, 64, 16) and tokens.state.grid == (8, 8)


def test_bad_sizes_are_one_line_errors():
    for args, pattern in [({"kernel_size": 0}, r"model.tokenizer.args.kernel_size must be >= 1"),
                          ({"padding": -1}, r"model.tokenizer.args.padding must be >= 0"),
                          ({"n_conv_layers": 1.5}, r"n_conv_layers must be a whole number"),
                          ({"conv_channels": [0]}, r"conv_channels must be >= 1"),
                          ({"image_size": 4, "padding": 0, "n_conv_layers": 2}, r"image size 4x4 is too small for 2 conv/pool"),
                          ({"n_conv_layers": 3, "conv_channels": [8]}, r"conv_channels must list the 2 widths"),
                          ({"pool_kernel": 2, "pool_padding": 2}, r"pool_padding=2 must be at most half"),
                          ({"positions": "rope"}, r"unknown positions 'rope'")]:
        with pytest.raises(ConfigError, match=pattern) as e:
            model("image_conv", {"image_size": 8, "channels": 1, **args})
        assert "\n" not in str(e.value)
    tok = ConvTokenizer(16, image_size=8, channels=1, n_conv_layers=2, conv_channels=[8], padding=0)  # 8 -> 1x1
    with pytest.raises(ValueError, match=r"image size 2x2 is too small .*data.args.image_size") as e:
        tok({"images": torch.randn(1, 1, 2, 2)})
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match=r"set tokenizer.args.channels=3"):
        tok({"images": torch.randn(1, 3, 8, 8)})


def test_heads_size_themselves_from_the_conv_tokenizer():
    m = model("image_conv", {"image_size": 8, "channels": 1}, {"pool": "attention"})
    out = m({"images": torch.randn(3, 1, 8, 8), "labels": torch.tensor([0, 1, 2])})
    assert out["logits"].shape == (3, 10) and torch.isfinite(out["loss"])
    with pytest.raises(ConfigError, match="pool=cls needs a tokenizer with a class token"):
        model("image_conv", {"image_size": 8, "channels": 1}, {"pool": "cls"})({"images": torch.randn(1, 1, 8, 8)})
    m = model("image_conv", {"image_size": 8, "channels": 1, "class_token": True}, {"pool": "cls"})
    assert m({"images": torch.randn(2, 1, 8, 8)})["logits"].shape == (2, 10)


@pytest.mark.parametrize("layers, bias", [(1, False), (2, True)])
def test_gpt2_init_keeps_the_conv_stem_kaiming_init(layers, bias):
    """core.init: gpt2 draws N(0, 0.02) for the core, the head and the tokenizer's other tensors, but the stem
    keeps the weights it was built with (Kaiming: std sqrt(2 / fan_in), here sqrt(2/9) ~ 0.47 for 1x3x3)."""
    args = {"image_size": 16, "channels": 1, "n_conv_layers": layers, "conv_bias": bias}
    built = {}
    for init in ("torch", "gpt2"):
        torch.manual_seed(0)  # the tokenizer is built first: the same stem under either init
        built[init] = model("image_conv", args, core=CoreConfig(d_model=32, n_layers=1, n_heads=4, d_ff=64,
                                                                 init=init))
    stem = {init: dict(m.tokenizer.conv_layers.named_parameters()) for init, m in built.items()}
    assert stem["gpt2"].keys() == stem["torch"].keys() and len(stem["gpt2"]) == layers * (2 if bias else 1)
    for name, p in stem["gpt2"].items():
        torch.testing.assert_close(p, stem["torch"][name], rtol=0, atol=0)
    first = built["gpt2"].tokenizer.conv_layers[0][0].weight
    assert first.std().item() == pytest.approx((2 / 9) ** 0.5, rel=0.35)  # 32 x 9 draws: Kaiming, not 0.02
    # the rest is still GPT-2's N(0, 0.02): the tokenizer's positions, the head's classifier
    for p in (built["gpt2"].tokenizer.pos_grid, built["gpt2"].head.fc.weight):
        assert p.std().item() == pytest.approx(0.02, rel=0.3)
        assert not torch.equal(p, dict(built["torch"].named_parameters())[name_of(built["gpt2"], p)])


def name_of(module: nn.Module, parameter: nn.Parameter) -> str:
    return next(name for name, p in module.named_parameters() if p is parameter)


# ---------------------------------------------------------------- Shifted Patch Tokenization

def test_shift_moves_content_and_fills_zeros():
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 1, 1] = 1.0
    assert shift_image(x, 1, 1)[0, 0, 2, 2] == 1 and shift_image(x, 1, 1).sum() == 1
    assert shift_image(x, -1, 1)[0, 0, 0, 2] == 1
    assert shift_image(x, -2, 0).sum() == 0                      # shifted out, zeros came in
    stack = shifted_stack(torch.randn(2, 3, 6, 6), 1, 1)
    assert stack.shape == (2, 15, 6, 6)


def test_spt_shapes_and_the_equation():
    emb = PatchEmbedding(16, image_size=8, patch_size=4, channels=2, class_token=True, positions="none",
                         shifted_patches=True)
    img = torch.randn(2, 2, 8, 8)
    tokens = emb({"images": img})
    assert tokens.x.shape == (2, 1 + 4, 16)
    assert tokens.state == {"prefix_tokens": 1, "class_token": True, "grid": (2, 2)}
    # z = W LN(vec(S(x) patch)) + b for the patch at row 1, column 0
    shifts = [img] + [shift_image(img, dy, dx) for dy, dx in ((-2, -2), (-2, 2), (2, -2), (2, 2))]
    patch = torch.cat(shifts, dim=1)[0, :, 4:8, 0:4].flatten()
    ln = nn.functional.layer_norm(patch, patch.shape, emb.spt_norm.weight, emb.spt_norm.bias, emb.spt_norm.eps)
    torch.testing.assert_close(tokens.x[0, 1 + 2], emb.proj.weight.flatten(1) @ ln + emb.proj.bias,
                               atol=1e-5, rtol=1e-5)


def test_spt_parameter_count():
    c, p, d, cells = 3, 4, 32, 16
    emb = PatchEmbedding(d, image_size=16, patch_size=p, channels=c, class_token=False, shifted_patches=True)
    stacked = 5 * c * p * p
    assert sum(t.numel() for t in emb.parameters()) == stacked * d + d + 2 * stacked + cells * d


def test_spt_off_is_the_plain_tokenizer():
    torch.manual_seed(0)
    plain = PatchEmbedding(16, image_size=8, patch_size=2, channels=3, register_tokens=1)
    torch.manual_seed(0)
    off = PatchEmbedding(16, image_size=8, patch_size=2, channels=3, register_tokens=1, shifted_patches=False)
    assert list(plain.state_dict()) == list(off.state_dict()) == ["cls_token", "reg_tokens", "pos_grid", "pos_prefix",
                                                                   "proj.weight", "proj.bias"]
    img = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(plain({"images": img}).x, off({"images": img}).x)
    on = PatchEmbedding(16, image_size=8, patch_size=2, channels=3, register_tokens=1, shifted_patches=True)
    assert set(on.state_dict()) - set(plain.state_dict()) == {"spt_norm.weight", "spt_norm.bias"}
    assert on.proj.weight.shape == (16, 15, 2, 2)


def test_spt_errors_and_config():
    with pytest.raises(ConfigError, match="shifted_patches .*patch_size >= 2") as e:
        model("image_patches", {"image_size": 8, "patch_size": 1, "channels": 1, "shifted_patches": True})
    assert "\n" not in str(e.value)
    m = model("image_patches", {"image_size": 8, "patch_size": 2, "channels": 1, "class_token": False,
                                "shifted_patches": True, "positions": "sincos"})
    assert m({"images": torch.randn(2, 1, 8, 8)})["logits"].shape == (2, 10)
    assert m.tokenizer({"images": torch.randn(1, 1, 12, 8)}).x.shape == (1, 24, 32)   # another size


# ---------------------------------------------------------------- sequence pooling with these tokens

@pytest.mark.parametrize("tokenizer, args", [
    ("image_conv", {"image_size": 8, "channels": 1}),
    ("image_patches", {"image_size": 8, "patch_size": 2, "channels": 1, "class_token": False,
                       "shifted_patches": True}),
    ("image_patches", {"image_size": 8, "patch_size": 2, "channels": 1, "shifted_patches": True,
                       "register_tokens": 2})])
def test_attention_pooling_reads_the_content_tokens_and_respects_a_padding_mask(tokenizer, args):
    m = model(tokenizer, args).eval()
    tokens = m.tokenizer({"images": torch.randn(2, 1, 8, 8)})
    n_prefix = tokens.state.prefix_tokens
    hidden = torch.randn(2, tokens.x.shape[1], 32)
    pooled = m.head.pooled(hidden, tokens)
    changed = hidden.clone()
    changed[:, :n_prefix] += 100.0                          # prefix tokens are not pooled
    torch.testing.assert_close(m.head.pooled(changed, tokens), pooled)
    # a padding mask (the Tokens contract: True = real) hides the masked tokens from the pooling query
    mask = torch.ones(2, tokens.x.shape[1], dtype=torch.bool)
    mask[:, -3:] = False
    masked = Tokens(tokens.x, mask, state=tokens.state)
    changed = hidden.clone()
    changed[:, -3:] = 1e3
    torch.testing.assert_close(m.head.pooled(changed, masked), m.head.pooled(hidden, masked))


# ---------------------------------------------------------------- learning

@pytest.fixture(scope="module")
def digits():
    from xformer.data.registry import build_data

    def _all(ds):
        items = [ds[i] for i in range(len(ds))]
        return torch.stack([it["images"] for it in items]), torch.stack([it["labels"] for it in items])
    data = build_data("digits", {"val_fraction": 0.0})
    return data, _all(data.train), _all(data.test)


def test_tiny_cct_learns_digits(digits):
    """Conv tokenizer (CCT-style 1 conv + max pool: 8x8 -> 4x4 tokens) + 1-layer encoder + sequence pooling."""
    data, (x, y), (x_te, y_te) = digits
    torch.manual_seed(0)
    m = model("image_conv", {"image_size": 8, "channels": 1}, {"label_smoothing": 0.1},
              core=CoreConfig(d_model=32, n_layers=1, n_heads=4, d_ff=64, init="torch"))
    steps = 400
    seconds = fit_on_tensors(m, x, y, steps)
    accuracy = data.evaluate(m, [{"images": x_te, "labels": y_te}])["accuracy"]
    assert accuracy > 0.8, f"test accuracy {accuracy:.3f} after {steps} steps ({seconds:.1f} s)"


def test_cct_digits_recipe_trains_and_writes_a_run(tmp_path):
    """tasks/cct_digits.yaml builds and runs through the CLI (two tiny steps; the figures are in docs/vision.md)."""
    import json
    from pathlib import Path

    from xformer.cli import main

    tasks = Path(__file__).resolve().parents[1] / "tasks"
    run = tmp_path / "cct"
    assert main(["train", str(tasks / "cct_digits.yaml"), "data.args.affine=false", "train.steps=2",
                 "train.eval_every=2", "train.warmup_steps=0", "train.batch_size=16", "model.core.d_model=16",
                 "model.core.n_layers=1", "model.core.n_heads=2", "model.core.d_ff=32", "--out", str(run),
                 "--quiet"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
