"""train.wandb: every metrics.jsonl record reaches the Weights & Biases run at its step, the final metrics its
summary, the recipe its config; a resume continues the same W&B run; without the package, one line.

wandb is not a dependency: a recording stand-in takes its place in sys.modules (the calls below are those of
wandb's documented API: wandb.init(project, entity, name, tags, mode, dir, config, id, resume), run.log(values,
step=...), run.summary.update, run.finish(exit_code=...), run.step)."""
import json
import sys
import types
from pathlib import Path

import pytest
import yaml

from xformer.cli import main

RECIPE = str(Path(__file__).resolve().parents[1] / "tasks" / "reverse.yaml")
TINY_TRAIN = [RECIPE, "train.steps=20", "train.log_every=5", "train.eval_every=10", "data.args.n_train=640",
              "data.args.n_val=64", "data.args.n_test=64"]


class FakeRun:
    def __init__(self, store, kwargs):
        self.kwargs, self.logged, self.summary, self.exit_code = kwargs, [], {}, None
        previous = [run for run in store if run.kwargs["id"] == kwargs["id"]]
        self.step = max((s for run in previous for s, _ in run.logged), default=-1) + 1  # W&B's next step
        store.append(self)

    def log(self, values, step):
        assert step >= self.step, "W&B drops steps below its own"
        self.logged.append((step, values))
        self.step = step

    def finish(self, exit_code=0):
        self.exit_code = exit_code


@pytest.fixture
def wandb(monkeypatch):
    store = []
    module = types.ModuleType("wandb")
    module.__spec__ = types.SimpleNamespace(name="wandb")
    module.init = lambda **kwargs: FakeRun(store, kwargs)
    monkeypatch.setitem(sys.modules, "wandb", module)
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: object() if name == "wandb" else None)
    return store


def rows(run: Path) -> list[tuple[int, dict]]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r.pop("step"), r) for r in records]


def test_the_run_s_records_go_to_its_wandb_run(tmp_path, wandb, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY_TRAIN, "train.wandb.project=xf", "train.wandb.tags=[a,b]", "--out", str(run),
                 "--quiet"]) == 0
    final = json.loads(capsys.readouterr().out)
    [w] = wandb
    assert w.kwargs["project"] == "xf" and w.kwargs["name"] == "run" and w.kwargs["tags"] == ["a", "b"]
    assert w.kwargs["dir"] == str(run) and w.kwargs["resume"] == "allow" and w.kwargs["mode"] is None
    assert w.kwargs["config"] == yaml.safe_load((run / "config.yaml").read_text())
    assert w.logged == rows(run) and len(w.logged) == 6
    assert w.summary == final and w.exit_code == 0
    assert json.loads((run / "wandb.json").read_text()) == {"id": w.kwargs["id"], "project": "xf"}


def test_a_resume_continues_the_same_wandb_run_without_logging_a_step_twice(tmp_path, wandb, capsys, interrupt_at):
    interrupt_at(15)
    run = tmp_path / "run"
    assert main(["train", *TINY_TRAIN, "train.wandb.project=xf", "--out", str(run), "--quiet"]) == 130
    interrupt_at(None)
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    first, second = wandb
    assert first.exit_code == 1 and second.exit_code == 0 and second.kwargs["id"] == first.kwargs["id"]
    assert [s for s, _ in first.logged] == [5, 10, 10, 15]  # step 15 saved before the stop
    assert [s for s, _ in second.logged] == [20, 20]
    logged = {s: v for w in wandb for s, v in w.logged if "train_loss" in v}
    assert sorted(logged) == [5, 10, 15, 20]
    capsys.readouterr()


def test_wandb_settings_without_a_project_or_the_package_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    for override, words in (("train.wandb.project=xf", "pip install wandb"),
                            ("train.wandb.entity=team", "does nothing without train.wandb.project")):
        assert main(["train", *TINY_TRAIN, override, "--out", str(tmp_path / "run"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err, err
        assert not (tmp_path / "run").exists()


def test_wandb_failing_to_start_is_one_line_and_leaves_no_run(tmp_path, wandb, capsys, monkeypatch):
    def refuses(**kwargs):
        raise RuntimeError("api_key not configured (no-tty). call wandb.login(key=[your_api_key])\nmore")

    monkeypatch.setattr(sys.modules["wandb"], "init", refuses)
    assert main(["train", *TINY_TRAIN, "train.wandb.project=xf", "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "api_key not configured" in err and "train.wandb.mode=offline" in err, err
    assert not (tmp_path / "run").exists()
