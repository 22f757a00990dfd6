"""The image baselines (mlp, cnn): the classification head's contract, the config path, and learning digits."""
import pytest
import torch
import torch.nn.functional as F

from xformer.baselines import build_baseline
from xformer.baselines.images import CNNClassifier, MLPClassifier
from xformer.config import ConfigError, from_dict
from xformer.data.registry import build_data
from xformer.models import ModelConfig, PartConfig, build_model
from xformer.train.config import ExperimentConfig, with_implied_args
from xformer.train.distributed import World
from xformer.train.run import build, evaluate_run, train_run
from xformer.train.trainer import Trainer

SMALL = {"mlp": {"hidden_dims": [32]}, "cnn": {"widths": [8, 16]}}


def _smoothed_ce(logits, q, eps):
    """-1/B sum_i sum_k q'_ik log softmax(z_i)_k with q' = (1 - eps) q + eps / K, written out by hand."""
    q = (1 - eps) * q + eps / logits.shape[1]
    return -(q * logits.log_softmax(-1)).sum(-1).mean()


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_image_baselines_follow_the_classification_head_contract(name):
    model = build_baseline(name, image_size=[8, 8], channels=1, n_classes=10, label_smoothing=0.1, dropout=0.0,
                           **SMALL[name]).eval()
    images, hard = torch.rand(6, 1, 8, 8), torch.tensor([0, 3, 9, 3, 1, 7])
    soft = torch.softmax(torch.randn(6, 10), -1)

    plain = model({"images": images})
    assert set(plain) == {"logits"} and plain["logits"].shape == (6, 10)

    out = model({"images": images, "labels": hard})
    assert set(out) == {"logits", "loss", "loss_weight"} and int(out["loss_weight"]) == 6
    torch.testing.assert_close(out["logits"], plain["logits"])
    torch.testing.assert_close(out["loss"], F.cross_entropy(out["logits"], hard, label_smoothing=0.1))
    torch.testing.assert_close(out["loss"], _smoothed_ce(out["logits"], F.one_hot(hard, 10).float(), 0.1))

    mixed = model({"images": images, "labels": soft})  # MixUp/CutMix targets
    torch.testing.assert_close(mixed["loss"], _smoothed_ce(mixed["logits"], soft, 0.1))
    assert int(mixed["loss_weight"]) == 6

    with pytest.raises(ValueError, match=r"images must be \(batch, 1, 8, 8\), got \(6, 1, 8, 9\)"):
        model({"images": torch.rand(6, 1, 8, 9)})


def test_mlp_layers_and_parameter_count():
    logistic = MLPClassifier([8, 8], 1, 10, hidden_dims=[])
    assert sum(p.numel() for p in logistic.parameters()) == 64 * 10 + 10  # multinomial logistic regression
    mlp = MLPClassifier([4, 6], 3, 5, hidden_dims=[16, 8], activation="relu")
    assert sum(p.numel() for p in mlp.parameters()) == (72 * 16 + 16) + (16 * 8 + 8) + (8 * 5 + 5)
    assert any(isinstance(m, torch.nn.ReLU) for m in mlp.modules())
    assert mlp({"images": torch.rand(2, 3, 4, 6)})["logits"].shape == (2, 5)
    with pytest.raises(ValueError, match="unknown activation 'tanh'"):
        MLPClassifier(8, 1, 10, activation="tanh")


@pytest.mark.parametrize("size, channels, pools", [([8, 8], 1, 3), ([32, 32], 3, 4), ([8, 12], 1, 3), (2, 3, 1)])
def test_cnn_works_from_8x8_grey_to_32x32_rgb(size, channels, pools):
    """Four blocks: each pools while the map is at least 2x2 (8x8: 3 pools, 32x32: 4, 2x2: 1)."""
    model = CNNClassifier(size, channels, 7, widths=[4, 8, 8, 16], convs_per_block=1)
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in model.modules()) == pools
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 4
    hw = (size, size) if isinstance(size, int) else tuple(size)
    out = model({"images": torch.rand(3, channels, *hw), "labels": torch.tensor([0, 6, 2])})
    assert out["logits"].shape == (3, 7) and out["loss"].ndim == 0
    out["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_image_baselines_build_through_the_config_path(name):
    bundle = build_data("digits", {"mixup": 0.8})
    config = ModelConfig(baseline=PartConfig(name, dict(SMALL[name])))
    config = with_implied_args(config, bundle.model_args)
    assert config.baseline.args == {**SMALL[name], "image_size": [8, 8], "channels": 1, "n_classes": 10}
    model = build_model(config)
    assert isinstance(model, MLPClassifier if name == "mlp" else CNNClassifier)

    batch = bundle.collate([bundle.train[i] for i in range(8)])  # a MixUp training batch: (B, K) soft labels
    assert batch["labels"].shape == (8, 10) and batch["labels"].is_floating_point()
    out = model(batch)
    torch.testing.assert_close(out["loss"], F.cross_entropy(out["logits"], batch["labels"]))

    typo = "hidden_dim" if name == "mlp" else "width"
    bad = ModelConfig(baseline=PartConfig(name, {typo: [4]}))
    bad = with_implied_args(bad, bundle.model_args)
    with pytest.raises(ConfigError) as err:
        build_model(bad)
    message = str(err.value)
    assert "\n" not in message and f"unknown baseline.args key '{typo}' for baseline '{name}'" in message
    assert "did you mean" in message
    with pytest.raises(ConfigError, match=f"baseline '{name}': label_smoothing must be in"):
        build_model(ModelConfig(baseline=PartConfig(name, {**config.baseline.args, "label_smoothing": 1.0})))


def _recipe(name: str, args: dict, steps: int) -> ExperimentConfig:
    return from_dict(ExperimentConfig, {
        "model": {"baseline": {"name": name, "args": args}}, "data": {"name": "digits"},
        "train": {"steps": steps, "batch_size": 64, "lr": 3e-3, "eval_every": steps, "log_every": steps,
                  "device": "cpu"}})


def test_mlp_learns_digits_through_the_trainer():
    """A 64-256-256-10 MLP reaches ~96% on the 360 held-out digits in ~3 s (chance: 10%)."""
    config = _recipe("mlp", {}, 200)
    model, data = build(config)
    trainer = Trainer(model, data, config.train, None, World())
    before = trainer.evaluate("test")["accuracy"]
    trainer.fit()
    after = trainer.evaluate("test")
    assert before < 0.3 and after["accuracy"] >= 0.93, (before, after)


def test_cnn_learns_digits_through_train_run(tmp_path):
    """train_run end to end (checkpoints, report) with a 2-block CNN: ~99% test accuracy in ~2 s of training;
    evaluate_run rebuilds it from the run folder (BatchNorm statistics included) and measures the same."""
    metrics = train_run(_recipe("cnn", {"widths": [16, 32]}, 120), tmp_path)
    assert metrics["test_accuracy"] >= 0.95, metrics
    assert (tmp_path / "test_classification.json").is_file()
    again = evaluate_run(tmp_path)
    assert again["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert again["test_loss"] == pytest.approx(metrics["test_loss"], rel=1e-4)
