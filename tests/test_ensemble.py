"""Ensembles: several trained runs of one task evaluated as one model (`xformer evaluate RUN RUN ...`), their
forecasts (each quantile too) or class probabilities averaged; runs of other data refused in one line."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from torch import nn
from torch.utils.data import default_collate

from xformer.batch import LABELS, TARGETS
from xformer.cli import main
from xformer.config import ConfigError
from xformer.ensemble import Ensemble
from xformer.heads.classification import classification_output
from xformer.heads.forecasting import forecast_output
from xformer.train.ensemble import evaluate_ensemble
from xformer.train.run import evaluate_run, load_run

from test_evaluate_other_data import CORE, train, write_images


class Fixed(nn.Module):
    """A stand-in model whose output is a given tensor (forecast, quantiles or logits)."""

    def __init__(self, value: torch.Tensor, kind: str, quantiles=None):
        super().__init__()
        self.value, self.kind = nn.Parameter(value, requires_grad=False), kind
        self.quantiles = None if quantiles is None else torch.tensor(quantiles)

    def forward(self, batch):
        if self.kind == "logits":
            return classification_output(self.value, batch)
        return forecast_output(self.value, batch, self.quantiles)


def test_forecasts_are_averaged_and_the_error_decomposes():
    torch.manual_seed(0)
    members = [torch.randn(4, 6, 2) for _ in range(3)]
    y = torch.randn(4, 6, 2)
    out = Ensemble([Fixed(m, "prediction") for m in members])({TARGETS: y})
    mean = torch.stack(members).mean(0)
    torch.testing.assert_close(out["prediction"], mean)
    # (y - f_bar)^2 = mean_m (y - f_m)^2 - mean_m (f_m - f_bar)^2: the ensemble's MSE is the members' mean MSE
    # minus their spread, so never above it
    member_mse = torch.stack([((y - m) ** 2).mean() for m in members]).mean()
    spread = torch.stack([((m - mean) ** 2).mean() for m in members]).mean()
    torch.testing.assert_close(out["loss"], member_mse - spread)
    assert out["loss"] < member_mse and int(out["loss_weight"]) == y.numel()


def test_quantiles_are_averaged_level_by_level():
    levels = [0.1, 0.5, 0.9]
    a, b = torch.rand(2, 3, 1, 3).sort(-1).values, torch.rand(2, 3, 1, 3).sort(-1).values
    out = Ensemble([Fixed(a, "quantiles", levels), Fixed(b, "quantiles", levels)])({})
    torch.testing.assert_close(out["quantiles"], (a + b) / 2)
    torch.testing.assert_close(out["prediction"], ((a + b) / 2)[..., 1])  # the averaged median
    with pytest.raises(ConfigError, match="the members forecast different quantiles"):
        Ensemble([Fixed(a, "quantiles", levels), Fixed(b, "quantiles", [0.2, 0.5, 0.8])])({})
    with pytest.raises(ConfigError, match="the members give different outputs"):
        Ensemble([Fixed(a, "quantiles", levels), Fixed(b[..., 1], "prediction")])({})


def test_class_probabilities_are_averaged():
    torch.manual_seed(1)
    a, b = torch.randn(5, 4), torch.randn(5, 4)
    labels = torch.tensor([0, 1, 2, 3, 0])
    out = Ensemble([Fixed(a, "logits"), Fixed(b, "logits")])({LABELS: labels})
    p = (a.softmax(-1) + b.softmax(-1)) / 2
    torch.testing.assert_close(out["logits"].softmax(-1), p)
    torch.testing.assert_close(out["loss"], -p[torch.arange(5), labels].log().mean())
    same = Ensemble([Fixed(a, "logits"), Fixed(a.clone(), "logits")])({})
    torch.testing.assert_close(same["logits"].softmax(-1), a.softmax(-1))


def test_language_models_and_single_members_are_refused():
    with pytest.raises(ConfigError, match="per-token logits"):
        Ensemble([Fixed(torch.randn(2, 5, 7), "logits"), Fixed(torch.randn(2, 5, 7), "logits")])({})
    with pytest.raises(ConfigError, match="at least 2 models"):
        Ensemble([Fixed(torch.randn(2, 3), "logits")])


def series_recipe(path, seed, horizon=8):
    return {"model": {"architecture": "encoder", "core": CORE,
                      "tokenizer": {"name": "series_patches", "args": {"patch_len": 8, "stride": 4}},
                      "head": {"name": "forecast"}},
            "data": {"name": "csv_series", "args": {"path": str(path), "input_len": 24, "horizon": horizon}},
            "train": {"steps": 6, "batch_size": 16, "eval_every": 3, "seed": seed}}


def forecasts_by_hand(runs):
    """Each run's model on every test window, by hand: (forecasts, one per run, and the truth)."""
    forecasts, truth = [], None
    for run in runs:
        _, model, data = load_run(run)
        batch = (data.collate or default_collate)([data.test[i] for i in range(len(data.test))])
        with torch.no_grad():
            forecasts.append(model.eval()(batch)["prediction"].double())
        truth = batch[TARGETS].double()
    return forecasts, truth


@pytest.fixture(scope="module")
def series_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ensemble_series")
    t = np.arange(400)
    rng = np.random.default_rng(0)
    pd.DataFrame({"date": pd.date_range("2021-01-01", periods=400, freq="h"),
                  "load": np.sin(2 * np.pi * t / 24) + 0.1 * rng.standard_normal(400),
                  "temp": np.cos(2 * np.pi * t / 24)}).to_csv(tmp / "a.csv", index=False)
    return tmp, [train(tmp, series_recipe(tmp / "a.csv", seed), f"s{seed}") for seed in (1, 2, 3)]


def test_evaluate_scores_the_average_forecast_of_the_runs(series_runs, capsys):
    _, runs = series_runs
    capsys.readouterr()
    assert main(["evaluate", *map(str, runs)]) == 0
    ensemble = json.loads(capsys.readouterr().out)
    members = [evaluate_run(run) for run in runs]
    assert set(ensemble) == set(members[0])
    # by hand: every run's model on the test windows, forecasts averaged
    forecasts, truth = forecasts_by_hand(runs)
    by_hand = ((torch.stack(forecasts).mean(0) - truth) ** 2).mean().item()
    assert ensemble["test_mse"] == pytest.approx(by_hand, rel=1e-5)
    assert ensemble["test_mse"] < np.mean([m["test_mse"] for m in members])  # never above the members' mean
    assert ensemble["test_mse"] != pytest.approx(members[0]["test_mse"], rel=1e-4)


def test_a_run_older_than_the_freq_record_joins_an_ensemble(series_runs, capsys):
    """series_scaler.json records the data's freq since 2026-12-04: a run trained before (no such key) and one
    after, of the same data, are one ensemble; both recording freqs that differ are not."""
    import shutil

    tmp, runs = series_runs
    older = tmp / "before_freq_record"
    shutil.copytree(runs[1], older)
    stats = json.loads((older / "series_scaler.json").read_text(encoding="utf-8"))
    assert stats.pop("freq") == "h"
    (older / "series_scaler.json").write_text(json.dumps(stats, indent=1), encoding="utf-8")
    capsys.readouterr()
    assert main(["evaluate", str(runs[0]), str(older)]) == 0
    (older / "series_scaler.json").write_text(json.dumps({**stats, "freq": "D"}, indent=1), encoding="utf-8")
    assert main(["evaluate", str(runs[0]), str(older)]) == 2
    assert "series_scaler.json differs" in capsys.readouterr().err


def test_runs_of_other_data_or_heads_are_refused_in_one_line(series_runs, capsys, monkeypatch):
    tmp, runs = series_runs
    other = train(tmp, series_recipe(tmp / "a.csv", 1, horizon=4), "h4")
    capsys.readouterr()
    assert main(["evaluate", str(runs[0]), str(other)]) == 2
    err = capsys.readouterr().err
    assert "was trained on other data than" in err and "(data: horizon 8 vs 4)" in err and err.count("\n") == 1
    recipe = series_recipe(tmp / "a.csv", 1)
    recipe["model"]["head"]["args"] = {"quantiles": [0.1, 0.5, 0.9]}
    quantiles = train(tmp, recipe, "q")
    capsys.readouterr()
    assert main(["evaluate", str(runs[0]), str(quantiles)]) == 2
    assert "ensemble runs with the same head and quantiles" in capsys.readouterr().err
    # a run of an earlier release recorded its data path as given (relative): the same file, so it may join
    older = tmp / "older"
    shutil.copytree(runs[1], older)
    saved = yaml.safe_load((older / "config.yaml").read_text())
    saved["data"]["args"]["path"] = "a.csv"
    (older / "config.yaml").write_text(yaml.safe_dump(saved))
    monkeypatch.chdir(tmp)
    capsys.readouterr()
    assert main(["evaluate", str(runs[0]), str(older)]) == 0, capsys.readouterr().err
    monkeypatch.chdir(older)  # from elsewhere "a.csv" is another file
    assert main(["evaluate", str(runs[0]), str(older)]) == 2
    assert "(data: path " in capsys.readouterr().err
    assert main(["evaluate", str(runs[0]), str(tmp / "missing")]) == 2
    assert f"{tmp / 'missing'} does not exist" in capsys.readouterr().err
    assert main(["evaluate", "data.args.horizon=4"]) == 2
    assert "give at least one RUN_DIR" in capsys.readouterr().err


def test_a_patchtst_and_a_dlinear_forecast_as_their_average(series_runs):
    """Two model families of one task (benchmarks/README.md, "PatchTST and DLinear combined"): the DLinear
    baseline joins the transformer's runs, and the ensemble forecasts their mean."""
    tmp, runs = series_runs
    recipe = series_recipe(tmp / "a.csv", 1)
    recipe["model"] = {"baseline": {"name": "dlinear", "args": {"kernel_size": 5}}}
    dlinear = train(tmp, recipe, "dlinear")
    forecasts, truth = forecasts_by_hand([runs[0], dlinear])
    assert not torch.allclose(forecasts[0], forecasts[1])
    by_hand = ((torch.stack(forecasts).mean(0) - truth) ** 2).mean().item()
    assert evaluate_ensemble([runs[0], dlinear])["test_mse"] == pytest.approx(by_hand, rel=1e-5)
    assert evaluate_ensemble([dlinear, runs[0]])["test_mse"] == pytest.approx(by_hand, rel=1e-5)  # either first


def test_an_ensemble_on_other_data_of_the_same_columns(series_runs, capsys):
    tmp, runs = series_runs
    frame = pd.read_csv(tmp / "a.csv")
    frame.assign(load=np.roll(frame["load"].to_numpy(), 5)).to_csv(tmp / "b.csv", index=False)  # the scaler undoes x2
    capsys.readouterr()
    assert main(["evaluate", str(runs[0]), str(runs[1]), f"data.args.path={tmp / 'b.csv'}"]) == 0
    on_b = json.loads(capsys.readouterr().out)
    assert on_b["test_mse"] != evaluate_ensemble(runs[:2])["test_mse"]


def test_image_classifiers_and_a_cnn_in_one_ensemble(tmp_path):
    write_images(tmp_path / "images")
    data = {"name": "image_folder", "args": {"root": str(tmp_path / "images"), "image_size": 8}}
    schedule = {"steps": 6, "batch_size": 4, "eval_every": 3}
    # the ViT's training batches are mixed and flipped, as the CCT recipes' are, the CNN's not: the same splits
    augmented = {**data, "args": {**data["args"], "mixup": 0.8, "cutmix": 1.0, "label_smoothing": 0.1, "hflip": 0.5}}
    vit = train(tmp_path, {"model": {"architecture": "encoder", "core": CORE,
                                     "tokenizer": {"name": "image_patches", "args": {"patch_size": 4}},
                                     "head": {"name": "classification"}}, "data": augmented, "train": schedule},
                "vit")
    cnn = train(tmp_path, {"model": {"baseline": {"name": "cnn"}}, "data": data, "train": schedule}, "cnn")
    both = evaluate_ensemble([vit, cnn])
    assert set(both) == set(evaluate_run(vit)) and 0.0 <= both["test_accuracy"] <= 1.0
    # the same run twice is that run: averaging equal probabilities changes nothing
    twice, once = evaluate_ensemble([vit, vit]), evaluate_run(vit)
    assert twice["test_accuracy"] == once["test_accuracy"]


def test_forecasters_of_one_frame_forecast_as_their_ensemble(tmp_path, capsys):
    from xformer.forecast import Forecaster
    from test_forecaster_long import TINY, long_frame

    df = long_frame(lengths=(120, 90), starts=("2022-01-01", "2022-01-02 05:00"))
    paths = []
    for seed in (1, 2):
        paths.append(Forecaster(**TINY, quantiles=[0.1, 0.5, 0.9], seed=seed).fit(df).save(tmp_path / f"f{seed}"))
    members = [Forecaster.load(path).predict(df) for path in paths]
    both = Forecaster.load(paths).predict(df)
    in_memory = Forecaster.ensemble([Forecaster.load(path) for path in paths]).predict(df)
    pd.testing.assert_frame_equal(in_memory, both)
    assert list(both.columns) == list(members[0].columns)
    for column in ("y_hat", "y_hat_q0.1", "y_hat_q0.9"):
        np.testing.assert_allclose(both[column], (members[0][column] + members[1][column]) / 2, rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="an ensemble is kept as its members' folders"):
        Forecaster.load(paths).save(tmp_path / "both")
    other = Forecaster(**{**TINY, "horizon": 4}, quantiles=[0.1, 0.5, 0.9]).fit(df).save(tmp_path / "h4")
    with pytest.raises(ConfigError, match=r"reads its data differently .*\(horizon differ\)"):
        Forecaster.load([paths[0], other])
    df.to_csv(tmp_path / "long.csv", index=False)
    capsys.readouterr()
    assert main(["forecast", *map(str, paths), "--data", str(tmp_path / "long.csv"), "--out",
                 str(tmp_path / "fc.csv")]) == 0
    written = pd.read_csv(tmp_path / "fc.csv")
    np.testing.assert_allclose(written["y_hat"], both["y_hat"], rtol=1e-5, atol=1e-4)
    assert main(["backtest", *map(str, paths), "--data", str(tmp_path / "long.csv"), "--windows", "2",
                 "--out", str(tmp_path / "cv.csv")]) == 0
    assert main(["forecast", str(paths[0]), str(other), "--data", str(tmp_path / "long.csv")]) == 2
    assert "reads its data differently" in capsys.readouterr().err


def test_a_patchtst_and_a_dlinear_forecaster_forecast_their_mean():
    from xformer.forecast import Forecaster
    from test_forecaster_long import TINY, long_frame

    df = long_frame(lengths=(120, 90), starts=("2022-01-01", "2022-01-02 05:00"))
    patchtst = Forecaster(**TINY).fit(df)
    dlinear = Forecaster(model="dlinear", **{k: v for k, v in TINY.items()
                                             if k in ("input_len", "horizon", "epochs", "batch_size", "device")}).fit(df)
    both = Forecaster.ensemble([patchtst, dlinear]).predict(df)
    one, other = patchtst.predict(df), dlinear.predict(df)
    assert not np.allclose(one["y_hat"], other["y_hat"])
    np.testing.assert_allclose(both["y_hat"], (one["y_hat"] + other["y_hat"]) / 2, rtol=1e-5, atol=1e-6)


def test_predict_averages_the_probabilities_of_several_runs(tmp_path):
    from xformer.predict import predict_run

    write_images(tmp_path / "images")
    data = {"name": "image_folder", "args": {"root": str(tmp_path / "images"), "image_size": 8}}
    runs = [train(tmp_path, {"model": {"architecture": "encoder", "core": CORE,
                                       "tokenizer": {"name": "image_patches", "args": {"patch_size": 4}},
                                       "head": {"name": "classification"}},
                             "data": data, "train": {"steps": 6, "batch_size": 4, "eval_every": 3, "seed": seed}},
                  f"vit{seed}") for seed in (1, 2)]
    folder = tmp_path / "images" / "test"
    single = [predict_run(run, [folder], top_k=2)[0] for run in runs]
    both, _ = predict_run(runs, [folder], top_k=2)
    for row, a, b in zip(both, *single):  # two classes: top-2 lists every probability
        p_a, p_b = dict(a["top_k"]), dict(b["top_k"])
        assert row["probability"] == pytest.approx((p_a[row["class"]] + p_b[row["class"]]) / 2, abs=1e-5)
    assert main(["predict", str(runs[0]), str(folder), "--ensemble", str(runs[1]), "--out",
                 str(tmp_path / "p.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "p.csv")) == len(both)


# ---- forecasters of different lookbacks (N-BEATS' multi-lookback ensembles) ---------------------------------
def test_a_trailing_window_reads_the_last_steps_of_inputs_and_covariates():
    from xformer.batch import FUTURE_COVARIATES, INPUTS, PAST_COVARIATES, STATIC_COVARIATES
    from xformer.ensemble import TrailingWindow

    seen = {}

    class Recorder(nn.Module):
        def forward(self, batch):
            seen.update(batch)
            return forecast_output(batch[INPUTS][:, -3:], batch)

    L, H = 10, 3
    batch = {INPUTS: torch.arange(2 * L * 1.0).reshape(2, L, 1), PAST_COVARIATES: torch.randn(2, L, 2),
             FUTURE_COVARIATES: torch.randn(2, L + H, 3), STATIC_COVARIATES: torch.randn(2, 4)}
    TrailingWindow(Recorder(), 4)(batch)
    torch.testing.assert_close(seen[INPUTS], batch[INPUTS][:, 6:])
    torch.testing.assert_close(seen[PAST_COVARIATES], batch[PAST_COVARIATES][:, 6:])
    torch.testing.assert_close(seen[FUTURE_COVARIATES], batch[FUTURE_COVARIATES][:, 6:])  # 4 + H rows, same horizon
    assert seen[STATIC_COVARIATES] is batch[STATIC_COVARIATES] and batch[INPUTS].shape[1] == L  # the caller's kept
    with pytest.raises(ConfigError, match="a member of the ensemble reads 12 steps and the data's windows hold 10"):
        TrailingWindow(Recorder(), 12)(batch)


def test_runs_of_different_lookbacks_forecast_the_same_windows_as_their_average(series_runs, capsys):
    """A DLinear with a 16-step window joins the 24-step PatchTST runs: each split's windows forecast the same
    steps whatever the lookback, and the ensemble averages each model on its own window of them."""
    tmp, runs = series_runs
    recipe = series_recipe(tmp / "a.csv", 1)
    recipe["model"] = {"baseline": {"name": "dlinear", "args": {"kernel_size": 5}}}
    recipe["data"]["args"]["input_len"] = 16
    short = train(tmp, recipe, "dlinear16")
    forecasts, truths = [], []
    for run in (runs[0], short):  # each on its own data: 24 and 16 steps before the same origins
        f, truth = forecasts_by_hand([run])
        forecasts.append(f[0])
        truths.append(truth)
    torch.testing.assert_close(truths[0], truths[1])
    by_hand = ((torch.stack(forecasts).mean(0) - truths[0]) ** 2).mean().item()
    for order in ([short, runs[0]], [runs[0], short], [short, runs[0], runs[0]]):
        members = len(order)
        mean = (forecasts[1] + (members - 1) * forecasts[0]) / members
        expected = ((mean - truths[0]) ** 2).mean().item() if members == 3 else by_hand
        assert evaluate_ensemble(order)["test_mse"] == pytest.approx(expected, rel=1e-5)
    fc = {}
    for name, members in (("short", [short]), ("long", [runs[0]]), ("both", [short, runs[0]])):
        assert main(["forecast", *map(str, members), "--data", str(tmp / "a.csv"), "--out", str(tmp / f"{name}.csv"),
                     "--quiet"]) == 0
        fc[name] = pd.read_csv(tmp / f"{name}.csv")[["load", "temp"]].to_numpy()
    np.testing.assert_allclose(fc["both"], (fc["short"] + fc["long"]) / 2, rtol=1e-5, atol=1e-5)
    capsys.readouterr()
    assert main(["evaluate", str(short), str(runs[0]), "data.args.input_len=16"]) == 2
    assert f"the data gives tokenizer.input_len=16, but the model of {runs[0]} has 24" in capsys.readouterr().err
    recipe["data"]["args"]["horizon"] = 4  # anything but the lookback still has to agree
    other = train(tmp, recipe, "dlinear16h4")
    assert main(["evaluate", str(runs[0]), str(other)]) == 2
    assert "(data: horizon 8 vs 4)" in capsys.readouterr().err


def test_forecasters_of_different_windows_forecast_their_mean(tmp_path):
    from xformer.forecast import Forecaster
    from test_forecaster_long import COV, leading_frame

    df = leading_frame()
    history = df.groupby("unique_id").head(190).reset_index(drop=True)
    future = df.groupby("unique_id").tail(10).groupby("unique_id").head(6)[["unique_id", "ds", "now"]]
    long, short = (Forecaster(**{**COV, "input_len": L}, hist_exog=["x"], futr_exog=["now"]).fit(history)
                   for L in (24, 12))
    both = Forecaster.ensemble([short, long])
    assert both.config.input_len == 24 and short.config.input_len == 12  # the members are left as they were
    one, other = long.predict(history, futr_df=future), short.predict(history, futr_df=future)
    assert not np.allclose(one["y_hat"], other["y_hat"])
    mean = both.predict(history, futr_df=future)
    np.testing.assert_allclose(mean["y_hat"], (one["y_hat"] + other["y_hat"]) / 2, rtol=1e-5, atol=1e-6)
    paths = [long.save(tmp_path / "long"), short.save(tmp_path / "short")]
    pd.testing.assert_frame_equal(Forecaster.load(paths).predict(history, futr_df=future), mean)
