"""RUN/train.log: the run's history to read, written in every progress mode and appended to by each session."""
import re
from pathlib import Path

import pytest

from xformer.cli import main
from xformer.train.trainer import Trainer

RECIPE = str(Path(__file__).resolve().parents[1] / "tasks" / "reverse.yaml")
TINY_TRAIN = [RECIPE, "train.steps=20", "train.log_every=5", "train.eval_every=10", "data.args.n_train=640",
              "data.args.n_val=64", "data.args.n_test=64"]
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  ")


def logged(run: Path) -> list[str]:
    """train.log's lines without their times (every line must start with one)."""
    lines = (run / "train.log").read_text(encoding="utf-8").splitlines()
    assert all(STAMP.match(line) for line in lines), lines
    return [STAMP.sub("", line) for line in lines]


def test_the_log_holds_the_lines_stderr_shows_between_its_start_and_its_end(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setattr("sys.argv", ["/usr/bin/xformer", "train", *TINY_TRAIN, "--out", str(tmp_path / "run")])
    assert main(["train", *TINY_TRAIN, "--out", str(tmp_path / "run")]) == 0
    shown = [line for line in capsys.readouterr().err.splitlines() if re.match(r"(train|eval) step", line)]
    lines = logged(tmp_path / "run")
    assert lines[0].startswith("started: 20 steps (xformer train ") and lines[0].endswith(f"--out {tmp_path}/run)")
    assert lines[1:-1] == shown and len(shown) == 6
    assert re.fullmatch(r"finished: val_loss \S+  val_token_accuracy \S+  test_loss \S+  test_token_accuracy \S+  "
                        r"train_seconds \S+  steps 20  best_step 20", lines[-1]), lines[-1]


def test_quiet_runs_and_python_runs_keep_a_log_too(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.argv", ["ipykernel_launcher.py", "-f", "kernel.json"])  # a notebook's argv
    assert main(["train", *TINY_TRAIN, "--out", str(tmp_path / "run"), "--quiet"]) == 0
    lines = logged(tmp_path / "run")
    assert lines[0] == "started: 20 steps"  # no command line that is not the run's
    assert [line.split("  ")[0] for line in lines[1:-1]] == [
        "train step 5/20", "train step 10/20", "eval step 10/20", "train step 15/20", "train step 20/20",
        "eval step 20/20"]
    assert lines[-1].startswith("finished: ")


def test_a_stopped_session_says_why_and_a_resume_appends_below_it(tmp_path, capsys, interrupt_at):
    interrupt_at(12)
    run = tmp_path / "run"
    assert main(["train", *TINY_TRAIN, "--out", str(run), "--quiet"]) == 130
    first = logged(run)
    assert first[-1].startswith("stopped: SIGINT: stopped after step 12 of 20, kept as ") \
        and first[-1].endswith(f"continue with: xformer train --resume {run}"), first[-1]
    assert [line.split("  ")[0] for line in first[1:-1]] == ["train step 5/20", "train step 10/20", "eval step 10/20"]

    interrupt_at(None)
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    lines = logged(run)
    assert lines[:len(first)] == first  # the history stays as it was
    assert lines[len(first)].startswith("resumed at step 12 of 20")
    assert [line.split("  ")[0] for line in lines[len(first) + 1:-1]] == [
        "train step 15/20", "train step 20/20", "eval step 20/20"]
    assert lines[-1].startswith("finished: ") and "steps 20" in lines[-1]
    capsys.readouterr()


def test_a_run_that_fails_at_its_start_leaves_no_log_of_an_overwritten_run_mixed_in(tmp_path, monkeypatch):
    """--overwrite of a run, failing before the new run's first checkpoint: the old run comes back with its own
    train.log, untouched by the failed session."""
    run = tmp_path / "run"
    assert main(["train", *TINY_TRAIN, "--out", str(run), "--quiet"]) == 0
    before = (run / "train.log").read_bytes()

    def fails(self, batches):
        raise OSError("disk read error")

    monkeypatch.setattr(Trainer, "_step", fails)
    with pytest.raises(OSError):
        main(["train", *TINY_TRAIN, "--out", str(run), "--quiet", "--overwrite"])
    assert (run / "train.log").read_bytes() == before


def test_a_run_started_from_another_logs_what_init_from_loaded(tmp_path, capsys):
    assert main(["train", *TINY_TRAIN, "--out", str(tmp_path / "first"), "--quiet"]) == 0
    assert main(["train", *TINY_TRAIN, "--init-from", str(tmp_path / "first"), "--out", str(tmp_path / "second"),
                 "--quiet"]) == 0
    shown = [line for line in capsys.readouterr().out.splitlines() if line.startswith("init_from ")]
    lines = logged(tmp_path / "second")
    assert len(shown) == 1 and lines[1] == shown[0] and "loaded" in shown[0]
