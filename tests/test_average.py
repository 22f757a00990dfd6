"""`xformer average RUN --out AVG --last K | --best K`: the mean of a run's checkpoints, written as a run of its own
that every command reads, without touching the run; tiny digits classifiers of a few steps."""
import hashlib
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from xformer.cli import main
from xformer.train.average import average_weights, choose_checkpoints
from xformer.train.checkpoint import read_eval_weights, save_checkpoint

pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py
RECIPE = ("model: {architecture: encoder, core: {d_model: 16, n_layers: 1, n_heads: 2, d_ff: 32},\n"
          "  tokenizer: {name: image_patches, args: {patch_size: 4}}, head: {name: classification}}\n"
          "data: {name: digits}\n"
          "train: {steps: 6, batch_size: 16, eval_every: 2, keep_last: 3, lr: 0.003, eval_batches: 2}\n")


def train(folder: Path, name: str, *overrides: str) -> Path:
    (folder / "r.yaml").write_text(RECIPE, encoding="utf-8")
    assert main(["train", str(folder / "r.yaml"), "--out", str(folder / name), "--quiet", "--threads", "1",
                 *overrides]) == 0
    return folder / name


def files_of(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run that keeps checkpoints step 2, 4 and 6."""
    return train(tmp_path_factory.mktemp("average"), "run")


def test_the_average_is_the_mean_of_the_last_checkpoints_and_is_a_run_every_command_reads(run, capsys, cli_error):
    before = files_of(run)
    avg = run.parent / "avg"
    assert main(["average", str(run), "--last", "3", "--out", str(avg), "--threads", "1"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert files_of(run) == before  # the run itself is untouched
    steps = [run / "checkpoints" / f"step_0000000{n}" for n in (2, 4, 6)]
    expected = {k: sum(load_file(s / "model.safetensors")[k].double() for s in steps) / 3
                for k in load_file(steps[-1] / "model.safetensors")}
    averaged = load_file(avg / "checkpoints" / "step_00000006" / "model.safetensors")
    assert averaged.keys() == expected.keys()
    for k, v in expected.items():
        assert averaged[k].dtype == torch.float32 and torch.equal(averaged[k], v.float()), k
    assert not torch.equal(averaged["head.fc.weight"], load_file(steps[-1] / "model.safetensors")["head.fc.weight"])
    record = json.loads((avg / "averaged.json").read_text())
    assert record["checkpoints"] == ["step_2", "step_4", "step_6"] and record["chosen"] == "the last 3"
    # its metrics are those evaluate measures over every example, as a run's; the data's files came along
    metrics = json.loads((avg / "metrics.json").read_text())
    assert printed == metrics and metrics["steps"] == 6
    assert main(["evaluate", str(avg)]) == 0
    assert json.loads(capsys.readouterr().out) == {k: v for k, v in metrics.items() if k.startswith(("val", "test"))}
    for name in ("config.yaml", "classes.json", "preprocess.json", "data_split.json", "test_classification.json"):
        assert (avg / name).is_file(), name
    assert not (avg / "metrics.jsonl").exists() and not (avg / "train.log").exists()
    # a run to start from, not one to continue
    err = cli_error(["train", "--resume", str(avg), "train.steps=8"])
    assert "average of checkpoints" in err and f"init_from={avg}" in err
    assert main(["train", str(run.parent / "r.yaml"), "--out", str(run.parent / "ft"), f"init_from={avg}",
                 "train.steps=2", "--quiet", "--threads", "1"]) == 0


def test_best_k_are_chosen_by_the_metric_the_run_tracked(run, tmp_path):
    """The kept checkpoints ranked by their evaluation in metrics.jsonl (min for val_loss, max for accuracy)."""
    copy = tmp_path / "copy"
    (copy / "checkpoints").mkdir(parents=True)
    for item in (run / "checkpoints").iterdir():
        (copy / "checkpoints" / item.name).symlink_to(item)
    config = (run / "config.yaml").read_text()
    (copy / "config.yaml").write_text(config)
    scores = {2: (0.5, 0.2), 4: (0.9, 0.9), 6: (0.7, 0.5)}  # (val_loss, val_accuracy)
    (copy / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "val_loss": loss, "val_accuracy": accuracy})
                                                + "\n" for s, (loss, accuracy) in scores.items())
                                        + '{"step": 6, "val_lo')  # a line cut by a crash
    assert choose_checkpoints(copy, best=2) == (["step_2", "step_6"], "the best 2 by val_loss (min)")
    (copy / "config.yaml").write_text(config.replace("metric: val_loss", "metric: val_accuracy")
                                      .replace("mode: min", "mode: max"))
    assert choose_checkpoints(copy, best=2) == (["step_4", "step_6"], "the best 2 by val_accuracy (max)")
    assert choose_checkpoints(copy, last=2) == (["step_4", "step_6"], "the last 2")


def test_floating_tensors_are_averaged_in_their_dtype_and_integer_ones_are_the_newest(tmp_path):
    folders = []
    for step, value in ((1, 1.0), (2, 2.0), (3, 6.0)):
        weights = {"w": torch.full((2,), value), "b": torch.full((2,), value, dtype=torch.bfloat16),
                   "count": torch.tensor(step)}
        folders.append(save_checkpoint(tmp_path, step, weights, {}, {"step": step}, set(), 3, False))
    averaged = average_weights(folders)
    assert torch.equal(averaged["w"], torch.full((2,), 3.0)) and averaged["b"].dtype == torch.bfloat16
    assert torch.equal(averaged["b"], torch.full((2,), 3.0, dtype=torch.bfloat16))
    assert averaged["count"].item() == 3 and averaged["count"].dtype == torch.int64


def test_a_run_with_ema_has_its_moving_averages_averaged(tmp_path):
    run = train(tmp_path, "ema", "train.ema.enabled=true", "train.ema.decay=0.5")
    assert main(["average", str(run), "--last", "2", "--out", str(tmp_path / "avg"), "--threads", "1"]) == 0
    steps = [run / "checkpoints" / f"step_0000000{n}" for n in (4, 6)]
    ema = [load_file(s / "ema.safetensors") for s in steps]
    averaged = read_eval_weights(tmp_path / "avg" / "checkpoints" / "step_00000006")
    assert all(torch.equal(averaged[k], ((ema[0][k].double() + ema[1][k].double()) / 2).float()) for k in averaged)
    assert json.loads((tmp_path / "avg" / "averaged.json").read_text())["ema"] is True


def test_mistakes_are_one_line_and_a_failure_loses_nothing(run, tmp_path, capsys, monkeypatch, cli_error):
    avg = str(tmp_path / "avg")
    err = cli_error(["average", str(run), "--last", "4", "--out", avg])
    assert "keeps 3 checkpoint(s) (step_2, step_4, step_6), fewer than 4" in err and "train.keep_last=4" in err
    assert "at least 2" in cli_error(["average", str(run), "--last", "1", "--out", avg])
    with pytest.raises(SystemExit) as exit:  # argparse's own one line
        main(["average", str(run), "--last", "2", "--best", "2", "--out", avg])
    assert exit.value.code == 2 and "not allowed with" in capsys.readouterr().err
    assert "inside the run folder" in cli_error(["average", str(run), "--last", "2", "--out",
                                                str(run / "avg")])
    assert "no config.yaml" in cli_error(["average", str(tmp_path), "--last", "2", "--out", avg])
    assert not Path(avg).exists()
    assert main(["average", str(run), "--last", "2", "--out", avg, "--threads", "1"]) == 0
    kept, _ = files_of(Path(avg)), capsys.readouterr()
    assert "already holds files" in cli_error(["average", str(run), "--last", "3", "--out", avg])

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("xformer.train.average.evaluate_model", broken)
    assert main(["average", str(run), "--last", "3", "--out", avg, "--overwrite"]) == 1
    assert files_of(Path(avg)) == kept  # the average that was there comes back whole


def test_data_that_moved_is_named_and_given_at_its_new_place(tmp_path, cli_error):
    """The average is scored on the run's data: moved since, it is named with the way on, and given at its new
    place it is checked to be the run's own and recorded in the average's config.yaml."""
    (tmp_path / "t.txt").write_text("to be or not to be, that is the question\n" * 40, encoding="utf-8")
    (tmp_path / "r.yaml").write_text(
        "model: {architecture: decoder, core: {d_model: 16, n_layers: 1, n_heads: 2, d_ff: 32},\n"
        "  tokenizer: {name: text}, head: {name: causal_lm}}\n"
        f"data: {{name: text_lm, args: {{files: {tmp_path / 't.txt'}, tokenizer: char, block_size: 8}}}}\n"
        "train: {steps: 4, batch_size: 4, eval_every: 2}\n", encoding="utf-8")
    run, avg = tmp_path / "run", str(tmp_path / "avg")
    assert main(["train", str(tmp_path / "r.yaml"), "--out", str(run), "--quiet", "--threads", "1"]) == 0
    (tmp_path / "t.txt").rename(tmp_path / "u.txt")
    err = cli_error(["average", str(run), "--last", "2", "--out", avg])
    assert f"the run's data {tmp_path / 't.txt'} (data.args.files) is not there any more" in err, err
    assert f"xformer average {run} --last 2 --out {avg} data.args.files=NEW" in err, err
    assert "new place only" in cli_error(["average", str(run), "--last", "2", "--out", avg,
                                         "data.args.block_size=4"])
    assert not Path(avg).exists()
    assert main(["average", str(run), "--last", "2", "--out", avg, f"data.args.files={tmp_path / 'u.txt'}",
                 "--threads", "1"]) == 0
    assert f"files: {tmp_path / 'u.txt'}" in (Path(avg) / "config.yaml").read_text()
    assert main(["evaluate", avg]) == 0


def test_runs_fine_tuned_from_one_init_from_average_into_a_soup(run, tmp_path, capsys, cli_error):
    """Two seeds fine-tuned from `run`: their best checkpoints averaged (a uniform soup); runs started apart, or of
    another model, are refused in one line naming the ensemble instead."""
    tuned = [train(tmp_path, f"ft{seed}", f"init_from={run}", f"train.seed={seed}", "train.steps=4")
             for seed in (1, 2)]
    soup = tmp_path / "soup"
    assert main(["average", *map(str, tuned), "--out", str(soup), "--threads", "1"]) == 0
    capsys.readouterr()
    best = [json.loads((r / "checkpoints" / "latest.json").read_text())["best"] for r in tuned]
    weights = [load_file(r / "checkpoints" / b / "model.safetensors") for r, b in zip(tuned, best)]
    averaged = read_eval_weights(soup / "checkpoints" / best[0])
    assert all(torch.equal(averaged[k], ((weights[0][k].double() + weights[1][k].double()) / 2).float())
               for k in averaged)
    record = json.loads((soup / "averaged.json").read_text())
    assert record["runs"] == [str(r.resolve()) for r in tuned] and record["chosen"] == "each run's best"
    assert json.loads((soup / "metrics.json").read_text())["steps"] == 4
    out = str(tmp_path / "x")
    err = cli_error(["average", str(run), str(tuned[0]), "--out", out])
    assert "not fine-tuned from the same weights" in err and "none (random)" in err and "xformer evaluate" in err
    other = train(tmp_path, "wide", f"init_from={run}", "model.head.args.dropout=0.5")
    assert "another model.head" in cli_error(["average", str(tuned[0]), str(other), "--out", out])
    assert "one run" in cli_error(["average", *map(str, tuned), "--last", "2", "--out", out])
    assert "several runs" in cli_error(["average", str(run), "--last", "2", "--checkpoint", "last",
                                       "--out", out])
    assert not Path(out).exists()
