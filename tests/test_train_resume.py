"""Run folders, checkpoints and exact resumption (in-process crash and SIGKILL)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from safetensors.torch import load_file

from train_helpers import RECIPE, crash_after_checkpoint
from train_helpers import assert_same_tensors as assert_same_weights
from train_helpers import experiment as config
from xformer.cli import main
from xformer.config import from_dict
from xformer.train.checkpoint import CheckpointError, checkpoint_dir
from xformer.train.config import ExperimentConfig
from xformer.train.interrupt import TrainingInterrupted
from xformer.train.run import train_run
from xformer.train.trainer import Trainer

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def _one_thread_and_restore_determinism():
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def final_weights(run_dir, which="latest") -> dict:
    return load_file(checkpoint_dir(run_dir / "checkpoints", which) / "model.safetensors")


def xformer(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "xformer", *map(str, args)], capture_output=True, text=True,
                          env=ENV, **kwargs)


def test_run_folder_has_the_contract_files_and_evaluate_round_trips(tmp_path, capsys):
    """`xformer train` in this process (the same code as the console script), `xformer evaluate` in a fresh one:
    the run folder alone rebuilds the model."""
    recipe = tmp_path / "copy.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    run = tmp_path / "run"
    assert main(["train", str(recipe), "train.steps=10", "--out", str(run)]) == 0, capsys.readouterr().err
    for name in ("config.yaml", "metrics.jsonl", "metrics.json", "learning_curve.png", "checkpoints/latest.json"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("val_loss", "val_token_accuracy", "test_loss", "test_token_accuracy", "train_seconds"):
        assert isinstance(metrics[key], float), key
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines if "train_loss" in line] == [5, 10]
    assert [line["step"] for line in lines if "val_loss" in line] == [5, 10]
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["tokenizer"]["args"]["vocab_size"] == 13  # filled in from the data
    # the tied LM head is stored once, and the run folder alone rebuilds the model
    assert "head.proj.weight" not in final_weights(run)
    evaluated = xformer("evaluate", run)
    assert evaluated.returncode == 0, evaluated.stderr
    again = json.loads(evaluated.stdout)
    for key in ("val_loss", "test_loss", "test_token_accuracy"):
        assert again[key] == pytest.approx(metrics[key], abs=1e-6), key


@pytest.mark.parametrize("aug_repeats", [1])  # repeats need random augmentation: tests/test_train_audit6.py
def test_interrupted_run_resumes_to_the_same_weights(tmp_path, monkeypatch, aug_repeats):
    train_run(config(aug_repeats=aug_repeats), tmp_path / "whole")
    crash_after_checkpoint(monkeypatch, 15, lambda: train_run(config(aug_repeats=aug_repeats), tmp_path / "cut"))
    assert checkpoint_dir(tmp_path / "cut" / "checkpoints").name == "step_00000015"
    metrics = train_run(config(aug_repeats=aug_repeats), tmp_path / "cut", resume=True)
    assert metrics["steps"] == 30
    assert_same_weights(final_weights(tmp_path / "whole"), final_weights(tmp_path / "cut"))
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert metrics["test_loss"] == whole["test_loss"]
    steps = [json.loads(line)["step"] for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps.count(15) == 2  # one train line and one eval line, not repeated


def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path):
    steps = 400
    recipe = tmp_path / "copy.yaml"
    recipe.write_text(yaml.safe_dump({**RECIPE, "train": {**RECIPE["train"], "steps": steps, "eval_every": 10,
                                                          "early_stopping": {"metric": "val_loss"}}}))
    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "xformer", "train", str(recipe), "--out", str(run)],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pointer, deadline = run / "checkpoints" / "latest.json", time.time() + 60
    while time.time() < deadline and not (pointer.is_file() and "step_00000020" <= json.loads(pointer.read_text())["latest"]):
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = int(checkpoint_dir(run / "checkpoints").name.split("_")[1])
    assert 20 <= killed_at < steps, "the run was not interrupted"

    assert main(["train", "--resume", str(run)]) == 0  # in this process: the killed one was the real process
    train_run(from_dict(ExperimentConfig, yaml.safe_load(recipe.read_text())), tmp_path / "whole")
    assert_same_weights(final_weights(tmp_path / "whole"), final_weights(run))


def signal_during_step(monkeypatch, step: int, signum=signal.SIGINT) -> None:
    """Deliver ``signum`` to this process in the middle of training step ``step`` (before its update)."""
    original = Trainer._step

    def step_with_signal(self, batches):
        if self.step + 1 == step:
            signal.raise_signal(signum)  # the handler runs now, between two bytecodes of this step
        return original(self, batches)

    monkeypatch.setattr(Trainer, "_step", step_with_signal)


def test_ctrl_c_finishes_the_step_keeps_it_and_resumes_exactly(tmp_path, monkeypatch):
    train_run(config(), tmp_path / "whole")
    before = signal.getsignal(signal.SIGINT)
    signal_during_step(monkeypatch, 12)  # between the checkpoints of steps 10 and 15
    with pytest.raises(TrainingInterrupted, match=r"SIGINT: stopped after step 12 of 30, kept as .*step_00000012; "
                                                  r"continue with: xformer train --resume") as e:
        train_run(config(), tmp_path / "cut")
    assert e.value.exit_status == 130 and signal.getsignal(signal.SIGINT) is before  # handlers restored
    assert checkpoint_dir(tmp_path / "cut" / "checkpoints").name == "step_00000012"
    monkeypatch.undo()
    metrics = train_run(config(), tmp_path / "cut", resume=True)
    assert metrics["steps"] == 30
    assert_same_weights(final_weights(tmp_path / "whole"), final_weights(tmp_path / "cut"))
    assert metrics["test_loss"] == json.loads((tmp_path / "whole" / "metrics.json").read_text())["test_loss"]


def test_a_signal_before_the_first_checkpoint_keeps_nothing_and_an_overwritten_run_comes_back(tmp_path, monkeypatch):
    old = train_run(config(steps=5), tmp_path / "run")
    signal_during_step(monkeypatch, 3, signal.SIGTERM)
    with pytest.raises(TrainingInterrupted) as e:
        train_run(config(), tmp_path / "run", overwrite=True)
    assert str(e.value) == (f"SIGTERM at step 3 of 30, before the first checkpoint: nothing of the new run was kept "
                            f"and the old run in {tmp_path / 'run'} is as it was")
    assert e.value.exit_status == 143
    assert checkpoint_dir(tmp_path / "run" / "checkpoints").name == "step_00000005"  # as any failure before it
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == old
    with pytest.raises(TrainingInterrupted) as e:  # a fresh run: nothing was there before
        train_run(config(), tmp_path / "fresh")
    assert str(e.value) == "SIGTERM at step 3 of 30, before the first checkpoint: nothing was kept"


def test_sigterm_to_xformer_train_stops_cleanly_and_resumes(tmp_path):
    recipe = tmp_path / "copy.yaml"
    recipe.write_text(yaml.safe_dump({**RECIPE, "train": {**RECIPE["train"], "steps": 400, "eval_every": 10}}))
    run = tmp_path / "stopped"
    proc = subprocess.Popen([sys.executable, "-m", "xformer", "train", str(recipe), "--out", str(run)],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    pointer, deadline = run / "checkpoints" / "latest.json", time.time() + 60
    while time.time() < deadline and not pointer.is_file():
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 143, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("xformer: interrupted: SIGTERM: stopped after step") and "Traceback" not in err
    stopped_at = int(checkpoint_dir(run / "checkpoints").name.split("_")[1])
    assert f"stopped after step {stopped_at} of 400" in line and stopped_at < 400
    assert main(["train", "--resume", str(run)]) == 0  # in this process: the killed one was the real process
    train_run(from_dict(ExperimentConfig, yaml.safe_load(recipe.read_text())), tmp_path / "whole")
    assert_same_weights(final_weights(tmp_path / "whole"), final_weights(run))


def test_truncated_checkpoint_is_reported_in_one_line(tmp_path):
    run = tmp_path / "run"
    train_run(config(steps=5), run)
    weights = checkpoint_dir(run / "checkpoints") / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    result = xformer("evaluate", run)
    assert result.returncode == 2
    assert "truncated" in result.stderr and "model.safetensors" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    with pytest.raises(CheckpointError, match="truncated"):
        train_run(config(steps=10), run, resume=True)


def test_keep_last_and_keep_best(tmp_path):
    run = tmp_path / "run"
    # "max" of the loss: the first evaluation stays the best one, later ones are pruned to keep_last
    train_run(config(steps=30, keep_last=2, early_stopping={"metric": "val_loss", "mode": "max"}), run)
    kept = sorted(p.name for p in (run / "checkpoints").glob("step_*"))
    assert kept == ["step_00000005", "step_00000025", "step_00000030"]
    assert checkpoint_dir(run / "checkpoints", "best").name == "step_00000005"
