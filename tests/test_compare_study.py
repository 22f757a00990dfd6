"""`xformer compare` as a study: seeds with spread, ties, budgets with crossovers, a summary first, one
self-contained HTML page. One tiny run (images and series, 2 seeds, 2 budgets) and the rules on numbers."""
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from xformer.cli import main
from xformer.compare.study import crossover_sentences, crossovers, is_tie, mean_std, ranking
from xformer.data.series import synthetic_frame

TINY = ["--d-model", "16", "--layers", "1", "--heads", "2", "--batch-size", "8", "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    series = root / "tiny.csv"
    synthetic_frame(n_rows=400, n_channels=1).to_csv(series, index=False)
    out = root / "report"
    assert main(["compare", *TINY, "--domains", "images,series", "--seeds", "2", "--budgets", "3,6",
                 "--series-data", str(series), "--input-len", "48", "--horizon", "12", "--out", str(out)]) == 0
    return out, series


def test_ties_ranks_and_spread_on_numbers():
    assert mean_std([1.0, 3.0]) == (2.0, pytest.approx(2 ** 0.5))
    assert mean_std([5.0]) == (5.0, 0.0)
    assert is_tie(2.141, 0.02, 2.151, 0.01)  # |diff| 0.01 <= 0.02: a tie, not a win
    assert not is_tie(2.10, 0.01, 2.15, 0.02)
    assert not is_tie(1.0, 0.0, 1.1, 0.0)  # one seed: no spread, no tie
    rows = [{"name": "GPT", "kind": "transformer", "metric": 2.151, "metric_std": 0.01},
            {"name": "n-gram", "kind": "baseline", "metric": 2.141, "metric_std": 0.02},
            {"name": "LSTM", "kind": "baseline", "metric": 2.449, "metric_std": 0.01}]
    r = ranking(rows, "min")
    assert r["best"] == "n-gram" and r["tied_for_best"] == ["GPT"]
    assert r["rank"] == {"GPT": 1, "n-gram": 1, "LSTM": 3} and r["ties"]["LSTM"] == []
    # higher is better: accuracy
    r = ranking([{"name": "ViT", "metric": 0.90, "metric_std": 0.01},
                 {"name": "CNN", "metric": 0.99, "metric_std": 0.002}], "max")
    assert r["best"] == "CNN" and r["rank"]["ViT"] == 2 and r["tied_for_best"] == []


def test_crossover_is_interpolated_in_log_flops():
    # the transformer's error falls from 3 to 1 over 1e6..1e8 FLOPs, the baseline's stays at 2: they cross
    # where the transformer's line (linear in log10 x) reaches 2, at 1e7
    found = crossovers([(1e6, 3.0), (1e8, 1.0)], [(1e6, 2.0), (1e8, 2.0)], "min")
    assert len(found["points"]) == 1 and found["points"][0]["x"] == pytest.approx(1e7)
    assert found["points"][0]["transformer_ahead_after"]
    assert crossover_sentences("images", "ViT", {"MLP": found}) == [
        "images: the ViT passes the MLP at about 10 MFLOPs of training."]
    # a flat line (a model with nothing to train) and higher-is-better
    found = crossovers([(1e3, 0.2), (1e5, 0.8)], None, "max", flat=0.5)
    assert found["points"][0]["x"] == pytest.approx(1e4)
    # the baseline stays ahead over the common range
    found = crossovers([(1e6, 3.0), (1e8, 2.5)], [(1e7, 1.0), (1e9, 0.5)], "min")
    assert found["points"] == [] and found["ahead"] == "baseline" and found["overlap"] == (1e7, 1e8)
    # no common range: said, not guessed
    found = crossovers([(1e3, 3.0), (1e4, 2.5)], [(1e7, 1.0), (1e9, 0.5)], "min")
    assert found["overlap"] is None and "no common range" in crossover_sentences("t", "A", {"B": found})[0]
    # two wall times one rounding apart have equal logs: no division by zero (a CI run met this)
    found = crossovers([(0.16999999999999998, 1.98), (0.17, 2.12)], [(0.1, 2.0), (0.2, 2.0)], "min")
    assert found["overlap"] == (0.16999999999999998, 0.17)


def test_seeds_and_budgets_write_every_table_with_spread_and_the_crossover_plot(study):
    out, _ = study
    results = json.loads((out / "results.json").read_text())
    assert results["seeds"] == [0, 1] and [b["steps"] for b in results["budgets"]] == [3, 6]
    for domain, info in results["domains"].items():
        assert info["split"] == "test"
        for row in info["models"]:
            trained = row["kind"] == "transformer" or row["steps"] > 0
            assert row["seeds"] == 2 and len(row["metric_values"]) == 2 and row["metric_std"] >= 0
            assert len(info["curves"][row["name"]]) == 2
            if trained:  # each budget and seed is its own run folder
                runs = [r for r in info["runs"] if r["name"] == row["name"]]
                assert sorted((r["budget_steps"], r["seed"]) for r in runs) == [(3, 0), (3, 1), (6, 0), (6, 1)]
                assert all((out / r["run_dir"] / "metrics.json").is_file() for r in runs)
                assert info["curves"][row["name"]][1]["train_flops"] == 2 * info["curves"][row["name"]][0]["train_flops"]
        assert set(info["crossovers"]) == {"flops", "seconds"}
    assert "budgets.png" in results["plots"] and (out / "budgets.png").stat().st_size > 10_000
    md = (out / "report.md").read_text()
    for title in ("## Summary", "## Data", "## images", "## images: by budget", "## series", "## series: by budget",
                  "## images: inside the transformer", "## series: inside the transformer", "## Plots"):
        assert title in md, title
    assert md.index("## Summary") < md.index("## Data") < md.index("## images") < md.index("## Plots")
    for domain in ("images", "series"):  # every metric cell of the domain table is "mean ± s"
        table = md.split(f"## {domain}\n", 1)[1].split("\n\n")[0].strip().splitlines()
        assert "(mean ± s)" in table[0]
        for line in table[2:]:
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert re.fullmatch(r"[-\d.e]+ ± [-\d.e]+", cells[-3]), line
    measures = results["domains"]["series"]["attention_measures"]
    assert len(measures) == 2 and all(m["unit"] == "time steps" for m in measures)
    # a series token is a patch of stride 8: the distance in time steps is 8 x the distance in tokens
    assert all(m["distance_unit"] == pytest.approx(8 * m["distance_tokens"], rel=1e-3) for m in measures)
    assert results["domains"]["images"]["attention_measures"][0]["unit"] == "pixels"


def test_summary_names_the_best_model_of_each_domain_and_the_data(study):
    out, series = study
    results = json.loads((out / "results.json").read_text())
    md = (out / "report.md").read_text()
    summary = md.split("## Summary", 1)[1].split("## Data", 1)[0]
    for domain, info in results["domains"].items():
        assert f"**{domain}**" in summary and f"best {info['ranking']['best']} " in summary
    assert "series" in results["domains"] and str(series) in md and "scikit-learn 8x8 digits" in md
    assert results["domains"]["series"]["data"]["sizes"]["test"] > 0


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.external, self.images, self.text = [], 0, []

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("src", "href") and not (value or "").startswith(("data:", "#")):
                self.external.append((tag, key, value))
        self.images += tag == "img"

    def handle_data(self, data):
        self.text.append(data)


def test_the_html_page_is_self_contained_and_opens_with_the_summary(study):
    out, _ = study
    results = json.loads((out / "results.json").read_text())
    page = _Page()
    page.feed((out / "report.html").read_text())
    assert page.external == [] and page.images == len(results["plots"]) >= 5
    text = " ".join(page.text)
    assert text.index("Summary") < text.index("Data") < text.index("Plots")
    assert "best " + results["domains"]["images"]["ranking"]["best"] in text
    assert "@media print" in text  # the style sheet, in the page


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium on PATH (apt-get install chromium)")
def test_the_html_page_in_headless_chromium_desktop_phone_and_print(study, tmp_path):
    """benchmarks/check_report_html.py: the page loads every image, fits 1280 and 420 px, prints to a PDF."""
    out, _ = study
    proc = subprocess.run([sys.executable, "benchmarks/check_report_html.py", str(out), "--out", str(tmp_path)],
                          cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FAIL" not in proc.stdout and proc.stdout.count("\nok ") >= 6
    for name in ("desktop.png", "phone.png", "report.pdf"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_the_seed_reproduces_the_metrics(study, tmp_path):
    out, series = study
    results = json.loads((out / "results.json").read_text())
    assert main(["compare", *TINY, "--domains", "images", "--steps", "3", "--seed", "1",
                 "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "results.json").read_text())
    for run in again["domains"]["images"]["runs"]:
        first = next(r for r in results["domains"]["images"]["runs"]
                     if r["name"] == run["name"] and r["budget_steps"] == 3 and r["seed"] == 1)
        assert {k: v for k, v in run["metrics"].items() if "seconds" not in k} == \
            {k: v for k, v in first["metrics"].items() if "seconds" not in k}, run["name"]


def test_budgets_in_steps_or_seconds():
    from xformer.compare import CompareConfig
    from xformer.errors import ConfigError

    assert CompareConfig(budgets=[1000, 250], device="cpu").schedule() == [(250, None), (1000, None)]
    assert CompareConfig(budget_seconds=[40, 10], steps=5000, device="cpu").schedule() == [(5000, 10), (5000, 40)]
    assert CompareConfig(steps=700, seconds=30, device="cpu").schedule() == [(700, 30)]
    with pytest.raises(ConfigError, match="not both"):
        CompareConfig(budgets=[10], budget_seconds=[5], device="cpu")


def test_attention_entropy_and_distance_on_known_maps():
    import math

    import torch

    from xformer.analysis.attention_stats import (attention_distance, attention_entropy, grid_coords, line_coords,
                                                  uniform_like)

    eye = torch.eye(6)[None, None]  # every query attends to itself only
    assert attention_entropy(eye).item() == 0 and attention_distance(eye, line_coords(6)).item() == 0
    flat = torch.full((1, 2, 12, 12), 1 / 12)  # uniform over 12 tokens: ln 12, mean |i - j| = (n^2 - 1) / 3n
    assert attention_entropy(flat)[1].item() == pytest.approx(math.log(12))
    assert attention_distance(flat, line_coords(12)).tolist() == pytest.approx([143 / 36] * 2)
    assert attention_distance(flat, line_coords(12, step=8))[0].item() == pytest.approx(8 * 143 / 36)  # time steps
    # a [CLS] token in front is left out: each patch of a 1x2 grid attends half to [CLS], half to the other patch
    a = torch.tensor([[[[1.0, 0.0, 0.0], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]]]])
    assert attention_distance(a, grid_coords(1, 2, step=4), prefix=1).item() == pytest.approx(4.0)  # pixels
    causal = torch.tril(torch.ones(4, 4))[None, None] * 0.3 + 0.0  # support of a causal mask
    assert attention_distance(uniform_like(causal), line_coords(4)).item() == pytest.approx((0 + 0.5 + 1 + 1.5) / 4)


def test_grid_coordinates_are_in_raster_order_for_a_non_square_grid():
    """The tokens of a rows x cols grid are row-major (a tokenizer's order): (0, 0), (0, 1), (0, 2), (1, 0), ..."""
    import torch

    from xformer.analysis.attention_stats import grid_coords

    expected = torch.tensor([[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]], dtype=torch.float32) * 16
    assert torch.equal(grid_coords(2, 3, step=16), expected)
