"""Dense relative localization beside the classifier (classification_drloc, Liu et al. 2021)."""
from __future__ import annotations

import pytest
import torch

from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.config import ConfigError
from xformer.heads.localization import RelativeLocalization

CORE = CoreConfig(d_model=32, n_layers=1, n_heads=4, d_ff=64)
CONV = PartConfig("image_conv", {"image_size": 8, "channels": 1})  # 8x8 -> 4x4 tokens


def classifier(head: str, tokenizer: PartConfig = CONV, **args):
    return build_model(ModelConfig("encoder", CORE, tokenizer,
                                   PartConfig(head, {"n_classes": 10, "pool": "attention", **args})))


def subtracting_localizer(pairs: int, sign: float = 1.0) -> RelativeLocalization:
    """f([e1; e2]) = e1 - e2 for 2-d cells, written into the MLP's weights (h = 4, ReLU(a) - ReLU(-a) = a)."""
    loc = RelativeLocalization(dim=2, pairs=pairs, hidden_dim=4)
    first, middle, last = loc.mlp[0], loc.mlp[2], loc.mlp[4]
    with torch.no_grad():
        difference = torch.tensor([[1.0, 0, -1, 0], [0, 1, 0, -1]])  # (2, 4): e1 - e2
        first.weight.copy_(torch.cat([difference, -difference]).index_select(0, torch.tensor([0, 2, 1, 3])))
        first.bias.zero_()
        middle.weight.copy_(torch.eye(4))
        middle.bias.zero_()
        last.weight.copy_(sign * torch.tensor([[1.0, -1, 0, 0], [0, 0, 1, -1]]))
        last.bias.zero_()
    return loc


@pytest.mark.parametrize("grid", [(4, 4), (3, 5), (1, 6)])
def test_the_target_is_the_row_and_column_offset_of_the_first_cell_from_the_second(grid):
    rows, cols = grid
    index = torch.arange(rows * cols)
    cells = torch.stack([index // cols, index % cols], dim=-1).float().expand(3, -1, -1)  # each cell holds (i, j)
    torch.manual_seed(0)
    assert subtracting_localizer(pairs=50)(cells, grid).item() == 0.0
    torch.manual_seed(0)
    wrong_sign = subtracting_localizer(pairs=50, sign=-1.0)(cells, grid).item()
    assert wrong_sign > 0.5  # 2 E|offset| over random pairs: the predicted sign matters


def test_evaluation_is_the_plain_classifier_and_training_adds_the_weighted_term():
    torch.manual_seed(0)
    plain, drloc = classifier("classification"), classifier("classification_drloc", weight=0.5, pairs=8)
    missing, unexpected = plain.load_state_dict(drloc.state_dict(), strict=False)
    assert not missing and all(k.startswith("head.localization.") for k in unexpected)
    batch = {"images": torch.randn(5, 1, 8, 8), "labels": torch.arange(5)}
    plain.eval(), drloc.eval()
    a, b = plain(batch), drloc(batch)
    torch.testing.assert_close(a["logits"], b["logits"], rtol=0, atol=0)
    torch.testing.assert_close(a["loss"], b["loss"], rtol=0, atol=0)  # validation / test: the CE alone
    plain.train(), drloc.train()
    ce = plain(batch)["loss"]
    torch.manual_seed(1)
    total = drloc(batch)["loss"]
    hidden = {}
    drloc.core.register_forward_hook(lambda m, i, o: hidden.setdefault("h", o))
    torch.manual_seed(1)
    drloc(batch)
    torch.manual_seed(1)
    term = drloc.head.localization(hidden["h"], (4, 4))
    torch.testing.assert_close(total, ce + 0.5 * term)
    drloc.head.weight = 0.0
    torch.testing.assert_close(drloc(batch)["loss"], ce)  # weight 0: plain training


def test_the_localization_task_is_learned_from_the_tokens_positions():
    """Tokens that carry learned positions: the MLP learns the offsets, far below the best constant guess."""
    torch.manual_seed(0)
    model = classifier("classification_drloc", weight=1.0, pairs=32, hidden_dim=64)
    images, labels = torch.randn(64, 1, 8, 8), torch.zeros(64, dtype=torch.long)  # one class: only L_loc is left
    cells = torch.arange(16)
    rows, cols = cells // 4, cells % 4
    constant = ((rows[:, None] - rows[None]).abs().float().mean() + (cols[:, None] - cols[None]).abs().float().mean()) / 2
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    losses = []
    for _ in range(400):
        loss = model({"images": images, "labels": labels})["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # the best constant guess (the median offset, 0) scores 1.25 cells; seeds 0-4 end at 0.05-0.10
    assert sum(losses[-20:]) / 20 < 0.3 * constant.item()


def test_bad_arguments_are_one_line_errors():
    series = PartConfig("series_patches", {"n_channels": 2, "input_len": 32, "patch_len": 8, "stride": 8})
    for args, tokenizer, pattern in [({"weight": -1.0}, CONV, r"weight must be >= 0"),
                                     ({"pairs": 0}, CONV, r"pairs must be >= 1"),
                                     ({"hidden_dim": 0}, CONV, r"hidden_dim must be >= 1"),
                                     ({}, series, r"classification_drloc needs image tokens on a grid")]:
        with pytest.raises(ConfigError, match=pattern) as e:
            classifier("classification_drloc", tokenizer, **args)
        assert "\n" not in str(e.value)


def test_distillation_takes_the_localizing_head_as_a_classification_student():
    from xformer.train.config import Distill
    from xformer.train.distill import Distillation, distillation_loss, n_classes

    assert n_classes({"head": {"name": "classification_drloc", "args": {"n_classes": 10}}}) == 10
    torch.manual_seed(0)
    student, teacher = classifier("classification_drloc", pairs=8), classifier("classification").eval()
    batch = {"images": torch.randn(5, 1, 8, 8), "labels": torch.arange(5)}
    student.train()
    torch.manual_seed(1)
    own = student(batch)
    config = Distill(teacher="unused", kind="hard", alpha=0.5)
    student.register_forward_hook(Distillation(teacher, config))
    torch.manual_seed(1)
    mixed = student(batch)["loss"]  # (1 - alpha)(CE + lambda L_loc) + alpha CE(argmax z_t, z_s)
    torch.testing.assert_close(mixed, distillation_loss(own["loss"], own["logits"], teacher(batch)["logits"], config))
