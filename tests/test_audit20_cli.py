"""Audit 20 (command line): options a mutation audit found parsed but with no test of their effect.

Each command imports its helper inside ``run()``, so a test replaces the helper on its module, calls
``xformer.cli.main`` in-process and checks what the helper was given (the weights export loads, generate's
sampling settings, predict's default top-k, the config train gets: an override after the options wins, and
--init-from beats the recipe's init_from); where it is cheap the effect itself is checked: sampling past the
model's positions still samples, backtest --step spaces the cutoffs, forecast --h sets the steps of a wide and a
long file, an existing --out / --metrics is replaced only with --overwrite, and tokenizer train's
--no-lowercase and --min-frequency change the vocabulary it learns.
"""
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import xformer.commands.generate as generate_command
import xformer.generation
import xformer.predict
import xformer.train.run
from xformer.cli import main
from xformer.config import ConfigError
from xformer.data.corpus import default_corpus
from xformer.data.vocab import CharVocab, load_vocab
from xformer.forecast import Forecaster

from test_text_lm import _random_char_gpt  # an untrained GPT whose every token depends on the whole context

TASKS = Path(__file__).resolve().parents[1] / "tasks"
PASSAGE = default_corpus()[:300]

TINY = dict(input_len=16, horizon=4, patch_len=8, stride=4, d_model=8, n_layers=1, n_heads=2, epochs=1,
            batch_size=32, device="cpu")
ROWS = 80  # hourly rows of each series


def one_line_error(capsys, *parts: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("xformer: error: ") and "\n" not in err and "Traceback" not in err, err
    for part in parts:
        assert part in err, err
    return err


# ---- train: the config train_run is given ------------------------------------------------------------------------
@pytest.fixture
def trained(monkeypatch):
    """train_run replaced: the (config, run_dir) each `xformer train` hands it."""
    calls = []

    def fake_train_run(config, run_dir, **kwargs):
        calls.append((config, Path(run_dir)))
        return {"steps": config.train.steps}

    monkeypatch.setattr(xformer.train.run, "train_run", fake_train_run)
    return calls


def test_an_override_after_the_options_comes_last_so_its_value_wins(trained, tmp_path, capsys):
    """KEY=VALUE overrides that follow the options are appended to those before them (cli.py): the last value
    of a key wins, as on a command line read left to right (`train R train.steps=5 --out X train.steps=2`
    trains 2 steps)."""
    out = tmp_path / "run"
    assert main(["train", str(TASKS / "reverse.yaml"), "train.steps=5", "--out", str(out), "train.steps=2"]) == 0
    (config, run_dir), = trained
    assert config.train.steps == 2 and run_dir == out
    assert main(["train", str(TASKS / "reverse.yaml"), "train.steps=2", "--out", str(out), "train.steps=5"]) == 0
    assert trained[-1][0].train.steps == 5


def test_init_from_on_the_command_line_beats_the_recipes(trained, tmp_path):
    """--init-from replaces the recipe's init_from (bert_classify.yaml names runs/bert_mlm), not only a
    recipe without one."""
    recipe = TASKS / "bert_classify.yaml"
    assert "init_from: runs/bert_mlm" in recipe.read_text()
    source = f"hf:{tmp_path / 'bert'}"
    assert main(["train", str(recipe), "--init-from", source, "--out", str(tmp_path / "run")]) == 0
    assert trained[-1][0].init_from == source
    assert main(["train", str(recipe), "--out", str(tmp_path / "run")]) == 0  # without it: the recipe's
    assert trained[-1][0].init_from == "runs/bert_mlm"


# ---- export: the checkpoint whose weights are exported -----------------------------------------------------------
def test_export_checkpoint_chooses_the_weights_loaded_not_only_the_label(monkeypatch, tmp_path, capsys):
    """--checkpoint reaches load_run_model (the weights exported), as well as run_checkpoint (the name written in
    export.json); a run that loaded its best weights under the label of another checkpoint would export the wrong
    model quietly."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("{}\n")
    loaded = []

    def fake_load_run_model(run_dir, checkpoint="best"):
        loaded.append(checkpoint)
        raise ConfigError("stopped after loading")  # export writes nothing after a refusal

    monkeypatch.setattr(xformer.train.run, "run_checkpoint", lambda run_dir, checkpoint="best": Path(checkpoint))
    monkeypatch.setattr(xformer.train.run, "load_run_model", fake_load_run_model)
    for asked, expected in (([], "best"), (["--checkpoint", "last"], "last"), (["--checkpoint", "step_2"], "step_2")):
        assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "out"), *asked]) == 2
        one_line_error(capsys, "stopped after loading")
        assert loaded[-1] == expected
    assert not (tmp_path / "out").exists()


# ---- predict: --top-k's default ----------------------------------------------------------------------------------
def test_predict_lists_five_classes_by_default(monkeypatch, capsys):
    """--top-k defaults to 5 (its help says so), and a given value is passed as it is."""
    given = []

    def fake_predict_run(runs, inputs, top_k, batch_size, device, checkpoint="best"):
        given.append(top_k)
        return [], "file,class,probability\n"

    monkeypatch.setattr(xformer.predict, "predict_run", fake_predict_run)
    assert main(["predict", "some_run", "a.png"]) == 0
    assert main(["predict", "some_run", "a.png", "--top-k", "2"]) == 0
    assert given == [5, 2]


# ---- generate: the sampling settings reach generate_text, and sampling slides past the positions -----------------
def test_generate_passes_seed_top_k_top_p_and_temperature_to_the_sampler(monkeypatch, capsys):
    """--seed, --top-k, --top-p and --temperature each reach generate_text (the generator is seeded with --seed),
    and the printed text is the prompt and what generate_text, called with them, samples."""
    vocab = CharVocab.from_text(PASSAGE * 4)
    model = _random_char_gpt(vocab, 32)
    monkeypatch.setattr(generate_command, "load_text_model", lambda run_dir, checkpoint="best": (model, vocab))
    real, calls = xformer.generation.generate_text, []

    def recording(model, vocab, prompts, max_new_tokens, **kwargs):
        calls.append({**kwargs, "seed": kwargs["generator"].initial_seed()})
        return real(model, vocab, prompts, max_new_tokens, **kwargs)

    monkeypatch.setattr(xformer.generation, "generate_text", recording)
    prompt = PASSAGE[:6]
    assert main(["generate", "a_run", "--prompt", prompt, "--max-new-tokens", "12", "--seed", "5", "--top-k", "3",
                 "--top-p", "0.9", "--temperature", "0.5"]) == 0
    (call,) = calls
    assert call["seed"] == 5 and call["top_k"] == 3 and call["top_p"] == 0.9 and call["temperature"] == 0.5
    assert call["do_sample"] is True
    expected = real(model, vocab, prompt, 12, do_sample=True, temperature=0.5, top_k=3, top_p=0.9,
                    generator=torch.Generator().manual_seed(5))
    assert capsys.readouterr().out == prompt + expected + "\n"
    assert main(["generate", "a_run", "--prompt", prompt, "--max-new-tokens", "12"]) == 0  # the defaults
    assert {k: calls[-1][k] for k in ("seed", "top_k", "top_p", "temperature")} == dict(seed=0, top_k=0, top_p=1.0,
                                                                                         temperature=1.0)


def test_sampling_past_the_models_positions_still_samples():
    """Past the model's 32 positions generate_text slides the window (generation/text.py) and must keep sampling:
    60 sampled tokens differ from the greedy ones, differ between seeds, and are reproduced by a seed; top_k=1
    sampling is greedy."""
    vocab = CharVocab.from_text(PASSAGE * 4)
    model = _random_char_gpt(vocab, 32)
    prompt = PASSAGE[:6]
    greedy = xformer.generation.generate_text(model, vocab, prompt, 60, do_sample=False)

    def sampled(seed: int, **kwargs) -> str:
        return xformer.generation.generate_text(model, vocab, prompt, 60, do_sample=True,
                                                generator=torch.Generator().manual_seed(seed), **kwargs)

    first, second = sampled(1), sampled(2)
    assert len(greedy) == len(first) == 60  # 6 + 60 > 32: the window slid
    assert first != greedy and second != greedy and first != second
    assert sampled(1) == first
    assert sampled(1, top_k=1) == greedy


# ---- tokenizer train: --no-lowercase and --min-frequency ---------------------------------------------------------
def test_tokenizer_no_lowercase_keeps_case_and_min_frequency_changes_the_vocabulary(tmp_path, capsys):
    """WordPiece lowercases by default; --no-lowercase keeps the case ('The Cat' stays 'The', 'Cat').
    --min-frequency is the least count of a merged pair: with 1 the words seen once ('zebra quokka') are merged
    into pieces, with the default 2 they stay single characters."""
    corpus = tmp_path / "corpus.txt"
    lines = ["The Cat sat on the Mat", "the cat ate the rat", "A Dog and a Cat", "dogs and cats and rats"] * 3
    corpus.write_text("\n".join(lines + ["zebra quokka"]) + "\n", encoding="utf-8")

    def trained(name: str, *options: str):
        assert main(["tokenizer", "train", str(corpus), "--vocab-size", "60", "--out", str(tmp_path / name),
                     *options]) == 0
        return load_vocab(tmp_path / name)

    default = trained("default")
    assert default.tokens("The Cat") == ["the", "cat"]
    assert default.tokens("zebra quokka") == ["z", "##e", "##b", "##r", "##a", "q", "##u", "##o", "##k", "##k", "##a"]
    assert trained("cased", "--no-lowercase").tokens("The Cat") == ["The", "Cat"]
    once = trained("once", "--min-frequency", "1").tokens("zebra quokka")
    assert once != default.tokens("zebra quokka") and len(once) < 11
    assert trained("twice", "--min-frequency", "2").tokens("zebra quokka") == default.tokens("zebra quokka")


# ---- forecast and backtest on one saved Forecaster ---------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny Forecaster fitted on two hourly series (a, b), saved, and the data as a long and a wide file."""
    folder = tmp_path_factory.mktemp("audit20_cli")
    t = np.arange(ROWS)
    long = pd.concat([pd.DataFrame({"unique_id": key, "ds": pd.date_range("2024-01-01", periods=ROWS, freq="h"),
                                    "y": np.sin(t / 3 + k) + k}) for k, key in enumerate(["a", "b"])],
                     ignore_index=True)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = Forecaster(**TINY).fit(long).save(folder / "run")
    long.to_csv(folder / "long.csv", index=False)
    wide = long.pivot(index="ds", columns="unique_id", values="y").rename_axis(index="date", columns=None)
    wide.reset_index().to_csv(folder / "wide.csv", index=False)
    return {"run": str(run), "long": str(folder / "long.csv"), "wide": str(folder / "wide.csv")}


def test_forecast_h_sets_the_steps_of_a_wide_and_a_long_file(saved, tmp_path, capsys):
    """--h N forecasts N steps after the end: N rows of a wide file, N rows per unique_id of a long one, the first
    N steps of the horizon's forecast (default: the run's horizon, 4)."""
    def forecast(data: str, *extra: str) -> pd.DataFrame:
        out = tmp_path / f"{Path(data).stem}{'_'.join(extra)}.csv"
        assert main(["forecast", saved["run"], "--data", data, "--out", str(out), "--quiet", *extra]) == 0
        return pd.read_csv(out)

    end = pd.Timestamp("2024-01-01") + pd.Timedelta(hours=ROWS - 1)
    wide_full, wide = forecast(saved["wide"]), forecast(saved["wide"], "--h", "2")
    assert len(wide_full) == 4 and len(wide) == 2
    assert list(pd.to_datetime(wide["date"])) == [end + pd.Timedelta(hours=k) for k in (1, 2)]
    np.testing.assert_allclose(wide[["a", "b"]], wide_full[["a", "b"]].head(2), rtol=1e-6)
    long_full, long = forecast(saved["long"]), forecast(saved["long"], "--h", "2")
    assert long_full.groupby("unique_id").size().to_dict() == {"a": 4, "b": 4}
    assert long.groupby("unique_id").size().to_dict() == {"a": 2, "b": 2}
    assert (pd.to_datetime(long["ds"]) > end).all()
    np.testing.assert_allclose(long["y_hat"], long_full.groupby("unique_id").head(2)["y_hat"], rtol=1e-6)


def test_backtest_step_is_the_distance_between_cutoffs(saved, tmp_path, capsys):
    """--windows 3 --step 1: each series' three cutoffs are consecutive hours, the last h (4) steps before its end;
    without --step they are h apart."""
    def cutoffs(*extra: str) -> pd.DataFrame:
        out = tmp_path / f"cv{'_'.join(extra)}.csv"
        assert main(["backtest", saved["run"], "--data", saved["long"], "--windows", "3", "--out", str(out),
                     "--quiet", *extra]) == 0
        cv = pd.read_csv(out, parse_dates=["ds", "cutoff"])
        assert len(cv) == 2 * 3 * 4
        return cv.groupby("unique_id")["cutoff"].unique()

    last = pd.Timestamp("2024-01-01") + pd.Timedelta(hours=ROWS - 1 - 4)
    for key, found in cutoffs("--step", "1").items():
        assert list(found) == [last - pd.Timedelta(hours=k) for k in (2, 1, 0)], key
    for key, found in cutoffs().items():
        assert list(found) == [last - pd.Timedelta(hours=k) for k in (8, 4, 0)], key


def test_forecast_out_is_replaced_only_with_overwrite(saved, tmp_path, capsys):
    """An existing --out is refused in one line (exit 2, "already exists") and left as it was; --overwrite
    replaces it with the forecast."""
    out = tmp_path / "forecast.csv"
    out.write_text("precious\n")
    command = ["forecast", saved["run"], "--data", saved["long"], "--out", str(out), "--quiet"]
    assert main(command) == 2
    one_line_error(capsys, "already exists", "--overwrite")
    assert out.read_text() == "precious\n"
    assert main([*command, "--overwrite"]) == 0
    assert list(pd.read_csv(out).columns) == ["unique_id", "ds", "y_hat"]


@pytest.mark.parametrize("option", ["--out", "--metrics"])
def test_backtest_out_and_metrics_are_replaced_only_with_overwrite(saved, tmp_path, capsys, option):
    """An existing --out or --metrics file of backtest is refused in one line (exit 2, "already exists") and left
    as it was; --overwrite replaces it."""
    old = tmp_path / "old.csv"
    old.write_text("precious\n")
    other = "--metrics" if option == "--out" else "--out"
    command = ["backtest", saved["run"], "--data", saved["long"], "--windows", "1", option, str(old),
               other, str(tmp_path / "new.csv"), "--quiet"]
    assert main(command) == 2
    one_line_error(capsys, f"{option} {old} already exists")
    assert old.read_text() == "precious\n" and not (tmp_path / "new.csv").exists()
    assert main([*command, "--overwrite"]) == 0
    assert old.read_text() != "precious\n" and (tmp_path / "new.csv").is_file()
    assert ("cutoff" in pd.read_csv(old).columns) == (option == "--out")
