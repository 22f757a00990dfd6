"""train.optimizer=sgd: timm's SGD (momentum 0.9, Nesterov; nesterov=false is its "momentum"), its parameter
groups and updates equal to timm's create_optimizer_v2 step for step; AdamW settings and SGD's kept apart."""
import copy
from pathlib import Path

import pytest
import torch

from xformer.cli import main
from xformer.config import ConfigError
from xformer.train.config import TrainConfig
from xformer.train.optim import build_optimizer

timm = pytest.importorskip("timm")
RECIPE = str(Path(__file__).resolve().parents[1] / "tasks" / "cnn_digits.yaml")


@pytest.mark.parametrize("nesterov, timm_name", [(None, "sgd"), (False, "momentum")])
def test_steps_equal_timm_s(nesterov, timm_name):
    from timm.optim import create_optimizer_v2

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 6 * 6, 3))
    theirs = copy.deepcopy(model)
    ours_opt = build_optimizer(model, TrainConfig(steps=3, optimizer="sgd", lr=0.1, weight_decay=0.05,
                                                  nesterov=nesterov))
    their_opt = create_optimizer_v2(theirs, timm_name, lr=0.1, weight_decay=0.05, momentum=0.9)
    assert type(their_opt) is type(ours_opt) is torch.optim.SGD
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 3, (8,))
    for _ in range(3):
        for m, opt in ((model, ours_opt), (theirs, their_opt)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(m(x), y).backward()
            opt.step()
    for (name, p), q in zip(model.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-7, msg=name)


def test_a_cnn_learns_with_sgd_and_wrong_settings_are_one_line(tmp_path, capsys):
    import json

    assert main(["train", RECIPE, "train.optimizer=sgd", "train.lr=0.05", "train.steps=60", "train.eval_every=60",
                 "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["test_accuracy"] > 0.5  # 10 classes: chance is 0.1
    for override, words in (("train.momentum=0.8", "does nothing: AdamW has no momentum setting"),
                            ("train.nesterov=true", "does nothing"),):
        assert main(["train", RECIPE, override, "train.steps=2", "--out", str(tmp_path / "bad"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err, err
    assert not (tmp_path / "bad").exists()
    for config, words in ((dict(momentum=1.0), "momentum must be in [0, 1)"),
                          (dict(momentum=0.0), "Nesterov momentum needs train.momentum > 0")):
        with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
            build_optimizer(torch.nn.Linear(2, 2), TrainConfig(steps=1, optimizer="sgd", **config))
