"""Run folders under concurrent writers, full disks, early stops and dangling pointers (audit 17, items 3, 4, 6, 7).

- one writer per folder: a second `xformer train` (fresh or --resume) on a folder another process holds is
  refused in one line and touches nothing; a killed holder blocks nothing; temporaries of a live process are
  never deleted, nor content that appeared after the check;
- a resume of an early-stopped run finishes it (no more steps) instead of training on;
- a full disk or a denied permission anywhere in a run is one line and exit status 1, naming the path, the
  checkpoints kept and the resume command; the partial checkpoint goes at once; a failure to prune stops nothing;
- latest.json naming a missing checkpoint, and a truncated best one, name the kept steps and --checkpoint.
"""
import errno
import gc
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from train_helpers import RECIPE, experiment
from xformer.cli import main
from xformer.errors import UserError
from xformer import folders
from xformer.folders import OutputFolder
from xformer.train import checkpoint as checkpoint_module
from xformer.train.checkpoint import remove_stale_temporaries, save_checkpoint
from xformer.train.progress import Progress
from xformer.train.run import train_run
from xformer.train.trainer import Trainer

TINY = {**RECIPE, "train": {**RECIPE["train"], "steps": 10}}  # checkpoints at steps 5 and 10


def recipe_file(folder: Path, **train) -> Path:
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump({**TINY, "train": {**TINY["train"], **train}}))
    return path


def run_cli(capsys, *argv) -> tuple[int, list[str]]:
    """``xformer ARGV`` in-process: its exit status and the lines it wrote to stderr."""
    capsys.readouterr()
    status = main([str(a) for a in argv] + ["--threads", "1"])
    return status, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def temporaries(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if ".tmp" in p.name)


def dead_pid() -> int:
    pid = 4_000_000
    while Path(f"/proc/{pid}").exists():
        pid -= 1
    return pid


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished 10-step run (checkpoints step_5 and step_10), copied by the tests that change it."""
    folder = tmp_path_factory.mktemp("trained")
    assert main(["train", str(recipe_file(folder)), "--out", str(folder / "run"), "--quiet", "--threads", "1"]) == 0
    return folder / "run"


@pytest.fixture
def run(trained, tmp_path) -> Path:
    shutil.copytree(trained, tmp_path / "run")
    return tmp_path / "run"


@pytest.fixture
def other_process(tmp_path):
    """Start another process holding the lock of a folder, as a running `xformer train` does; yields a function
    of the folder that returns the process (killed at the end)."""
    started = []

    def hold(folder: Path) -> subprocess.Popen:
        script = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600); "
                  "fcntl.flock(fd, fcntl.LOCK_EX); os.ftruncate(fd, 0); os.write(fd, f'{os.getpid()}\\n'.encode()); "
                  "print('held', flush=True); time.sleep(60)")
        folders.lock_file(folder).parent.mkdir(mode=0o700, exist_ok=True)
        process = subprocess.Popen([sys.executable, "-c", script, str(folders.lock_file(folder))], stdout=subprocess.PIPE,
                                   text=True)
        started.append(process)
        assert process.stdout.readline().strip() == "held"
        return process

    yield hold
    for process in started:
        process.kill()
        process.wait()
        Path(process.args[-1]).unlink(missing_ok=True)  # its lock file, which a killed holder leaves


# ---- item 3: one writer per folder ---------------------------------------------------------------------------
def test_a_second_fresh_run_on_a_folder_another_process_writes_is_refused(tmp_path, capsys, other_process):
    out = tmp_path / "dup"  # the first `xformer train --out dup` has claimed it and not written yet
    holder = other_process(out)
    status, err = run_cli(capsys, "train", recipe_file(tmp_path), "--out", out, "--quiet")
    assert status == 2 and len(err) == 1, err
    assert "another xformer process" in err[0] and f"pid {holder.pid}" in err[0], err
    assert not out.exists(), "the second run wrote into the folder the first one holds"


def test_resume_of_a_run_another_process_is_training_is_refused(run, tmp_path, capsys, other_process):
    before = snapshot(run)
    other_process(run)
    status, err = run_cli(capsys, "train", "--resume", run, "train.steps=15", "--quiet")
    assert status == 2 and len(err) == 1 and "another xformer process" in err[0], err
    assert snapshot(run) == before


def test_a_lock_left_by_a_killed_process_blocks_nothing(tmp_path, other_process):
    folder = tmp_path / "run"
    holder = other_process(folder)
    with pytest.raises(ValueError, match="another xformer process"):
        folders.hold_folder(folder, lambda who: f"held by {who}; another xformer process")
    holder.kill()
    holder.wait()
    lock = folders.hold_folder(folder, lambda who: "still held")
    assert lock is not None and lock.held
    lock.release()


def test_temporaries_of_a_live_process_are_not_removed(tmp_path):
    live, dead = os.getppid(), dead_pid()  # the process that started the tests is alive
    (tmp_path / f".step_00000004.tmp{live}").mkdir()
    (tmp_path / f".step_00000008.tmp{dead}").mkdir()
    (tmp_path / f".latest.json.tmp{live}").write_text("{}")
    remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".latest.json.tmp{live}", f".step_00000004.tmp{live}"]


def test_content_that_appears_after_the_check_is_not_removed_on_failure(tmp_path):
    folder = OutputFolder(tmp_path / "new")  # checked: it does not exist, so this process creates it
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "theirs.txt").write_text("written by another program")
    with pytest.raises(ValueError, match="another program"):
        folder.replace()
    folder.failed()
    assert (tmp_path / "new" / "theirs.txt").read_text() == "written by another program"


# ---- item 4: an early-stopped run resumed is finished, not trained on ----------------------------------------
EARLY = dict(steps=30, early_stopping={"metric": "val_loss", "mode": "max", "patience": 1})  # stops at step 10


def test_resume_of_an_early_stopped_run_finishes_it(tmp_path, monkeypatch):
    reference = train_run(experiment(**EARLY), tmp_path / "ref", progress=Progress(quiet=True))
    assert reference["steps"] == 10 and reference["best_step"] == 5
    evaluate = Trainer.evaluate

    def test_split_unreadable(self, split, max_batches=None):
        if split == "test":
            raise UserError("cannot read a test example")
        return evaluate(self, split, max_batches)

    monkeypatch.setattr(Trainer, "evaluate", test_split_unreadable)
    with pytest.raises(UserError, match="--resume"):
        train_run(experiment(**EARLY), tmp_path / "es", progress=Progress(quiet=True))
    monkeypatch.setattr(Trainer, "evaluate", evaluate)
    resumed = train_run(experiment(**EARLY), tmp_path / "es", resume=True, progress=Progress(quiet=True))
    assert resumed["steps"] == 10 and resumed["best_step"] == 5, resumed
    state = json.loads((tmp_path / "es" / "checkpoints" / "step_00000010" / "state.json").read_text())
    assert state["stopped_by"] == "early_stopping"
    assert {k: v for k, v in resumed.items() if k != "train_seconds"} == \
        {k: v for k, v in reference.items() if k != "train_seconds"}
    assert json.loads((tmp_path / "es" / "checkpoints" / "latest.json").read_text())["latest"] == "step_00000010"


def test_a_resume_after_max_seconds_trains_on(tmp_path):
    """The limit is per session: a resume asks for more time (documented in docs/training.md)."""
    quiet = Progress(quiet=True)
    stopped = train_run(experiment(steps=10, max_seconds=1e-9), tmp_path / "run", progress=quiet)
    assert stopped["steps"] == 1
    assert json.loads((tmp_path / "run" / "checkpoints" / "step_00000001" / "state.json").read_text())[
        "stopped_by"] == "max_seconds"
    assert train_run(experiment(steps=10), tmp_path / "run", resume=True, progress=quiet)["steps"] == 10


# ---- item 6: a full disk or a denied permission ---------------------------------------------------------------
def assert_machine_failure(status: int, err: list[str], *named: str) -> None:
    assert status == 1 and len(err) == 1 and err[0].startswith("xformer: error: "), err
    for text in named:
        assert text in err[0], (text, err[0])


def test_a_full_disk_at_a_checkpoint_is_one_line_naming_what_is_kept(tmp_path, capsys, monkeypatch):
    calls, real = [], checkpoint_module.save_file

    def save_file(tensors, path, metadata=None):
        calls.append(path)
        if len(calls) == 2:  # the second checkpoint's weights
            Path(path).write_bytes(b"\0" * 10)  # part of the file was written
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(tensors, path, metadata=metadata)

    monkeypatch.setattr(checkpoint_module, "save_file", save_file)
    out = tmp_path / "run"
    status, err = run_cli(capsys, "train", recipe_file(tmp_path), "--out", out, "--quiet")
    assert_machine_failure(status, err, "No space left on device", ".step_00000010.tmp", "step_00000005",
                           f"xformer train --resume {out}")
    assert not temporaries(out), "the partial checkpoint was left on the full disk"
    monkeypatch.undo()
    status, err = run_cli(capsys, "train", "--resume", out, "--quiet")
    assert status == 0 and json.loads((out / "metrics.json").read_text())["steps"] == 10


def test_safetensors_and_torch_save_report_a_full_disk_as_such(tmp_path, capsys, monkeypatch):
    """safetensors says "(os error 28)" in a SafetensorError; torch.save takes a short write for a format error
    ("unexpected pos"): both are one line naming the file and the OS error."""
    from safetensors import SafetensorError

    def full(tensors, path, metadata=None):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(checkpoint_module, "save_file", full)
    status, err = run_cli(capsys, "train", recipe_file(tmp_path), "--out", tmp_path / "a", "--quiet")
    assert_machine_failure(status, err, "model.safetensors", "No space left on device", "nothing of the run")
    assert not (tmp_path / "a").exists()  # a fresh run that kept nothing: the same command runs again
    monkeypatch.undo()

    class FillingDisk:  # a raw file on a disk with 300 bytes left: a short write, then ENOSPC
        def __init__(self, path, *args, **kwargs):
            self.file, self.left = open(path, *args, **kwargs), 300

        def write(self, data):
            if self.left == 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            n = min(len(data), self.left)
            self.left -= n
            return self.file.write(bytes(data[:n]))

        def __getattr__(self, name):
            return getattr(self.file, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

    def open_filling(path, *args, **kwargs):
        return FillingDisk(path, *args, **kwargs) if Path(path).name == "trainer.pt" else open(path, *args, **kwargs)

    monkeypatch.setitem(checkpoint_module.__dict__, "open", open_filling)
    status, err = run_cli(capsys, "train", recipe_file(tmp_path), "--out", tmp_path / "b", "--quiet")
    assert_machine_failure(status, err, "trainer.pt", "No space left on device")


def test_an_old_checkpoint_that_cannot_be_deleted_stops_nothing(tmp_path, capsys, monkeypatch):
    rmtree = shutil.rmtree

    def denied(path, *args, **kwargs):
        if Path(path).name.startswith("step_"):  # pruning (temporaries start with ".")
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return rmtree(path, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module.shutil, "rmtree", denied)
    out = tmp_path / "run"
    status, err = run_cli(capsys, "train", recipe_file(tmp_path, steps=20, keep_last=1), "--out", out, "--quiet")
    assert status == 0, err
    warnings = [line for line in err if "warning" in line]
    assert len(warnings) == 1 and "cannot delete an old checkpoint" in warnings[0], err
    assert json.loads((out / "metrics.json").read_text())["steps"] == 20


def test_a_full_disk_at_metrics_json_then_resume_finishes(tmp_path, capsys, monkeypatch):
    replace = os.replace

    def full_at_metrics(src, dst, *args, **kwargs):
        if Path(dst).name == "metrics.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src), None, str(dst))
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full_at_metrics)
    out = tmp_path / "run"
    status, err = run_cli(capsys, "train", recipe_file(tmp_path), "--out", out, "--quiet")
    assert_machine_failure(status, err, "metrics.json", "No space left on device", "step_00000010",
                           f"xformer train --resume {out}")
    monkeypatch.undo()
    assert not temporaries(out)
    status, err = run_cli(capsys, "train", "--resume", out, "--quiet")
    assert status == 0 and (out / "metrics.json").is_file(), err


def test_a_full_disk_on_resume_is_one_line(run, capsys, monkeypatch):
    replace = os.replace

    def full(src, dst, *args, **kwargs):
        if Path(dst).name == "metrics.jsonl":  # the resume rewrites the log up to its checkpoint
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src), None, str(dst))
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full)
    status, err = run_cli(capsys, "train", "--resume", run, "train.steps=15", "--quiet")
    assert_machine_failure(status, err, "metrics.jsonl", "No space left on device", "step_00000010",
                           f"xformer train --resume {run}")


def test_permission_denied_before_the_first_checkpoint_keeps_nothing(tmp_path, capsys, monkeypatch):
    replace = os.replace

    def denied(src, dst, *args, **kwargs):
        if Path(dst).name == "config.yaml":
            raise PermissionError(errno.EACCES, "Permission denied", str(src), None, str(dst))
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", denied)
    out = tmp_path / "run"
    status, err = run_cli(capsys, "train", recipe_file(tmp_path), "--out", out, "--quiet")
    assert_machine_failure(status, err, "config.yaml", "Permission denied", "nothing of the run")
    assert not out.exists()


def test_export_overwrite_on_a_full_disk_keeps_the_old_export(run, tmp_path, capsys, monkeypatch):
    out = tmp_path / "exported"
    assert run_cli(capsys, "export", run, "--format", "hf", "--out", out)[0] == 0
    before = snapshot(out)
    replace = os.replace

    def full(src, dst, *args, **kwargs):
        if Path(dst).name == "export.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src), None, str(dst))
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full)
    status, err = run_cli(capsys, "export", run, "--format", "hf", "--out", out, "--overwrite")
    assert_machine_failure(status, err, "export.json", "No space left on device")
    monkeypatch.undo()
    assert snapshot(out) == before and not temporaries(tmp_path)


# ---- item 7: pointers to missing or truncated checkpoints; the run folder's own temporaries ---------------------
def test_latest_json_naming_a_missing_checkpoint_says_so_and_names_the_kept_ones(run, capsys):
    (run / "checkpoints" / "latest.json").write_text('{"latest": "step_00000003", "best": "step_00000003"}')
    for argv in (["evaluate", run], ["train", "--resume", run, "--quiet"]):
        status, err = run_cli(capsys, *argv)
        assert status == 2 and len(err) == 1, err
        for text in ("step_00000003", "does not exist", "step_5, step_10", "--checkpoint step_10"):
            assert text in err[0], (text, err[0])


def test_a_truncated_best_checkpoint_names_the_other_kept_ones(run, capsys):
    best = json.loads((run / "checkpoints" / "latest.json").read_text())["best"]
    other = "step_10" if best == "step_00000005" else "step_5"
    weights = run / "checkpoints" / best / "model.safetensors"
    with open(weights, "r+b") as f:
        f.truncate(weights.stat().st_size - 100)
    status, err = run_cli(capsys, "evaluate", run)
    assert status == 2 and len(err) == 1 and "truncated" in err[0] and f"--checkpoint {other}" in err[0], err
    assert run_cli(capsys, "evaluate", run, "--checkpoint", other)[0] == 0


def test_resume_removes_the_run_folders_stale_temporaries_only(run, capsys):
    dead, live = dead_pid(), os.getppid()
    (run / f".metrics.json.tmp{dead}").write_text('{"val_lo')
    (run / f".config.yaml.tmp{live}").write_text("model:")
    status, err = run_cli(capsys, "train", "--resume", run, "train.steps=15", "--quiet")
    assert status == 0, err
    assert [p.name for p in run.iterdir() if ".tmp" in p.name] == [f".config.yaml.tmp{live}"]


def test_saving_a_step_again_never_deletes_the_folder_latest_json_names(tmp_path, monkeypatch):
    weights = {"w": torch.ones(3)}
    trainer = {"optimizer": {}, "scheduler": {}, "rng": []}

    def save(value: float) -> None:
        save_checkpoint(tmp_path, 5, {"w": torch.full((3,), value)}, trainer, {"step": 5}, set(), 2, True)

    save(1.0)
    rmtree, deleted = shutil.rmtree, []

    def recording(path, *args, **kwargs):
        deleted.append(Path(path).name)
        return rmtree(path, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module.shutil, "rmtree", recording)
    save(2.0)
    assert not [name for name in deleted if name.startswith("step_")], deleted  # only temporaries are deleted
    assert torch.equal(checkpoint_module.read_weights(tmp_path / "step_00000005")["w"], torch.full((3,), 2.0))
    assert weights and not temporaries(tmp_path)


def test_a_checkpoint_renamed_aside_by_a_killed_save_is_read_and_put_back(run, capsys):
    latest = run / "checkpoints" / "step_00000010"
    aside = run / "checkpoints" / f".step_00000010.old.tmp{dead_pid()}"  # killed between the two renames
    os.replace(latest, aside)
    status, err = run_cli(capsys, "evaluate", run, "--checkpoint", "last")
    assert status == 0, err
    status, err = run_cli(capsys, "train", "--resume", run, "train.steps=15", "--quiet")
    assert status == 0, err
    assert json.loads((run / "metrics.json").read_text())["steps"] == 15
    assert (run / "checkpoints" / "step_00000010" / "state.json").is_file() and not aside.exists()


def test_a_finished_train_run_releases_its_folder(tmp_path):
    """train_run in a notebook: once it returns, another process (a resume in a terminal) may claim the run."""
    train_run(experiment(steps=5), tmp_path / "run", progress=Progress(quiet=True))
    gc.collect()  # the claim lives as long as the run's objects (matplotlib keeps frames in reference cycles)
    script = ("import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
              "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB); print('free')\n"
              "except BlockingIOError:\n    print('busy')")
    folders.lock_file(tmp_path / "run").parent.mkdir(mode=0o700, exist_ok=True)
    answer = subprocess.run([sys.executable, "-c", script, str(folders.lock_file(tmp_path / "run"))], capture_output=True,
                            text=True, check=True).stdout.strip()
    folders.lock_file(tmp_path / "run").unlink(missing_ok=True)
    assert answer == "free"


def test_a_failed_run_closes_its_tensorboard_writer_before_its_folder_is_removed(tmp_path, capsys, monkeypatch):
    """The writer's thread must not be running while a fresh run that kept nothing is deleted (it could write into
    the folder mid-deletion, and the run folder would stay behind)."""
    import xformer.train.metrics as metrics_module
    from safetensors import SafetensorError

    events = []

    class Writer:
        def add_scalar(self, *args):
            pass

        def close(self):
            events.append(("closed", (tmp_path / "a").exists()))

    monkeypatch.setattr(metrics_module, "_summary_writer", lambda path: Writer())

    def full(tensors, path, metadata=None):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(checkpoint_module, "save_file", full)
    status, err = run_cli(capsys, "train", recipe_file(tmp_path), "--out", tmp_path / "a", "--quiet")
    assert status == 1 and events == [("closed", True)]  # closed once, while the folder was still there
    assert not (tmp_path / "a").exists()
