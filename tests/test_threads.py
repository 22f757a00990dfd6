"""--threads N (xformer/cli.py): every command that computes takes it, a count below 1 or not a number is a
one-line error before anything runs, and the command runs with torch.set_num_threads(N), the caller's
setting coming back afterwards."""
import json

import pytest
import torch

from xformer import cli
from xformer.cli import THREADED_COMMANDS, build_parser, main

COMPUTING = ("train", "evaluate", "predict", "compare")  # the brief's four, and the rest of THREADED_COMMANDS


def test_every_computing_command_takes_threads():
    assert set(COMPUTING) <= set(THREADED_COMMANDS)
    parser = build_parser()
    argv = {"train": ["train", "recipe.yaml"], "evaluate": ["evaluate", "runs/x"],
            "predict": ["predict", "runs/x", "a.png"], "compare": ["compare"], "attention": ["attention", "runs/x"],
            "demo": ["demo"], "forecast": ["forecast", "runs/x", "--data", "a.csv"],
            "generate": ["generate", "runs/x", "--prompt", "a"],
            "backtest": ["backtest", "runs/x", "--data", "a.csv", "--windows", "2"],
            "export": ["export", "runs/x", "--format", "onnx", "--out", "x"],
            "average": ["average", "runs/x", "--last", "3", "--out", "x"]}
    for name in THREADED_COMMANDS:
        assert parser.parse_args([*argv[name], "--threads", "3"]).threads == 3, name
        assert parser.parse_args(argv[name]).threads is None, name  # absent: torch's default is left alone


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
@pytest.mark.parametrize("command", [["train", "recipe.yaml"], ["evaluate", "runs/x"],
                                     ["predict", "runs/x", "a.png"], ["compare"]])
def test_a_bad_thread_count_is_one_line(command, value, capsys, monkeypatch):
    ran = []
    monkeypatch.setattr(f"xformer.commands.{command[0]}.run", ran.append)
    before = torch.get_num_threads()
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--threads", value])
    assert exit_.value.code == 2 and not ran
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"--threads: the number of threads must be a whole number >= 1, got '{value}'" in err, err
    assert f"see xformer {command[0]} --help" in err
    assert torch.get_num_threads() == before


def test_threads_sets_torchs_count_while_the_command_runs(monkeypatch):
    seen = []
    monkeypatch.setattr("xformer.commands.evaluate.run", lambda args: seen.append(torch.get_num_threads()))
    torch.set_num_threads(1)  # conftest's setting, restored by it after the test as well
    assert main(["evaluate", "runs/x", "--threads", "3"]) == 0
    assert seen == [3]
    assert torch.get_num_threads() == 1  # main() in-process hands the caller's setting back
    assert main(["evaluate", "runs/x"]) == 0
    assert seen == [3, 1]  # without --threads nothing is changed


def test_threads_is_restored_after_a_user_error(monkeypatch, capsys):
    def fails(args):
        assert torch.get_num_threads() == 2
        raise cli.ConfigError("something the user can fix")

    monkeypatch.setattr("xformer.commands.train.run", fails)
    torch.set_num_threads(1)
    assert main(["train", "recipe.yaml", "--threads", "2"]) == 2
    assert "something the user can fix" in capsys.readouterr().err
    assert torch.get_num_threads() == 1


def test_a_real_evaluation_under_threads(tmp_path, capsys):
    """End to end: a tiny digits run trained and evaluated with --threads 2 gives the metrics it gives without."""
    run, recipe = tmp_path / "mlp", tmp_path / "mlp.yaml"
    recipe.write_text(json.dumps({"model": {"baseline": {"name": "mlp", "args": {"hidden_dims": [16]}}},
                                  "data": {"name": "digits", "args": {}},
                                  "train": {"steps": 3, "eval_every": 3, "batch_size": 32, "device": "cpu"}}))
    assert main(["train", str(recipe), "--quiet", "--threads", "2", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--threads", "2"]) == 0
    with_threads = json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(run)]) == 0
    without = json.loads(capsys.readouterr().out)
    assert with_threads["test_accuracy"] == without["test_accuracy"]
    assert with_threads["test_loss"] == pytest.approx(without["test_loss"], rel=1e-6)
