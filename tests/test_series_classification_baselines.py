"""The series classification baselines (fcn, resnet1d): the paper's sizes, the classification head's contract,
the config path, learning a generated task, and tasks/fcn_classify.yaml through the CLI."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from xformer.baselines import build_baseline
from xformer.baselines.series_classification import FCN, ResNet1d, SameConv1d
from xformer.config import ConfigError, from_dict
from xformer.data.registry import build_data
from xformer.data.series_classification import synthetic_control
from xformer.models import ModelConfig, PartConfig, build_model
from xformer.train.config import ExperimentConfig, with_implied_args
from xformer.train.run import train_run

TASKS = Path(__file__).resolve().parents[1] / "tasks"
TINY = {"fcn": {"widths": [8, 16, 8]}, "resnet1d": {"widths": [8, 16]}}


def n_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_fcn_has_the_papers_parameter_count():
    """Conv1d(C,128,8) BN, Conv1d(128,256,5) BN, Conv1d(256,128,3) BN, Linear(128,K); each conv with its bias, each
    BN with gamma and beta (running statistics are buffers). C=1, K=2:
    (1*128*8 + 128 + 256) + (128*256*5 + 256 + 512) + (256*128*3 + 128 + 256) + (128*2 + 2)
    = 1,408 + 164,608 + 98,688 + 258 = 264,962."""
    fcn = FCN(n_channels=1, input_len=60, n_classes=2)
    assert n_parameters(fcn) == 264_962
    assert [m.kernel_size[0] for m in fcn.modules() if isinstance(m, torch.nn.Conv1d)] == [8, 5, 3]
    assert n_parameters(FCN(3, 60, 5)) == 264_962 + 2 * 128 * 8 + 3 * 129  # 2 more input channels, 3 more classes


def test_resnet1d_parameter_count_by_hand():
    """Three residual blocks (64, 128, 128), each conv8-BN-ReLU, conv5-BN-ReLU, conv3-BN; shortcut conv1x1 + BN
    where the width changes (blocks 1 and 2), BN alone where it does not (block 3). C=1, K=2:
    block 1 (1 -> 64):    (1*64*8 + 64 + 128) + (64*64*5 + 64 + 128) + (64*64*3 + 64 + 128) + (1*64 + 64 + 128)
                        = 704 + 20,672 + 12,480 + 256 = 34,112
    block 2 (64 -> 128):  (64*128*8 + 128 + 256) + (128*128*5 + 128 + 256) + (128*128*3 + 128 + 256)
                          + (64*128 + 128 + 256) = 65,920 + 82,304 + 49,536 + 8,576 = 206,336
    block 3 (128 -> 128): (128*128*8 + 128 + 256) + 82,304 + 49,536 + 256 = 131,456 + 82,304 + 49,536 + 256 = 263,552
    linear: 128*2 + 2 = 258;   total 34,112 + 206,336 + 263,552 + 258 = 504,258."""
    resnet = ResNet1d(n_channels=1, input_len=60, n_classes=2)
    assert n_parameters(resnet) == 504_258
    shortcuts = [block.shortcut for block in resnet.blocks]
    assert [isinstance(s, torch.nn.BatchNorm1d) for s in shortcuts] == [False, False, True]
    assert sum(isinstance(m, torch.nn.ReLU) for m in resnet.modules()) == 3 * 3  # two in each branch, one after the sum


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("kernel_size", [8, 5, 3, 2, 1])
def test_same_padding_is_torchs_and_keras(kernel_size):
    """(k-1)//2 zeros before, k//2 after (Keras' and torch's 'same' for an even kernel): L steps in, L out."""
    ours = SameConv1d(2, 3, kernel_size)
    torchs = torch.nn.Conv1d(2, 3, kernel_size, padding="same")
    torchs.load_state_dict(ours.state_dict())
    x = torch.randn(4, 2, 17)
    torch.testing.assert_close(ours(x), torchs(x))
    assert ours(x).shape == (4, 3, 17)


def _smoothed_ce(logits, q, eps):
    q = (1 - eps) * q + eps / logits.shape[1]
    return -(q * logits.log_softmax(-1)).sum(-1).mean()


@pytest.mark.parametrize("name", ["fcn", "resnet1d"])
def test_classification_head_contract_and_shapes(name):
    model = build_baseline(name, n_channels=2, input_len=20, n_classes=3, label_smoothing=0.1, dropout=0.2,
                           **TINY[name]).eval()
    x, y = torch.randn(5, 20, 2), torch.tensor([0, 2, 1, 1, 0])
    plain = model({"inputs": x})
    assert set(plain) == {"logits"} and plain["logits"].shape == (5, 3)
    out = model({"inputs": x, "labels": y})
    assert set(out) == {"logits", "loss", "loss_weight"} and int(out["loss_weight"]) == 5
    torch.testing.assert_close(out["logits"], plain["logits"])
    torch.testing.assert_close(out["loss"], _smoothed_ce(out["logits"], F.one_hot(y, 3).float(), 0.1))
    # inputs are (B, L, C): the convolutions read channels, not time steps, as their input features
    torch.testing.assert_close(model({"inputs": x[:2]})["logits"], plain["logits"][:2])
    with pytest.raises(ConfigError, match=r"inputs must be \(batch, 20, 2\) .*got \(5, 2, 20\)") as err:
        model({"inputs": x.transpose(1, 2)})
    assert "\n" not in str(err.value)
    model.train()
    model({"inputs": x, "labels": y})["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", ["fcn", "resnet1d"])
@pytest.mark.parametrize("args, message", [({"n_classes": 1}, "n_classes must be a whole number >= 2"),
                                           ({"widths": []}, "widths must be a non-empty list"),
                                           ({"kernel_sizes": [8, 0, 3]}, "kernel_sizes must be a non-empty list"),
                                           ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
                                           ({"label_smoothing": -0.1}, r"label_smoothing must be in \[0, 1\)"),
                                           ({"n_channels": 0}, "n_channels must be a whole number >= 1")])
def test_bad_arguments_are_one_line(name, args, message):
    given = {"n_channels": 1, "input_len": 30, "n_classes": 3, **args}
    with pytest.raises(ValueError, match=message):
        (FCN if name == "fcn" else ResNet1d)(**given)
    with pytest.raises(ConfigError, match=f"baseline '{name}': {message}") as err:
        build_baseline(name, **given)
    assert "\n" not in str(err.value)


def test_fcn_needs_one_kernel_size_per_width():
    with pytest.raises(ConfigError, match="one entry per block, got 2 widths and 3 kernel_sizes"):
        build_baseline("fcn", n_channels=1, input_len=30, n_classes=2, widths=[8, 8])


@pytest.mark.parametrize("name", ["fcn", "resnet1d"])
def test_the_data_fills_the_arguments(name):
    bundle = build_data("series_classification", {})
    config = with_implied_args(ModelConfig(baseline=PartConfig(name, dict(TINY[name]))), bundle.model_args)
    assert config.baseline.args == {**TINY[name], "n_channels": 1, "input_len": 60, "n_classes": 6}
    model = build_model(config)
    batch = {key: torch.stack([bundle.train[i][key] for i in range(4)]) for key in ("inputs", "labels")}
    assert model(batch)["logits"].shape == (4, 6)


def write_waves(path: Path, n_per_class: int = 40, length: int = 32, seed: int = 0) -> None:
    """Three classes of noisy waves with random phases: a slow sine, a fast sine, a square wave of the slow period."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    xs, ys = [], []
    for label in range(3):
        for _ in range(n_per_class):
            phase = rng.uniform(0, 2 * np.pi)
            wave = np.sin(t * (0.3 if label != 1 else 1.2) + phase)
            xs.append((np.sign(wave) if label == 2 else wave) + 0.3 * rng.standard_normal(length))
            ys.append(label)
    np.savez(path, X=np.stack(xs)[:, :, None], y=np.array(ys))


@pytest.mark.parametrize("name", ["fcn", "resnet1d"])
def test_tiny_networks_learn_generated_waves_through_train_run(name, tmp_path):
    """40 trainer steps (about a second) of a tiny net on 3 classes of noisy waves: test accuracy far above
    chance (1/3); the checkpoint is rebuilt from the run folder (BatchNorm statistics included)."""
    from xformer.train.run import evaluate_run

    write_waves(tmp_path / "waves.npz")
    config = from_dict(ExperimentConfig, {
        "model": {"baseline": {"name": name, "args": TINY[name]}},
        "data": {"name": "series_classification", "args": {"path": str(tmp_path / "waves.npz")}},
        "train": {"steps": 40, "batch_size": 32, "lr": 1e-2, "eval_every": 20, "log_every": 20, "device": "cpu"}})
    metrics = train_run(config, tmp_path / "run")
    assert metrics["test_accuracy"] >= 0.8, metrics
    again = evaluate_run(tmp_path / "run")
    assert again["test_accuracy"] == pytest.approx(metrics["test_accuracy"])


def test_fcn_recipe_trains_and_evaluates_through_the_cli(tmp_path, capsys):
    from xformer.cli import main

    run = tmp_path / "run"
    assert main(["train", str(TASKS / "fcn_classify.yaml"), "train.steps=2", "--out", str(run), "--quiet",
                 "--threads", "1"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert 0.0 <= trained["test_accuracy"] <= 1.0
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["baseline"]["name"] == "fcn"
    assert (run / "test_classification.json").is_file()
    assert main(["evaluate", str(run)]) == 0
    assert json.loads(capsys.readouterr().out)["test_accuracy"] == pytest.approx(trained["test_accuracy"])
    x, y = synthetic_control(1, seed=5)  # new series, one a class, as UCR lines: the label, then the values
    lines = ["\t".join([str(label), *map(str, series[:, 0])]) for series, label in zip(x, y)]
    (tmp_path / "new.tsv").write_text("\n".join(lines) + "\n")
    assert main(["predict", str(run), str(tmp_path / "new.tsv")]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0].startswith("file,label,class,probability") and len(rows) == 1 + 6  # the labels kept


@pytest.mark.parametrize("baseline, data", [({"name": "dlinear"}, {"name": "series_classification"}),
                                            ({"name": "fcn"}, {"name": "csv_series",
                                                               "args": {"input_len": 24, "horizon": 6}}),
                                            ({"name": "resnet1d"}, {"name": "digits"})])
def test_a_baseline_of_another_domain_is_refused_in_one_line(baseline, data, tmp_path, capsys):
    from xformer.cli import main

    (tmp_path / "r.yaml").write_text(yaml.safe_dump({"model": {"baseline": baseline}, "data": data,
                                                     "train": {"steps": 1, "batch_size": 8}}))
    assert main(["train", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"baseline '{baseline['name']}' is not made for this data" in err and err.count("\n") == 1, err
    assert "series classification fcn, resnet1d" in err
    assert not (tmp_path / "run").exists()


def test_resume_reads_a_list_given_at_its_tuple_default_as_the_same_setting(tmp_path, capsys):
    """kernel_sizes=[8, 5, 3] is the default (8, 5, 3): before, --resume refused it as a change of the saved state."""
    from xformer.cli import main

    run = tmp_path / "run"
    args = ["train", str(TASKS / "fcn_classify.yaml"), "train.steps=2", "model.baseline.args.widths=[4,4,4]", "--out",
            str(run), "--quiet", "--threads", "1"]
    assert main(args) == 0
    assert main(["train", "--resume", str(run), "train.steps=3", "model.baseline.args.kernel_sizes=[8,5,3]",
                 "--quiet", "--threads", "1"]) == 0
    assert main(["train", "--resume", str(run), "train.steps=4", "model.baseline.args.kernel_sizes=[8,5,5]",
                 "--quiet", "--threads", "1"]) == 2
    assert "cannot change model.baseline.args.kernel_sizes" in capsys.readouterr().err
