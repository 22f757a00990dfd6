"""Progress: a bar on a terminal, one plain line per log step and per evaluation in a file, nothing when quiet.

Under pytest stderr is captured, not a terminal, so the commands below write lines."""
import io
import json
from pathlib import Path

import pytest

from xformer.cli import main
from xformer.train.progress import Progress, choose_mode, duration, readable, train_line

RECIPE = str(Path(__file__).resolve().parents[1] / "tasks" / "reverse.yaml")
# 20 steps of the reversal recipe: a log step every 5 steps, an evaluation every 10
TINY_TRAIN = [RECIPE, "train.steps=20", "train.log_every=5", "train.eval_every=10", "data.args.n_train=640",
              "data.args.n_val=64", "data.args.n_test=64"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _no_tqdm_disable(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)


def progress_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if " step " in f" {line}"]


# ---- the mode --------------------------------------------------------------------------------------------------
def test_the_mode_follows_the_stream_quiet_and_tqdm_disable(monkeypatch):
    assert choose_mode(stream=Terminal()) == "bar"
    assert choose_mode(stream=io.StringIO()) == "lines"
    assert choose_mode(quiet=True, stream=Terminal()) == "quiet"
    for true in ("1", "true", "True", "yes"):
        monkeypatch.setenv("TQDM_DISABLE", true)
        assert choose_mode(stream=Terminal()) == choose_mode(stream=io.StringIO()) == "quiet", true
    for false in ("", "0", "false", "FALSE"):
        monkeypatch.setenv("TQDM_DISABLE", false)
        assert choose_mode(stream=Terminal()) == "bar", false
    assert Progress(10, shown=False).mode == "quiet"  # a process other than rank 0


def test_lines_are_plain_rounded_and_name_the_model(capsys):
    with Progress(600) as progress:
        assert progress.mode == "lines"
        progress.log(200, 600, {"train_loss": 0.452149, "lr": 0.0029812, "examples_per_second": 1234.4})
        progress.eval(200, 600, {"val_loss": 0.31204, "val_token_accuracy": 0.98213, "val_perplexity": 123456.0})
        progress.start("text: GPT (decoder)")
        progress.eval(400, 600, {"val_loss": 0.3})
    assert capsys.readouterr().err.splitlines() == [
        "train step 200/600  loss 0.4521  lr 2.98e-03  1,234 ex/s",
        "eval step 200/600  val_loss 0.3120  val_token_accuracy 0.9821  val_perplexity 1.23e+05",
        "text: GPT (decoder)  eval step 400/600  val_loss 0.3000"]
    assert [readable(x) for x in (0.0, 1.5e-5, 7, float("nan"))] == ["0.0000", "1.50e-05", "7", "nan"]


def test_a_log_step_line_says_the_time_left():
    """A log file has no bar, whose time left a run of an hour or more is watched for: its line says it."""
    values = {"train_loss": 1.0, "lr": 1e-3, "examples_per_second": 10.0}
    assert train_line(300, 600, values, left=90.2).endswith("10 ex/s  eta 1m30s")
    assert train_line(600, 600, values, left=0.0).endswith("10 ex/s")  # none left
    assert [duration(s) for s in (0.4, 59.6, 245, 3599.4, 7620, 86400 * 2)] == [
        "0s", "1m00s", "4m05s", "59m59s", "2h07m", "48h00m"]


def test_the_time_left_is_the_steps_left_at_the_sessions_pace(tmp_path, capsys, monkeypatch):
    """Steps done since the session began (a resumed run's since its resume step) and the seconds they took, the
    evaluations included: with a clock that advances 2 s a reading, the eta falls as the steps left do."""
    import xformer.train.trainer as trainer

    now = iter(range(0, 10 ** 6, 2))
    monkeypatch.setattr(trainer.time, "perf_counter", lambda: float(next(now)))
    assert main(["train", *TINY_TRAIN, "--out", str(tmp_path / "run")]) == 0
    etas = [line.split("eta ")[-1] if "eta" in line else None
            for line in progress_lines(capsys.readouterr().err) if line.startswith("train")]
    assert len(etas) == 4 and etas[-1] is None and all(etas[:3]), etas
    seconds = [int(e[:-1]) if e.endswith("s") and "m" not in e else None for e in etas[:3]]
    assert seconds[0] > seconds[1] > seconds[2] > 0, etas
    log = (tmp_path / "run" / "train.log").read_text()
    assert all(f"eta {e}" in log for e in etas[:3]), log


def test_on_a_terminal_the_bar_stays_and_evaluations_print_above_it(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with Progress(4) as progress:
        assert progress.mode == "bar"
        for step in (1, 2):
            progress.update()
            progress.log(step, 4, {"train_loss": 1.0, "lr": 1e-3, "examples_per_second": 10.0})
        progress.eval(2, 4, {"val_loss": 0.5})
    out = terminal.getvalue()
    assert "\r" in out and "loss=1.0000" in out  # the bar, redrawn in place
    assert "\neval step 2/4  val_loss 0.5000\n" in out.replace("\r", "\n")


# ---- the commands ----------------------------------------------------------------------------------------------
def test_train_writes_one_line_per_log_step_and_per_evaluation(tmp_path, capsys):
    assert main(["train", *TINY_TRAIN, "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = progress_lines(err)
    assert [line.split("  ")[0] for line in lines] == [
        "train step 5/20", "train step 10/20", "eval step 10/20", "train step 15/20", "train step 20/20",
        "eval step 20/20"]
    assert all("val_loss" in line and "val_token_accuracy" in line for line in lines if line.startswith("eval"))
    # metrics.jsonl still holds the same steps, unrounded
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [5, 10, 10, 15, 20, 20]


def test_quiet_train_prints_no_progress_but_its_metrics(tmp_path, capsys):
    assert main(["train", *TINY_TRAIN, "--out", str(tmp_path / "run"), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert progress_lines(err) == [] and "val_loss" in json.loads(out)


def test_demo_writes_a_line_per_model_and_tqdm_disable_silences_it(capsys, monkeypatch):
    assert main(["demo", "--steps", "20"]) == 0
    out, err = capsys.readouterr()
    assert "\r" not in err
    assert [line.split("  loss")[0] for line in progress_lines(err)] == [
        "reverse digits (encoder-decoder)  train step 20/20", "copy digits (decoder)  train step 20/20"]
    assert "reverse digits" in out and "copy digits" in out  # the results stay on stdout

    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert main(["demo", "--steps", "20"]) == 0
    out, err = capsys.readouterr()
    assert progress_lines(err) == [] and "copy digits" in out


def test_quiet_demo_keeps_its_results(capsys):
    assert main(["demo", "--steps", "20", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert progress_lines(err) == [] and "copy digits (decoder): greedy token accuracy" in out


def test_errors_stay_visible_when_quiet(tmp_path, capsys):
    assert main(["train", RECIPE, "train.lrr=1", "--quiet", "--out", str(tmp_path / "run")]) == 2
    assert "xformer: error: unknown config key 'train.lrr'" in capsys.readouterr().err
    assert main(["compare", "--domains", "audio", "--quiet", "--out", str(tmp_path / "report")]) == 2
    assert "xformer: error: " in capsys.readouterr().err
    assert main(["forecast", str(tmp_path), "--data", str(tmp_path / "missing.csv"), "--quiet"]) == 2
    assert "xformer: error: " in capsys.readouterr().err
