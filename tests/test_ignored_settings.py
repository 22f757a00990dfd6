"""Settings a user gives that the data would not read: each is refused in one line naming the conflict and the fix
(a run trained for an hour without them is a lost run), while the same value given redundantly, or the setting left
out, still works. Tiny data throughout."""
import importlib.util
from pathlib import Path

import pytest

from xformer.cli import main
from xformer.config import ConfigError
from xformer.data.registry import build_data
from xformer.data.series import csv_series
from xformer.data.text import text_lm
from xformer.data.text_tasks import text_classification, text_mlm, text_seq2seq
from xformer.train.config import load_experiment

ROOT = Path(__file__).resolve().parents[1]
ETT = ROOT.parent / "shared" / "data" / "ETTh1.csv"
WORDS = "the king said that the queen would come to the castle before night and all the lords rode out".split()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A text of short paragraphs, a lowercasing WordPiece vocabulary and a character vocabulary saved from it."""
    folder = tmp_path_factory.mktemp("text")
    lines = [" ".join(WORDS[(i + k) % len(WORDS)] for k in range(10)).capitalize() + "." for i in range(120)]
    text = "\n\n".join("\n".join(lines[i:i + 3]) for i in range(0, len(lines), 3)) + "\n"
    (folder / "a.txt").write_text(text, encoding="utf-8")
    for argv in (["--vocab-size", "80", "--min-frequency", "1", "--out", folder / "wp"], ["--char", "--out",
                                                                                         folder / "ch"]):
        assert main(["tokenizer", "train", str(folder / "a.txt"), *map(str, argv)]) == 0
    return folder


def size_of(folder: Path) -> int:
    from xformer.data.vocab import load_vocab

    return load_vocab(folder).vocab_size


# ---------------------------------------------------------------- a saved vocabulary and WordPiece's settings


@pytest.mark.parametrize("given, words", [
    ({"vocab_size": 5000}, ["vocab_size=5000", "pieces", "leave vocab_size out", "tokenizer=wordpiece"]),
    ({"lowercase": False}, ["lowercase=False", "lowercases", "leave lowercase out"]),
    ({"min_frequency": 1}, ["min_frequency=1", "leave min_frequency out"]),
])
def test_a_saved_wordpiece_vocabulary_refuses_other_learning_settings(corpus, given, words):
    """The saved vocabulary was read and vocab_size / lowercase / min_frequency silently dropped."""
    with pytest.raises(ConfigError) as e:
        text_lm(files=str(corpus / "a.txt"), tokenizer=str(corpus / "wp"), block_size=8, **given)
    assert all(w in str(e.value) for w in words), str(e.value)
    assert str(corpus / "wp") in str(e.value)


def test_a_saved_vocabulary_takes_its_own_settings_given_again(corpus):
    """Redundant and equal: its size and its lowercasing, as a copied recipe repeats them."""
    wp = str(corpus / "wp")
    data = text_lm(files=str(corpus / "a.txt"), tokenizer=wp, vocab_size=size_of(corpus / "wp"), lowercase=True,
                   block_size=8)
    assert data.model_args["tokenizer"]["vocab_size"] == size_of(corpus / "wp")
    assert text_lm(files=str(corpus / "a.txt"), tokenizer=wp, block_size=8).train is not None


@pytest.mark.parametrize("tokenizer", ["char", "ch"])
def test_a_character_vocabulary_refuses_wordpiece_settings(corpus, tokenizer):
    """tokenizer=char (text_lm's default) took every character whatever vocab_size, lowercase or min_frequency said."""
    folder = str(corpus / tokenizer) if tokenizer != "char" else "char"
    base = {"files": str(corpus / "a.txt"), "tokenizer": folder, "block_size": 8}
    for given, word in (({"vocab_size": 500}, "vocab_size=500"), ({"lowercase": True}, "lowercase=True"),
                        ({"min_frequency": 3}, "min_frequency=3")):
        with pytest.raises(ConfigError, match=word) as e:
            text_lm(**base, **given)
        assert "character" in str(e.value) and "out" in str(e.value)
    n = text_lm(**base).model_args["tokenizer"]["vocab_size"]
    assert text_lm(**base, vocab_size=n, lowercase=False).model_args["tokenizer"]["vocab_size"] == n


@pytest.mark.parametrize("dataset, args", [
    (text_mlm, {"max_length": 16, "line_by_line": True}),
    (text_classification, {"max_length": 16}),
    (text_seq2seq, {"max_length": 16}),
])
def test_the_other_text_datasets_refuse_them_too(corpus, dataset, args):
    files = {} if dataset is not text_mlm else {"files": str(corpus / "a.txt")}
    with pytest.raises(ConfigError, match="vocab_size=5000"):
        dataset(**files, **args, tokenizer=str(corpus / "wp"), vocab_size=5000)
    with pytest.raises(ConfigError, match="lowercase=False"):
        dataset(**files, **args, tokenizer=str(corpus / "wp"), lowercase=False)


def test_the_cli_refuses_in_one_line_and_a_run_is_still_evaluated(corpus, tmp_path, cli_error):
    """Through `xformer train`: exit 2, one line. A run learned with vocab_size 150 (it got fewer pieces) and
    min_frequency 1 is still evaluated and averaged with its own saved vocabulary, at its data's place or a new one."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {architecture: decoder, core: {d_model: 16, n_layers: 1, n_heads: 2, d_ff: 32},\n"
                      "  tokenizer: {name: text}, head: {name: causal_lm}}\n"
                      f"data: {{name: text_lm, args: {{files: {corpus / 'a.txt'}, tokenizer: wordpiece,"
                      " vocab_size: 150, min_frequency: 1, block_size: 8}}\n"
                      "train: {steps: 2, batch_size: 4, eval_every: 1}\n", encoding="utf-8")
    wp = corpus / "wp"
    cli_error(["train", recipe, "--out", tmp_path / "bad", f"data.args.tokenizer={wp}", "data.args.vocab_size=5000"],
              "data.args.vocab_size=5000", "leave vocab_size out")
    own = tmp_path / "own.yaml"  # a recipe of its own that gives the folder with a setting it does not have
    own.write_text(recipe.read_text(encoding="utf-8").replace("tokenizer: wordpiece", f"tokenizer: {wp}"),
                   encoding="utf-8")
    cli_error(["train", own, "--out", tmp_path / "bad"], "data.args.vocab_size=150", "leave vocab_size out")
    assert not (tmp_path / "bad").exists()
    # the command line's saved vocabulary replaces the recipe's WordPiece and the settings that learned it, as
    # xformer's own advice for an ensemble's members has it: xformer train RECIPE data.args.tokenizer=RUN/tokenizer
    assert main(["train", str(recipe), "--out", str(tmp_path / "reused"), "--quiet", f"data.args.tokenizer={wp}"]) == 0
    assert size_of(tmp_path / "reused" / "tokenizer") == size_of(wp)
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--out", str(run), "--quiet"]) == 0
    assert size_of(run / "tokenizer") < 150
    moved = tmp_path / "moved.txt"
    moved.write_text((corpus / "a.txt").read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["evaluate", str(run)]) == 0
    assert main(["evaluate", str(run), f"data.args.files={moved}"]) == 0
    assert main(["average", str(run), "--out", str(tmp_path / "avg"), "--last", "2"]) == 0
    assert main(["average", str(run), f"data.args.files={moved}", "--out", str(tmp_path / "avg2"), "--last", "2"]) == 0


def test_a_command_lines_saved_vocabulary_replaces_the_recipes_learning_settings(corpus):
    """tasks/wordpiece_gpt.yaml spells out vocab_size, min_frequency and lowercase for its WordPiece; the command
    line's data.args.tokenizer=DIR replaces them with it, while those the command line gives itself are checked."""
    recipe = ROOT / "tasks" / "wordpiece_gpt.yaml"
    args = load_experiment(recipe, [f"data.args.tokenizer={corpus / 'wp'}"]).data.args
    assert args["tokenizer"] == str(corpus / "wp") and not {"vocab_size", "min_frequency", "lowercase"} & set(args)
    args = load_experiment(recipe, [f"data.args.tokenizer={corpus / 'wp'}", "data.args.lowercase=false"]).data.args
    assert args["lowercase"] is False and "vocab_size" not in args
    assert load_experiment(recipe, ["data.args.tokenizer=wordpiece"]).data.args["vocab_size"] == 4000


def test_prepare_with_a_saved_vocabulary_refuses_a_vocab_size(corpus, tmp_path):
    """data/wordpiece_corpus/prepare.py --tokenizer DIR --vocab-size N wrote ids of DIR's vocabulary, N unused."""
    spec = importlib.util.spec_from_file_location("prepare_wp", ROOT / "data" / "wordpiece_corpus" / "prepare.py")
    prepare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prepare)
    with pytest.raises(ConfigError, match="vocab_size=5000"):
        prepare.main([str(corpus / "a.txt"), "--out", str(tmp_path / "p1"), "--tokenizer", str(corpus / "wp"),
                      "--vocab-size", "5000"])
    meta = prepare.main([str(corpus / "a.txt"), "--out", str(tmp_path / "p2"), "--tokenizer", str(corpus / "wp")])
    assert meta["vocab_size"] == size_of(corpus / "wp")


def test_tokenizer_train_char_refuses_wordpiece_options(corpus, tmp_path, cli_error):
    """`xformer tokenizer train --char --vocab-size 50` saved every character, 50 unused."""
    text = str(corpus / "a.txt")
    for option in (["--vocab-size", "50"], ["--no-lowercase"], ["--min-frequency", "3"]):
        cli_error(["tokenizer", "train", text, "--char", *option, "--out", tmp_path / "c"], option[0], "--char")
    assert main(["tokenizer", "train", text, "--char", "--out", str(tmp_path / "c")]) == 0
    assert main(["tokenizer", "train", text, "--vocab-size", "60", "--out", str(tmp_path / "w")]) == 0


# ---------------------------------------------------------------- arguments one branch of a dataset reads


def test_text_mlm_refuses_document_chars_with_line_by_line(corpus):
    with pytest.raises(ConfigError, match="document_chars=500.*line_by_line"):
        text_mlm(files=str(corpus / "a.txt"), line_by_line=True, document_chars=500, vocab_size=80, max_length=16)
    assert text_mlm(files=str(corpus / "a.txt"), document_chars=500, vocab_size=80, max_length=16).train is not None
    assert text_mlm(files=str(corpus / "a.txt"), line_by_line=True, vocab_size=80, max_length=16).train is not None


def test_text_tasks_refuse_the_default_tasks_settings_with_files(corpus, tmp_path):
    """min_words / max_words choose the default task's sentences; with files they filtered nothing."""
    table = tmp_path / "t.csv"
    table.write_text("text,label\n" + "".join(f"{'a fine' if i % 2 else 'a dull'} film {i},{i % 2}\n"
                                              for i in range(40)), encoding="utf-8")
    with pytest.raises(ConfigError, match="max_words=5.*files"):
        text_classification(files=str(table), max_words=5, vocab_size=60, min_frequency=1, max_length=16)
    assert text_classification(files=str(table), vocab_size=60, min_frequency=1, max_length=16).train is not None
    pairs = tmp_path / "p.tsv"
    pairs.write_text("".join(f"a b {i}\t{i} b a\n" for i in range(30)), encoding="utf-8")
    with pytest.raises(ConfigError, match="min_words=2.*files"):
        text_seq2seq(files=str(pairs), min_words=2, vocab_size=60, min_frequency=1, max_length=16)
    assert text_seq2seq(files=str(pairs), vocab_size=60, min_frequency=1, max_length=16).train is not None
    # the recipe's own advice, "Your own pairs: data.args.files=[pairs.tsv]", is followed
    config = load_experiment(ROOT / "tasks" / "seq2seq_text.yaml", [f"data.args.files=[{pairs}]"])
    assert build_data(config.data.name, {**config.data.args, "min_frequency": 1}).train is not None


def test_text_classification_refuses_columns_without_files():
    """text_column / label_column name columns of data.args.files; the default task has none to read."""
    with pytest.raises(ConfigError, match="text_column"):
        text_classification(text_column="sentence", max_length=16)
    with pytest.raises(ConfigError, match="label_column"):
        build_data("text_classification", {"label_column": "y"})


def test_csv_series_refuses_ratios_with_split_ett():
    """split='ett' cuts 12/4/4 months whatever train_ratio / test_ratio say."""
    with pytest.raises(ConfigError, match="train_ratio=0.5.*split='ett'"):
        csv_series(str(ETT), split="ett", train_ratio=0.5, input_len=24, horizon=12)
    with pytest.raises(ConfigError, match="test_ratio=0.1.*split='ett'"):
        csv_series(str(ETT), split="ett", test_ratio=0.1, input_len=24, horizon=12)
    ett = csv_series(str(ETT), split="ett", input_len=24, horizon=12)
    assert len(ett.train) == len(build_data("ett", {"path": str(ETT), "input_len": 24, "horizon": 12}).train)
    assert len(csv_series(str(ETT), train_ratio=0.5, test_ratio=0.25, input_len=24, horizon=12).train) > 0


def test_csv_series_refuses_rows_per_day_with_split_ratio():
    """rows_per_day sizes the months of split='ett'; split='ratio' read it nowhere."""
    with pytest.raises(ConfigError, match="rows_per_day=48.*split='ratio'"):
        csv_series(rows_per_day=48, input_len=24, horizon=12)
    assert csv_series(input_len=24, horizon=12).train is not None
    assert csv_series(str(ETT), split="ett", rows_per_day=24, input_len=24, horizon=12).train is not None


# ---------------------------------------------------------------- a schedule's and an optimizer's settings


COPY = ("model: {architecture: decoder, core: {d_model: 16, n_layers: 1, n_heads: 2, d_ff: 32}, tokenizer: {name: text},"
        "\n  head: {name: causal_lm}}\ndata: {name: copy_digits, args: {n_train: 64, n_val: 16, n_test: 16, length: 4}}\n"
        "train: {steps: 2, batch_size: 8, eval_every: 2, schedule: epoch_decay, decay_after_epochs: 1, gamma: 0.5}\n")


@pytest.mark.parametrize("overrides, words", [
    (["train.schedule=cosine", "train.gamma=0.5"], ["train.gamma=0.5", "schedule=cosine", "step or epoch_decay"]),
    (["train.schedule=cosine", "train.step_size=500"], ["train.step_size=500", "train.schedule=step"]),
    (["train.schedule=constant", "train.min_lr=0.0001"], ["train.min_lr=0.0001", "cosine or linear"]),
    (["train.optimizer=sgd", "train.betas=[0.9,0.95]"], ["train.betas=[0.9, 0.95]", "SGD has no betas"]),
])
def test_a_setting_the_schedule_or_optimizer_never_reads_is_refused(tmp_path, cli_error, overrides, words):
    """train.gamma=0.5 under the cosine schedule trained at a rate nobody asked for; AdamW's betas with SGD."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text(COPY, encoding="utf-8")
    cli_error(["train", recipe, "--out", tmp_path / "run", *overrides], *words)
    assert not (tmp_path / "run").exists()


def test_a_command_lines_schedule_or_optimizer_replaces_the_recipes_settings_for_the_old_one(tmp_path):
    """The recipe's epoch_decay settings go with its schedule when the command line gives another; its own given
    settings are kept; a recipe's run resumes (config.yaml holds every setting, at its default where unread)."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text(COPY, encoding="utf-8")
    train = load_experiment(recipe, ["train.schedule=cosine"]).train
    assert (train.schedule, train.gamma, train.decay_after_epochs) == ("cosine", 0.9, 2)
    assert load_experiment(recipe, ["train.schedule=step"]).train.gamma == 0.5  # step reads gamma: kept
    assert main(["train", str(recipe), "--out", str(tmp_path / "a"), "--quiet", "train.schedule=cosine"]) == 0
    assert main(["train", "--resume", str(tmp_path / "a"), "--quiet", "train.steps=3"]) == 0
    betas = tmp_path / "betas.yaml"  # as tasks/char_gpt_shakespeare.yaml gives AdamW's
    betas.write_text(COPY.replace("gamma: 0.5}", "gamma: 0.5, betas: [0.9, 0.99]}"), encoding="utf-8")
    assert list(load_experiment(betas, ["train.optimizer=sgd"]).train.betas) == [0.9, 0.999]
    assert list(load_experiment(betas, []).train.betas) == [0.9, 0.99]
    assert main(["train", str(betas), "--out", str(tmp_path / "b"), "--quiet", "train.optimizer=sgd"]) == 0


def test_a_run_recorded_with_settings_then_unread_is_still_evaluated_and_resumed(corpus, tmp_path, monkeypatch,
                                                                                  cli_error):
    """A run trained before these refusals may record them (train.gamma under cosine, vocab_size beside
    characters): it was trained without them, and is evaluated and resumed so, where a new run is refused."""
    import xformer.data.vocab
    import xformer.train.run_checks

    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {architecture: decoder, core: {d_model: 16, n_layers: 1, n_heads: 2, d_ff: 32},\n"
                      "  tokenizer: {name: text}, head: {name: causal_lm}}\n"
                      f"data: {{name: text_lm, args: {{files: {corpus / 'a.txt'}, block_size: 8, vocab_size: 500,"
                      " lowercase: true}}\ntrain: {steps: 2, batch_size: 4, eval_every: 1, gamma: 0.5}\n",
                      encoding="utf-8")
    run = tmp_path / "run"
    with monkeypatch.context() as before:  # as xformer trained it then: the settings unread and unchecked
        before.setattr(xformer.data.vocab, "check_learning_args", lambda *a, **k: None)
        before.setattr(xformer.train.run_checks, "check_read_settings", lambda *a, **k: None)
        assert main(["train", str(recipe), "--out", str(run), "--quiet"]) == 0
    assert main(["evaluate", str(run)]) == 0
    assert main(["train", "--resume", str(run), "--quiet", "train.steps=3"]) == 0
    cli_error(["train", recipe, "--out", tmp_path / "new"], "train.gamma=0.5")
    cli_error(["train", recipe, "--out", tmp_path / "new", "train.gamma=0.9"], "data.args.vocab_size=500")
    assert not (tmp_path / "new").exists()


def test_a_series_run_recorded_with_ratios_under_split_ett_is_still_evaluated(tmp_path, monkeypatch):
    """The branch settings too (data/unread.py): csv_series' split ett with train_ratio, recorded by an older run."""
    import xformer.data.series

    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {baseline: {name: dlinear}}\n"
                      f"data: {{name: csv_series, args: {{path: {ETT}, split: ett, train_ratio: 0.5, input_len: 24, "
                      "horizon: 12}}\ntrain: {steps: 2, batch_size: 8, eval_every: 2, eval_batches: 2}\n",
                      encoding="utf-8")
    real = xformer.data.series.csv_series
    with monkeypatch.context() as before:  # as xformer trained it then: train_ratio unread and unchecked
        before.setitem(xformer.data.registry.DATASETS, "csv_series",
                       lambda train_ratio=None, **args: real(**args))
        assert main(["train", str(recipe), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert main(["evaluate", str(tmp_path / "run")]) == 0
    assert main(["train", "--resume", str(tmp_path / "run"), "--quiet", "train.steps=3"]) == 0


def test_an_old_runs_unread_setting_does_not_stop_averaging_it_at_its_datas_new_place(tmp_path, monkeypatch):
    """`xformer average RUN data.args.path=NEW` built the moved data from config.yaml's args as they stand, so an
    old run recording train_ratio under split ett was refused there, while evaluate and resume accepted it."""
    import shutil

    import xformer.data.series

    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {baseline: {name: dlinear}}\n"
                      f"data: {{name: csv_series, args: {{path: {ETT}, split: ett, train_ratio: 0.5, input_len: 24, "
                      "horizon: 12}}\ntrain: {steps: 2, batch_size: 8, eval_every: 1, eval_batches: 2}\n",
                      encoding="utf-8")
    run = tmp_path / "run"
    real = xformer.data.series.csv_series
    with monkeypatch.context() as before:  # as xformer trained it then: train_ratio unread and unchecked
        before.setitem(xformer.data.registry.DATASETS, "csv_series",
                       lambda train_ratio=None, **args: real(**args))
        assert main(["train", str(recipe), "--out", str(run), "--quiet"]) == 0
    moved = tmp_path / "moved.csv"
    shutil.copy(ETT, moved)
    assert main(["evaluate", str(run), f"data.args.path={moved}"]) == 0
    assert main(["average", str(run), f"data.args.path={moved}", "--out", str(tmp_path / "avg"), "--last", "2"]) == 0
    assert main(["evaluate", str(tmp_path / "avg")]) == 0


def write_ucr(path: Path, n_per_class: int = 20, length: int = 16) -> Path:
    """A UCR-archive .tsv of two classes (the label, then the values): a rising and a falling ramp with noise."""
    import numpy as np

    rng = np.random.default_rng(0)
    ramp = np.linspace(-1, 1, length)
    rows = [[label, *(ramp * (1 if label == 1 else -1) + 0.1 * rng.standard_normal(length))]
            for label in (1, 2) for _ in range(n_per_class)]
    path.write_text("".join("\t".join(f"{v:g}" for v in row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_series_classification_refuses_n_per_class_with_a_path(tmp_path):
    """n_per_class sizes the generated Synthetic Control set; with a path it was silently unread."""
    from xformer.data.series_classification import series_classification

    table = write_ucr(tmp_path / "w.tsv")
    with pytest.raises(ConfigError, match="n_per_class=50.*path") as e:
        series_classification(path=str(table), n_per_class=50)
    assert "leave n_per_class out" in str(e.value)
    assert len(series_classification(path=str(table)).test) == 8
    assert len(series_classification(n_per_class=20).test) == 24  # 6 classes x 20, 20% held out
    assert len(series_classification().test) == 120  # the default: 100 a class


def test_csv_series_refuses_a_scaler_with_scale_false():
    """scale: false standardises nothing, so the statistics of data.args.scaler were silently unread."""
    stats = {"mean": [0.0, 0.0, 0.0], "scale": [2.0, 2.0, 2.0]}
    with pytest.raises(ConfigError, match="scaler.*scale=False") as e:
        csv_series(scale=False, scaler=stats, input_len=24, horizon=12)
    assert "leave scaler out" in str(e.value)
    assert csv_series(scaler=stats, input_len=24, horizon=12).scaler.scale_.tolist() == [2.0, 2.0, 2.0]
    assert csv_series(scale=False, input_len=24, horizon=12).scaler is None


@pytest.mark.parametrize("dataset, args", [
    ("series_classification", "{path: TABLE, n_per_class: 50}"),
    ("csv_series", "{scale: false, scaler: {mean: [0, 0, 0], scale: [2, 2, 2]}, input_len: 24, horizon: 12}"),
])
def test_an_old_series_run_recording_an_unread_setting_is_still_evaluated_and_resumed(tmp_path, monkeypatch,
                                                                                       dataset, args):
    """data/unread.py's rules for n_per_class beside a path and a scaler with scale false: a run recorded with one
    before the refusal was trained without it, and is evaluated and resumed so."""
    import xformer.data.registry

    table = write_ucr(tmp_path / "w.tsv")
    recipe = tmp_path / "r.yaml"
    model = "{baseline: {name: dlinear}}" if dataset == "csv_series" else "{baseline: {name: fcn}}"
    recipe.write_text(f"model: {model}\ndata: {{name: {dataset}, args: {args.replace('TABLE', str(table))}}}\n"
                      "train: {steps: 2, batch_size: 8, eval_every: 1, eval_batches: 2}\n", encoding="utf-8")
    unread = "n_per_class" if dataset == "series_classification" else "scaler"
    real = xformer.data.registry.DATASETS[dataset]
    with monkeypatch.context() as before:  # as xformer trained it then: the setting unread and unchecked
        before.setitem(xformer.data.registry.DATASETS, dataset, lambda **a: real(**{k: v for k, v in a.items()
                                                                                   if k != unread}))
        assert main(["train", str(recipe), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert main(["evaluate", str(tmp_path / "run")]) == 0
    assert main(["train", "--resume", str(tmp_path / "run"), "--quiet", "train.steps=3"]) == 0
    assert main(["train", str(recipe), "--out", str(tmp_path / "new"), "--quiet"]) == 2


def test_evaluate_refuses_an_unread_setting_given_on_its_command_line(tmp_path, cli_error):
    """An old run's recorded unread settings are dropped for evaluate; one the command line gives is the user's
    own and is refused as by a new run (`xformer evaluate RUN data.args.scaler=...` of a scale false run was
    silently scored unscaled)."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {baseline: {name: dlinear}}\ndata: {name: csv_series, args: {scale: false, input_len: 24,"
                      " horizon: 12}}\ntrain: {steps: 2, batch_size: 8, eval_every: 2, eval_batches: 2}\n",
                      encoding="utf-8")
    assert main(["train", str(recipe), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    cli_error(["evaluate", tmp_path / "run", "data.args.scaler={mean: [0, 0, 0], scale: [2, 2, 2]}"],
              "scale=False never standardises", "leave scaler out")
    assert main(["evaluate", str(tmp_path / "run")]) == 0
