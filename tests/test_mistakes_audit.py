"""A user's mistakes mid-workflow (mistakes audit): each is one line and exit status 2, and costs no file.

- an --out under a file (train, average, export) is refused before anything is written;
- a folder of the user's own files (no config.yaml) is never offered to --overwrite, which would refuse it;
- a recipe that is not UTF-8, is empty, or has a YAML error names the problem (and the line);
- a fraction given as text (data.args.val_fraction=abc) names the key;
- a run's records edited by hand (classes.json, data_split.json: not JSON, another shape) name the file;
- a checkpoint, checkpoints/ or config.yaml given where the run folder belongs names the run (and --checkpoint);
- a run given twice to a command that combines runs (evaluate, predict --ensemble, average, forecast) is refused.
"""
from pathlib import Path

import pytest
import yaml

from train_helpers import RECIPE
from xformer.cli import main
from xformer.data.text_common import split_indices
from xformer.errors import ConfigError

TINY = {**RECIPE, "train": {**RECIPE["train"], "steps": 4, "eval_every": 2, "log_every": 2}}
DIGITS = {  # a 1-layer ViT on 8x8 digits: a classification run (classes.json) in about a second
    "model": {"architecture": "encoder", "core": {"d_model": 8, "n_layers": 1, "n_heads": 2, "d_ff": 16},
              "tokenizer": {"name": "image_patches", "args": {"patch_size": 4}},
              "head": {"name": "classification"}},
    "data": {"name": "digits", "args": {"image_size": 8, "val_fraction": 0.1}},
    "train": {"steps": 4, "batch_size": 16, "eval_every": 2, "log_every": 2, "device": "cpu"},
}


def recipe(folder: Path, content: dict = TINY) -> Path:
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(content))
    return path


@pytest.fixture(scope="module")
def image_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("digits")
    assert main(["train", str(recipe(folder, DIGITS)), "--out", str(folder / "run"), "--threads", "1"]) == 0
    return folder / "run"


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_out_under_a_file_is_refused_in_one_line(image_run, tmp_path, cli_error):
    (tmp_path / "notes.txt").write_text("mine")
    under = tmp_path / "notes.txt" / "run"
    cli_error(["train", recipe(tmp_path), "--out", under], "notes.txt is a file", "give")
    cli_error(["average", image_run, "--last", "2", "--out", under], "notes.txt is a file")
    cli_error(["export", image_run, "--format", "timm", "--out", under], "notes.txt is a file")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_folder_of_the_users_files_is_not_offered_to_overwrite(tmp_path, cli_error):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    err = cli_error(["train", recipe(tmp_path), "--out", mine], "already holds files", "no config.yaml",
                    "new folder")
    assert "add --overwrite to replace it" not in err  # it would be refused: the hint must not send them there
    cli_error(["train", recipe(tmp_path), "--out", mine, "--overwrite"], "no config.yaml", "new folder")
    assert files_of(mine) == {"notes.txt": b"keep me"}


def test_a_recipe_that_is_not_utf8_empty_or_broken_yaml_is_one_line(tmp_path, cli_error):
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00model")
    cli_error(["train", binary, "--out", tmp_path / "a"], "binary.yaml", "not UTF-8")
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    cli_error(["train", empty, "--out", tmp_path / "b"], "empty.yaml is empty", "tasks/")
    broken = tmp_path / "broken.yaml"
    broken.write_text("model:\n  architecture: decoder\n  core: {d_model: 16\n")
    cli_error(["train", broken, "--out", tmp_path / "c"], "broken.yaml is not valid YAML",
              "flow mapping at line 3, column 9")
    assert not any((tmp_path / name).exists() for name in "abc")


def test_a_fraction_given_as_text_names_the_key(tmp_path, cli_error):
    (tmp_path / "text.txt").write_text("to be or not to be, that is the question\n" * 40)
    text = {**TINY, "data": {"name": "text_lm", "args": {"files": str(tmp_path / "text.txt"), "block_size": 8}}}
    path = recipe(tmp_path, text)
    cli_error(["train", path, "data.args.val_fraction=abc", "--out", tmp_path / "a"],
              "data.args.val_fraction must be in [0, 1], got 'abc'")
    cli_error(["train", path, "data.args.test_fraction=[0.1]", "--out", tmp_path / "b"], "data.args.test_fraction")
    with pytest.raises(ConfigError, match="data.args.val_fraction must be in"):
        split_indices(10, "0.1", 0.1, 0)


@pytest.mark.parametrize("name", ["classes.json", "data_split.json"])
@pytest.mark.parametrize("text, words", [('{"class_na', "is not valid JSON"), ("[]", "does not hold")])
def test_a_run_record_edited_by_hand_is_one_line(image_run, tmp_path, cli_error, name, text, words):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(image_run, run)
    (run / name).write_text(text)
    kept = files_of(run)
    cli_error(["evaluate", run, "--threads", "1"], f"{run / name} {words}", "restore it")
    cli_error(["train", "--resume", run, "train.steps=5", "--threads", "1"], f"{run / name} {words}")
    assert files_of(run) == kept


def test_a_checkpoint_or_the_config_of_a_run_given_as_the_run_names_the_run(image_run, cli_error):
    step = sorted((image_run / "checkpoints").glob("step_*"))[-1]
    number = int(step.name.split("_")[1])
    for argv in (["evaluate", step], ["predict", step, "x.png"], ["export", step, "--format", "timm", "--out", "x"],
                 ["attention", step]):
        cli_error(argv, f"inside the run {image_run}: give {image_run}, with --checkpoint step_{number}")
    cli_error(["evaluate", image_run / "checkpoints"], f"inside the run {image_run}: give {image_run})")
    cli_error(["train", "--resume", step], f"inside the run {image_run}: give {image_run})")
    cli_error(["evaluate", image_run / "config.yaml"], "is the config of the run", f"xformer evaluate {image_run}")


def test_a_run_given_twice_on_the_command_line_is_one_line(image_run, tmp_path, cli_error):
    twice = "is given twice"
    cli_error(["evaluate", image_run, image_run, "--threads", "1"], twice)
    cli_error(["predict", image_run, "x.png", "--ensemble", f"{image_run}/"], twice, f"(as {image_run})")
    cli_error(["average", image_run, image_run, "--out", tmp_path / "soup"], twice)
    cli_error(["forecast", image_run, image_run, "--data", "x.csv"], twice)
    assert not (tmp_path / "soup").exists()


def test_average_of_a_run_without_checkpoints_says_so(image_run, tmp_path, cli_error):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(image_run, run)
    shutil.rmtree(run / "checkpoints")
    (run / "checkpoints").mkdir()  # a run killed before its first checkpoint
    err = cli_error(["average", run, "--last", "2", "--out", tmp_path / "avg"], "holds no checkpoint yet", "train")
    assert "average at most 0" not in err
    assert not (tmp_path / "avg").exists()


def test_a_key_given_twice_in_a_recipe_is_refused_not_dropped(tmp_path, cli_error):
    """PyYAML keeps the last of two equal keys: a second train: section dropped the first one's settings unseen."""
    twice = tmp_path / "twice.yaml"
    text = yaml.safe_dump(TINY, sort_keys=False)
    twice.write_text(text + "train:\n  steps: 2\n")
    cli_error(["train", twice, "--out", tmp_path / "a"], "twice.yaml: key 'train' is given twice", "keep one")
    twice.write_text(text.replace("  steps: 4\n", "  steps: 4\n  steps: 3\n"))
    cli_error(["train", twice, "--out", tmp_path / "b"], "key 'steps' is given twice")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_export_to_a_model_file_name_says_it_writes_a_folder(image_run, tmp_path, cli_error):
    for name in ("vit.pth", "model.onnx", "model.safetensors"):
        cli_error(["export", image_run, "--format", "timm", "--out", tmp_path / name], "export writes a folder",
                  "give a folder name, e.g.")
    assert not list(tmp_path.iterdir())


def test_overwrite_never_deletes_what_the_new_run_reads(tmp_path, cli_error):
    """--overwrite of a run folder that holds the recipe, the data or the run to fine-tune from deleted them once
    the new run had started (and a run whose data was gone could not be resumed or evaluated)."""
    run = tmp_path / "run"
    assert main(["train", str(recipe(tmp_path)), "--out", str(run), "--threads", "1"]) == 0
    (run / "recipe.yaml").write_text(yaml.safe_dump(TINY))
    (run / "text.txt").write_text("to be or not to be, that is the question\n" * 40)
    kept = files_of(run)
    cli_error(["train", run / "recipe.yaml", "--out", run, "--overwrite"], "the recipe", "lies inside", "move")
    text = {**TINY, "data": {"name": "text_lm", "args": {"files": str(run / "text.txt"), "block_size": 8}}}
    cli_error(["train", recipe(tmp_path, text), "--out", run, "--overwrite"], "data.args.files", "lies inside")
    cli_error(["train", recipe(tmp_path), f"init_from={run}", "--out", run, "--overwrite"], f"init_from {run} is")
    assert files_of(run) == kept


def test_overwrite_of_a_tokenizer_or_report_never_deletes_its_own_input(tmp_path, cli_error):
    tokenizer = tmp_path / "tok"
    assert main(["tokenizer", "train", "--default-corpus", "--char", "--out", str(tokenizer)]) == 0
    (tokenizer / "mine.txt").write_text("my only copy of this text\n")
    kept = files_of(tokenizer)
    cli_error(["tokenizer", "train", tokenizer / "mine.txt", "--char", "--out", tokenizer, "--overwrite"],
              "mine.txt lies inside", "--overwrite would replace", "move it out")
    assert files_of(tokenizer) == kept
    report = tmp_path / "report"
    report.mkdir()
    (report / "compare.json").write_text("{}")
    (report / "mine.txt").write_text("to be or not to be, that is the question\n" * 40)
    kept = files_of(report)
    cli_error(["compare", "--domains", "text", "--steps", "2", "--text-data", report / "mine.txt", "--out", report,
               "--overwrite"], "--text-data", "lies inside")
    assert files_of(report) == kept
