"""`xformer compare`: a tiny run of all three domains writes every table, plot and figure."""
import json
import math
from pathlib import Path

import pytest

from xformer.cli import main
from xformer.compare import CompareConfig, entries, transformer_flops
from xformer.data.series import synthetic_frame

TINY = ["--steps", "6", "--d-model", "16", "--layers", "1", "--heads", "2", "--batch-size", "8", "--quiet"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    text = root / "tiny.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 300)
    series = root / "tiny.csv"
    synthetic_frame(n_rows=600, n_channels=2).to_csv(series, index=False)
    out = root / "report"
    # batches of 32 (compare's default), not 8: seq2seq evaluates 512 validation examples by greedy decoding after
    # each of the 6 steps, a third of the fixture's time in batches of 8; nothing below depends on the batch size
    options = [*TINY[:TINY.index("--batch-size")], "--batch-size", "32", *TINY[TINY.index("--batch-size") + 2:]]
    assert main(["compare", *options, "--domains", "text,images,series,seq2seq", "--text-data", str(text),
                 "--series-data", str(series), "--out", str(out)]) == 0
    return out


def test_report_holds_every_table_plot_and_figure(report):
    results = json.loads((report / "results.json").read_text())
    names = {d: [m["name"] for m in info["models"]] for d, info in results["domains"].items()}
    assert names == {"text": ["GPT (decoder)", "n-gram MLP LM (Bengio 2003)", "RNN LM", "LSTM LM"],
                     "images": ["ViT (encoder)", "MLP", "CNN"],
                     "series": ["PatchTST (encoder)", "DLinear", "RLinear", "LSTM forecaster", "last value",
                                "seasonal naive (24)"],
                     "seq2seq": ["Transformer (encoder-decoder)", "LSTM encoder-decoder + Bahdanau attention"]}
    for domain, info in results["domains"].items():
        for row in info["models"]:
            assert math.isfinite(row["metric"]), (domain, row["name"])
            assert row["parameters"] >= 0 and row["forward_flops"] >= 0
            if row["kind"] == "transformer":
                assert row["attention_flops"] > 0 and row["feed_forward_flops"] > 0
                assert row["examples_per_second"] > 0 and row["steps"] == 6
    series = results["domains"]["series"]["models"]
    assert series[0]["tokens_per_example"] == 2 * 12  # 2 channels x (96 - 16) // 8 + 2 patches
    assert results["domains"]["images"]["models"][0]["tokens_per_example"] == 17  # 4x4 patches + [CLS]
    md = (report / "report.md").read_text()
    for title in ("## The same core in each domain", "## text", "## images", "## series", "## seq2seq", "## Plots"):
        assert title in md
    assert md.count("| GPT (decoder) |") == 1 and "| seasonal naive (24) |" in md
    html = (report / "report.html").read_text()
    # data, core, one per domain, and the attention measures of text, images and series
    assert html.count("<table>") == 9 and html.count("<img ") == 5
    for plot in ("learning_curves.png", "attention.png", "positions.png", "attention_measures.png", "forecast.png"):
        assert (report / plot).stat().st_size > 5_000, plot
        assert plot in results["plots"]
    assert "budgets.png" not in results["plots"]  # one budget: nothing to plot against FLOPs
    assert results["domains"]["text"]["metric"] == "test_bits_per_character"  # text is scored on test too
    assert {info["split"] for info in results["domains"].values()} == {"test"}


def test_flops_formula_and_the_shared_core():
    cfg = CompareConfig(d_model=32, n_layers=3, n_heads=4, d_ff=64)
    flops = transformer_flops({"d_model": 32, "n_layers": 3, "d_ff": 64}, sequences=2, n_tokens=10)
    assert flops == {"attention": 3 * 2 * (8 * 10 * 32 * 32 + 4 * 100 * 32), "scores": 3 * 2 * 4 * 100 * 32,
                     "feed_forward": 3 * 2 * 4 * 10 * 32 * 64}
    # encoder-decoder, source 6, target 10: encoder self, decoder self and cross attention
    flops = transformer_flops({"d_model": 8, "n_layers": 1, "d_ff": 16}, sequences=1, n_tokens=10, source_tokens=6)
    assert flops["attention"] == (8 * 6 * 64 + 4 * 36 * 8) + (8 * 10 * 64 + 4 * 100 * 8) + (
        4 * 10 * 64 + 4 * 6 * 64 + 4 * 10 * 6 * 8)
    assert flops["feed_forward"] == 4 * 16 * 8 * 16
    cores = [e.experiment["model"]["core"] for e in entries(cfg) if e.kind == "transformer"]
    assert len(cores) == 3 and all(core == cores[0] for core in cores)  # one core configuration, three domains
    assert [e.domain for e in entries(CompareConfig(domains=["seq2seq"]))] == ["seq2seq", "seq2seq"]


def test_bad_options_are_one_line_errors(tmp_path, capsys):
    assert main(["compare", "--domains", "text,audio", "--out", str(tmp_path / "x")]) == 2
    assert "unknown domain(s) ['audio']" in capsys.readouterr().err
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert main(["compare", "--out", str(tmp_path / "mine")]) == 2
    assert "mine already holds files" in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert main(["compare", "--series-data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "y")]) == 2
    assert "data file not found" in capsys.readouterr().err
    assert main(["compare", "--budgets", "250,x", "--out", str(tmp_path / "z")]) == 2
    assert "--budgets takes distinct positive numbers of steps, whole" in capsys.readouterr().err
    assert main(["compare", "--budgets", "100,100", "--out", str(tmp_path / "z")]) == 2
    assert "distinct positive numbers" in capsys.readouterr().err
    assert main(["compare", "--image-data", str(tmp_path / "nope"), "--out", str(tmp_path / "z")]) == 2
    assert "--image-data" in capsys.readouterr().err
    assert not (tmp_path / "z").exists()


def test_overwrite_replaces_an_old_report_whole(tmp_path, capsys):
    old = tmp_path / "report"
    old.mkdir()
    (old / "stale_plot.png").write_bytes(b"an old plot")
    assert main(["compare", *TINY, "--domains", "images", "--out", str(old), "--overwrite"]) == 2
    assert "no compare.json" in capsys.readouterr().err  # not a report: the user's files are never replaced
    assert [p.name for p in old.iterdir()] == ["stale_plot.png"]
    (old / "compare.json").write_text("{}")  # now it is an (old) report
    assert main(["compare", *TINY, "--domains", "images", "--out", str(old), "--overwrite"]) == 0
    assert (old / "results.json").is_file() and not (old / "stale_plot.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # the old one is not kept aside


def test_the_seed_makes_it_reproducible(tmp_path):
    runs = []
    for out in ("a", "b"):
        assert main(["compare", *TINY, "--domains", "images", "--out", str(tmp_path / out)]) == 0
        results = json.loads((tmp_path / out / "results.json").read_text())
        runs.append([(m["name"], m["metrics"]) for m in results["domains"]["images"]["models"]])
    for (name, first), (_, second) in zip(*runs):
        assert {k: v for k, v in first.items() if "seconds" not in k} == \
            {k: v for k, v in second.items() if "seconds" not in k}, name


def test_a_stopped_compare_resumes_without_training_its_finished_runs(tmp_path, monkeypatch, capsys):
    """Ctrl-C during the second of three runs: --resume trains the second again (its folder part-written)
    and the third, reads the first back, and ends with the report an uninterrupted compare writes."""
    import xformer.train.run as train_module

    real, trained = train_module.train_run, []

    def stopped_in_the_second(config, run_dir, *args, **kwargs):
        if len(trained) == 1:
            Path(run_dir).mkdir(parents=True)
            (Path(run_dir) / "config.yaml").write_text("a run stopped before its first checkpoint\n")
            raise KeyboardInterrupt
        trained.append(Path(run_dir).name)
        return real(config, run_dir, *args, **kwargs)

    out, options = tmp_path / "stopped", [*TINY, "--domains", "images", "--seed", "3"]
    monkeypatch.setattr(train_module, "train_run", stopped_in_the_second)
    capsys.readouterr()
    assert main(["compare", *options, "--out", str(out)]) == 130
    assert f"continue it with xformer compare --resume {out}" in capsys.readouterr().err
    first = next(out.glob("runs/images/*/steps6_seed3/compare_run.json")).parent
    before = (first / "metrics.json").read_bytes(), (first / "metrics.json").stat().st_mtime_ns
    assert not (out / "results.json").exists()
    assert main(["compare", *options, "--out", str(out)]) == 2  # the same command again: the way on is named
    assert f"continue a stopped compare with --resume {out}" in capsys.readouterr().err

    trained.clear()
    monkeypatch.setattr(train_module, "train_run", lambda config, run_dir, *a, **k: (
        trained.append(Path(run_dir)), real(config, run_dir, *a, **k))[1])
    assert main(["compare", "--resume", str(out), "--quiet"]) == 0
    assert len(trained) == 2 and first not in trained
    assert ((first / "metrics.json").read_bytes(), (first / "metrics.json").stat().st_mtime_ns) == before
    assert not list(out.rglob(".*.replaced"))
    assert main(["compare", *options, "--out", str(tmp_path / "whole")]) == 0
    resumed, whole = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("stopped", "whole"))
    strip = lambda m: {k: v for k, v in m["metrics"].items() if "seconds" not in k}  # noqa: E731
    assert [(m["name"], strip(m)) for m in resumed["domains"]["images"]["models"]] == \
        [(m["name"], strip(m)) for m in whole["domains"]["images"]["models"]]
    capsys.readouterr()
    assert main(["compare", "--resume", str(out)]) == 2
    assert "holds a finished report (results.json), there is nothing to resume" in capsys.readouterr().err
    assert main(["compare", "--resume", str(tmp_path), "--steps", "9"]) == 2
    assert "drop --steps" in capsys.readouterr().err
    assert main(["compare", "--resume", str(tmp_path / "nothing")]) == 2
    assert f"cannot resume {tmp_path / 'nothing'}: no such folder" in capsys.readouterr().err
    assert main(["compare", *options, "--out", str(out)]) == 2
    assert "--resume" not in capsys.readouterr().err  # finished: nothing to continue


def test_help_names_every_domain_and_the_study_options(capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "text,images,series,seq2seq" in text
    for option in ("--seeds", "--budgets", "--budget-seconds", "--image-data", "--input-len", "--horizon"):
        assert option in text, option
    assert "--device DEVICE auto" in text  # like xformer train
