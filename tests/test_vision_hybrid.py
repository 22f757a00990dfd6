"""The hybrid image tokenizer (image_hybrid): a small CNN's feature map as the tokens."""
from __future__ import annotations

import pytest
import torch

from train_helpers import fit_on_tensors
from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.baselines.images import CNNClassifier
from xformer.config import ConfigError
from xformer.tokenizers.image_hybrid import HybridTokenizer
from xformer.tokens import token_state

CORE = CoreConfig(d_model=32, n_layers=1, n_heads=4, d_ff=64)


def model(args: dict, head: dict | None = None, core: CoreConfig = CORE):
    return build_model(ModelConfig("encoder", core, PartConfig("image_hybrid", args),
                                   PartConfig("classification", {"n_classes": 10, "pool": "attention", **(head or {})})))


@pytest.mark.parametrize("size, widths, pool_stages, grid", [
    ((8, 8), [32], None, (4, 4)),
    ((8, 8), [32, 64], None, (2, 2)),       # the CNN baseline's two stages on digits
    ((8, 8), [32, 64], 1, (4, 4)),          # four convs, one pooling
    ((28, 20), [8, 8, 8], None, (3, 2)),    # floor(side / 2) per pooling stage: 28 -> 14 -> 7 -> 3
    ((9, 9), [8], 0, (9, 9)),
])
def test_grid_is_the_side_halved_per_pooling_stage_and_matches_a_dry_run(size, widths, pool_stages, grid):
    tok = HybridTokenizer(16, image_size=size, channels=2, widths=widths, pool_stages=pool_stages)
    assert tok.grid == grid
    assert tuple(tok.backbone(torch.zeros(1, 2, *size)).shape[-2:]) == grid


@pytest.mark.parametrize("positions", ["learned", "sincos", "none"])
@pytest.mark.parametrize("class_token", [False, True])
def test_hybrid_tokens_are_the_projected_feature_map_in_raster_order(positions, class_token):
    tok = HybridTokenizer(32, image_size=(16, 24), channels=3, widths=[8, 16], positions=positions,
                          class_token=class_token).eval()
    tokens = tok({"images": torch.randn(2, 3, 16, 24)})
    n_prefix = int(class_token)
    assert tokens.x.shape == (2, n_prefix + 4 * 6, 32) and tokens.padding_mask is None
    assert tokens.state == {"prefix_tokens": n_prefix, "class_token": class_token, "grid": (4, 6)}
    assert token_state(tok)["n_tokens"] == n_prefix + 24
    img = torch.randn(1, 3, 16, 24)
    fmap = tok.backbone(img)[0]                                           # (16, 4, 6)
    pos = tok.grid_positions((4, 6))
    expected = tok.proj.weight[:, :, 0, 0] @ fmap[:, 1, 2] + tok.proj.bias + (pos[1 * 6 + 2] if pos is not None else 0)
    torch.testing.assert_close(tok({"images": img}).x[0, n_prefix + 1 * 6 + 2], expected)


def hybrid_parameter_count(c_in, widths, convs, d, n_cells, positions, class_token):
    """Per stage: convs 3x3 without bias (c_in w 9 + (convs - 1) w^2 9), BatchNorm's scale and shift (2 w per
    conv); then the 1x1 projection (w d + d), the learned positions and the class token."""
    n, c = 0, c_in
    for w in widths:
        n += c * w * 9 + (convs - 1) * w * w * 9 + convs * 2 * w
        c = w
    return n + c * d + d + (n_cells * d if positions == "learned" else 0) + (d if class_token else 0)


@pytest.mark.parametrize("widths, convs, positions, class_token", [
    ([32], 2, "none", False), ([16, 24], 1, "learned", True), ([8, 8, 8], 3, "sincos", False)])
def test_hybrid_parameter_count_formula(widths, convs, positions, class_token):
    tok = HybridTokenizer(32, image_size=32, channels=3, widths=widths, convs_per_stage=convs, positions=positions,
                          class_token=class_token)
    n_cells = tok.grid[0] * tok.grid[1]
    assert sum(p.numel() for p in tok.parameters()) == hybrid_parameter_count(3, widths, convs, 32, n_cells,
                                                                              positions, class_token)


def test_backbone_is_the_cnn_baselines_feature_extractor():
    """Same layers, same state-dict names: a trained CNN's features load into the backbone and compute the same map."""
    torch.manual_seed(0)
    cnn = CNNClassifier(8, 1, 10, widths=[32, 64]).eval()
    tok = HybridTokenizer(16, image_size=8, channels=1, widths=[32, 64]).eval()
    for bn in cnn.modules():  # non-trivial running statistics
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2)
    tok.backbone.load_state_dict(cnn.features.state_dict())
    x = torch.randn(3, 1, 8, 8)
    torch.testing.assert_close(tok.backbone(x), cnn.features(x))


def test_in_eval_mode_an_image_gets_the_same_prediction_alone_or_in_a_batch():
    """BatchNorm uses its running statistics at evaluation: no image's logits depend on the others in its batch."""
    m = model({"image_size": 8, "channels": 1, "widths": [8, 16], "pool_stages": 1})
    m.train()
    m({"images": torch.randn(16, 1, 8, 8) * 3 + 1})  # move the running statistics away from their init
    m.eval()
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        together = m({"images": x})["logits"]
        alone = torch.cat([m({"images": x[i:i + 1]})["logits"] for i in range(5)])
    torch.testing.assert_close(alone, together, rtol=1e-5, atol=1e-5)


def test_gpt2_init_keeps_the_backbone_init():
    built = {}
    for init in ("torch", "gpt2"):
        torch.manual_seed(0)
        built[init] = model({"image_size": 8, "channels": 1, "widths": [8]},
                            core=CoreConfig(d_model=32, n_layers=1, n_heads=4, d_ff=64, init=init))
    backbone = {init: m.tokenizer.backbone.state_dict() for init, m in built.items()}
    for name, value in backbone["gpt2"].items():
        torch.testing.assert_close(value, backbone["torch"][name], rtol=0, atol=0)
    assert built["gpt2"].tokenizer.proj.weight.std().item() == pytest.approx(0.02, rel=0.3)  # the rest: GPT-2's


def test_bad_arguments_are_one_line_errors():
    for args, pattern in [({"widths": 32}, r"model.tokenizer.args.widths must be a non-empty list"),
                          ({"widths": []}, r"model.tokenizer.args.widths must be a non-empty list"),
                          ({"widths": [0]}, r"model.tokenizer.args.widths must be >= 1"),
                          ({"convs_per_stage": 0}, r"convs_per_stage must be >= 1"),
                          ({"pool_stages": -1}, r"pool_stages must be >= 0"),
                          ({"pool_stages": 2}, r"pool_stages=2 is more than the 1 stages"),
                          ({"widths": [8, 8, 8, 8]}, r"image size 8x8 is too small for 4 pooling stages"),
                          ({"positions": "rope"}, r"unknown positions 'rope'")]:
        with pytest.raises(ConfigError, match=pattern) as e:
            model({"image_size": 8, "channels": 1, **args})
        assert "\n" not in str(e.value)
    tok = HybridTokenizer(16, image_size=8, channels=1, widths=[8, 8])
    with pytest.raises(ValueError, match=r"image size 3x3 is too small .*data.args.image_size"):
        tok({"images": torch.randn(1, 1, 3, 3)})
    with pytest.raises(ValueError, match=r"set tokenizer.args.channels=3"):
        tok({"images": torch.randn(1, 3, 8, 8)})


def test_learned_positions_are_resampled_for_another_image_size():
    tok = HybridTokenizer(16, image_size=8, channels=1, widths=[8], positions="learned")  # 8x8 -> 4x4
    tokens = tok({"images": torch.randn(1, 1, 16, 16)})
    assert tokens.x.shape == (1, 64, 16) and tokens.state.grid == (8, 8)


def test_tiny_hybrid_learns_digits():
    from xformer.data.registry import build_data

    data = build_data("digits", {"val_fraction": 0.0})

    def _all(ds):
        items = [ds[i] for i in range(len(ds))]
        return torch.stack([it["images"] for it in items]), torch.stack([it["labels"] for it in items])
    (x, y), (x_te, y_te) = _all(data.train), _all(data.test)
    torch.manual_seed(0)
    m = model({"image_size": 8, "channels": 1, "widths": [16]}, {"label_smoothing": 0.1},
              core=CoreConfig(d_model=32, n_layers=1, n_heads=4, d_ff=64, init="torch"))
    steps = 200
    seconds = fit_on_tensors(m, x, y, steps)
    accuracy = data.evaluate(m, [{"images": x_te, "labels": y_te}])["accuracy"]
    assert accuracy > 0.85, f"test accuracy {accuracy:.3f} after {steps} steps ({seconds:.1f} s)"
