"""Forecasting baselines (DLinear decomposition, naive models), the Forecaster API, recipes, a model that learns."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.baselines import DLinear, RLinear, SparseTSF, build_baseline, moving_average
from xformer.config import ConfigError
from xformer.data.series import WindowDataset, forecast_errors
from xformer.forecast import Forecaster



def test_moving_average_equals_hand_computation():
    x = torch.randn(2, 30, 3, dtype=torch.float64)
    k, half = 5, 2
    ref = torch.empty_like(x)
    for t in range(30):  # replicate padding = clamping the index into [0, L-1]
        ref[:, t] = sum(x[:, min(max(t + j, 0), 29)] for j in range(-half, half + 1)) / k
    torch.testing.assert_close(moving_average(x, k), ref)
    assert moving_average(torch.randn(1, 336, 7), 25).shape == (1, 336, 7)
    with pytest.raises(ValueError, match="odd"):
        moving_average(x, 4)


def test_dlinear_is_seasonal_plus_trend_linear_maps():
    model = DLinear(n_channels=3, input_len=20, horizon=6, kernel_size=5)
    x = torch.randn(4, 20, 3)
    trend = moving_average(x, 5)
    s, tr = model.seasonal[0], model.trend[0]
    ref = s((x - trend).transpose(1, 2)) + tr(trend.transpose(1, 2))
    out = model({"inputs": x, "targets": torch.zeros(4, 6, 3)})
    torch.testing.assert_close(out["prediction"], ref.transpose(1, 2))
    assert int(out["loss_weight"]) == 4 * 6 * 3 and out["loss"].requires_grad
    individual = DLinear(3, 20, 6, individual=True)
    assert len(individual.seasonal) == 3 and individual({"inputs": x})["prediction"].shape == (4, 6, 3)


def test_rlinear_is_revin_then_one_linear_map():
    """y_hat = RevIN^-1(W RevIN(x) + b) written out, with RevIN's gamma / beta away from 1 / 0; one map per
    channel with individual=True; and, as any RevIN model, equivariant to a positive affine map of the input."""
    torch.manual_seed(0)
    model = RLinear(n_channels=3, input_len=20, horizon=6, dropout=0.1).eval()
    with torch.no_grad():
        model.revin.weight.copy_(torch.tensor([0.5, 2.0, 1.5]))
        model.revin.bias.copy_(torch.tensor([0.1, -0.3, 0.0]))
    x = torch.randn(4, 20, 3, dtype=torch.float64)
    model = model.double()
    mu, sigma = x.mean(1, keepdim=True), torch.sqrt(x.var(1, keepdim=True, unbiased=False) + 1e-5)
    gamma, beta = model.revin.weight, model.revin.bias
    z = model.linear[0](((x - mu) / sigma * gamma + beta).transpose(1, 2)).transpose(1, 2)
    ref = (z - beta) / (gamma + 1e-10) * sigma + mu
    out = model({"inputs": x, "targets": torch.zeros(4, 6, 3, dtype=torch.float64)})
    torch.testing.assert_close(out["prediction"], ref)
    assert int(out["loss_weight"]) == 4 * 6 * 3 and out["loss"].requires_grad
    shifted = model({"inputs": 3.0 * x + 7.0})["prediction"]  # sigma's eps makes it approximate
    torch.testing.assert_close(shifted, 3.0 * out["prediction"] + 7.0, rtol=1e-4, atol=1e-4)
    individual = RLinear(3, 20, 6, individual=True)
    assert len(individual.linear) == 3 and individual({"inputs": x.float()})["prediction"].shape == (4, 6, 3)
    assert sum(p.numel() for p in RLinear(7, 336, 96, affine=False).parameters()) == 336 * 96 + 96


def test_rlinear_learns_what_last_value_cannot():
    """A level-shifted daily sine: RLinear trained 150 Adam steps forecasts 24 steps with a fraction of the
    last value's error (RevIN removes each window's level; the map learns the shape)."""
    torch.manual_seed(0)
    series = torch.tensor(_sines(1200, 2), dtype=torch.float32) + torch.linspace(0, 5, 1200)[:, None]
    windows = series.unfold(0, 72, 1).transpose(1, 2)  # (N, 72, C)
    x, y = windows[:, :48], windows[:, 48:]
    model = RLinear(2, 48, 24, dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _ in range(150):
        idx = torch.randint(0, 900, (64,))
        loss = model({"inputs": x[idx], "targets": y[idx]})["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        held_out = {"inputs": x[1000:], "targets": y[1000:]}
        mse = model(held_out)["loss"].item()
        naive = build_baseline("last_value", n_channels=2, input_len=48, horizon=24)(held_out)["loss"].item()
    assert mse < 0.2 * naive, (mse, naive)


def test_sparsetsf_forecasts_each_phase_from_the_same_phase_of_past_periods():
    """y_hat_{i w + p} = sum_j W_ij z_{j w + p} + mean(x), z = x' + conv(x'), x' = x - mean(x), written out
    with loops; the oldest L mod w steps are left out and the last output period is cut to H."""
    torch.manual_seed(0)
    w, L, H = 4, 22, 10  # 2 steps left out, n = 5 input periods, m = 3 output periods cut to 10 steps
    model = SparseTSF(n_channels=3, input_len=L, horizon=H, period=w).double()
    x = torch.randn(2, L, 3, dtype=torch.float64)
    used = x[:, 2:]
    mean = used.mean(1, keepdim=True)
    centred = used - mean
    kernel = model.conv.weight[0, 0]  # k = 5, zero padding 2
    padded = torch.nn.functional.pad(centred.transpose(1, 2), (2, 2))
    z = centred + torch.stack([(padded[:, :, t:t + 5] * kernel).sum(-1) for t in range(20)], dim=2).transpose(1, 2)
    weight = model.linear.weight  # (m, n)
    ref = torch.empty(2, H, 3, dtype=torch.float64)
    for i in range(3):
        for p in range(w):
            if i * w + p < H:
                ref[:, i * w + p] = sum(weight[i, j] * z[:, j * w + p] for j in range(5)) + mean[:, 0]
    out = model({"inputs": x, "targets": torch.zeros(2, H, 3, dtype=torch.float64)})
    torch.testing.assert_close(out["prediction"], ref)
    assert int(out["loss_weight"]) == 2 * H * 3 and out["loss"].requires_grad
    shifted = model({"inputs": x + 5.0})["prediction"]  # mean centring: a level shift passes straight through
    torch.testing.assert_close(shifted, out["prediction"] + 5.0)
    import yaml

    recipe = yaml.safe_load((Path(__file__).parents[1] / "tasks" / "sparsetsf_etth1.yaml").read_text())
    paper = build_baseline("sparsetsf", n_channels=7, input_len=720, horizon=336, **recipe["model"]["baseline"]["args"])
    assert sum(p.numel() for p in paper.parameters()) == 30 * 14 + 25  # the paper's "1k parameters"
    with pytest.raises(ConfigError, match="period=24 is longer than input_len=12"):
        build_baseline("sparsetsf", n_channels=1, input_len=12, horizon=4, period=24)
    with pytest.raises(ConfigError, match="needs model.baseline.args.period"):  # no silent 24 for daily data
        build_baseline("sparsetsf", n_channels=1, input_len=28, horizon=7)
    for bad in ("24", 24.0, True, 0):
        with pytest.raises(ConfigError, match="model.baseline.args.period must be"):
            build_baseline("sparsetsf", n_channels=1, input_len=48, horizon=4, period=bad)


def test_sparsetsf_learns_a_daily_shape_with_a_trend():
    """A daily sine on a rising level: SparseTSF trained 300 Adam steps forecasts 48 steps with a fraction of the
    seasonal naive forecast's error (which repeats yesterday, so it misses the trend)."""
    torch.manual_seed(0)
    t = torch.arange(2000.0)
    series = (torch.sin(2 * torch.pi * t / 24)[:, None] * torch.tensor([1.0, 2.0]) + 0.01 * t[:, None]
              + 0.1 * torch.randn(2000, 2))
    windows = series.unfold(0, 168 + 48, 1).transpose(1, 2)  # (N, 216, C)
    x, y = windows[:, :168], windows[:, 168:]
    model = SparseTSF(2, 168, 48, period=24)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for step in range(300):
        idx = torch.randint(0, 1400, (64,))
        loss = model({"inputs": x[idx], "targets": y[idx]})["loss"]
        optimizer.zero_grad(); loss.backward(); optimizer.step()
    with torch.no_grad():
        held_out = {"inputs": x[1500:], "targets": y[1500:]}
        mse = model(held_out)["loss"].item()
        naive = build_baseline("seasonal_naive", n_channels=2, input_len=168, horizon=48)(held_out)["loss"].item()
    assert mse < 0.25 * naive, (mse, naive)


def test_naive_baselines():
    x = torch.arange(48.0).reshape(1, 48, 1).repeat(1, 1, 2)
    last = build_baseline("last_value", n_channels=2, input_len=48, horizon=5)({"inputs": x})["prediction"]
    assert torch.all(last == 47.0)
    seasonal = build_baseline("seasonal_naive", n_channels=2, input_len=48, horizon=30, period=24)
    season = seasonal({"inputs": x})["prediction"]
    assert season[0, :, 0].tolist() == [24.0 + (h % 24) for h in range(30)]
    with pytest.raises(ConfigError, match="unknown baseline 'dlinaer'; did you mean dlinear"):
        build_baseline("dlinaer", n_channels=2, input_len=48, horizon=5)
    with pytest.raises(ConfigError, match="period=100 must be between 1 and input_len=48"):
        build_baseline("seasonal_naive", n_channels=2, input_len=48, horizon=5, period=100)


def _sines(n=2000, c=2, seed=0):
    t, rng = np.arange(n), np.random.default_rng(seed)
    return np.stack([np.sin(2 * np.pi * t / 24) + 0.5 * np.sin(2 * np.pi * t / 10 + i)
                     + 0.05 * rng.standard_normal(n) for i in range(c)], axis=1)


def test_tiny_patchtst_learns_sines():
    """Daily + 10-step seasonality: seasonal naive (24) and last value miss it; the model should not (~2 s)."""
    x, L, H = _sines(), 48, 12
    train, test = WindowDataset(x[:1500], L, H), WindowDataset(x[1500 - L:], L, H)
    model = build_model(ModelConfig("encoder", CoreConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32, init="torch"),
                                    PartConfig("series_patches", {"n_channels": 2, "input_len": L, "patch_len": 8,
                                                                  "stride": 4}),
                                    PartConfig("forecast", {"horizon": H})))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    loader = DataLoader(train, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    step = 0
    while step < 200:
        for batch in loader:
            loss = model(batch)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
    test_loader = DataLoader(test, batch_size=256)
    mse = forecast_errors(model, test_loader)["mse"]
    seasonal = build_baseline("seasonal_naive", n_channels=2, input_len=L, horizon=H, period=24)
    naive = forecast_errors(seasonal, test_loader)["mse"]
    last = forecast_errors(build_baseline("last_value", n_channels=2, input_len=L, horizon=H), test_loader)["mse"]
    assert naive > 0.3 and last > 1.0
    assert mse < 0.05 * naive, (mse, naive, last)


@pytest.mark.parametrize("pool", ["mean", "max"])
def test_a_pooled_forecast_head_is_one_linear_map_of_the_pooled_tokens(pool):
    """model.head.args.pool: the N patch tokens of each channel pooled to one d-vector before the projection
    (W is H x d, not H x N*d), Hugging Face's pooling_type; mixed channels forecast all H*C values from it."""
    L, H, d = 48, 12, 16
    patches = PartConfig("series_patches", {"n_channels": 2, "input_len": L, "patch_len": 8, "stride": 4})
    steps = PartConfig("series_steps", {"n_channels": 2, "input_len": L})
    for tokenizer, channel_independent, per_sequence in ((patches, True, H), (steps, False, H * 2)):
        model = build_model(ModelConfig("encoder", CoreConfig(d_model=d, n_layers=1, n_heads=2, d_ff=32, init="torch"),
                                        tokenizer, PartConfig("forecast", {"horizon": H, "pool": pool}))).eval()
        assert model.head.proj.weight.shape == (per_sequence, d)
        x = torch.randn(3, L, 2)
        hidden = {}
        model.head.register_forward_pre_hook(lambda module, args: hidden.update(z=args[0]))
        with torch.no_grad():
            y = model({"inputs": x})["prediction"]
            z = hidden["z"]
            pooled = z.mean(1) if pool == "mean" else z.max(1).values
            raw = model.head.proj(pooled)
            raw = raw.reshape(3, 2, H).transpose(1, 2) if channel_independent else raw.reshape(3, H, 2)
            mu, sigma = x.mean(1, keepdim=True), (x.var(1, keepdim=True, unbiased=False) + 1e-5).sqrt()
            torch.testing.assert_close(y, raw * sigma + mu, atol=1e-5, rtol=1e-5)  # RevIN undone
    with pytest.raises(ConfigError, match="model.head.args.pool must be one of flatten, mean, max, got 'avg'"):
        build_model(ModelConfig("encoder", CoreConfig(d_model=d, n_layers=1, n_heads=2, d_ff=32),
                                PartConfig("series_patches", {"n_channels": 2, "input_len": L, "patch_len": 8}),
                                PartConfig("forecast", {"horizon": H, "pool": "avg"})))


def _hourly_frame(n=400):
    return pd.DataFrame({"date": pd.date_range("2022-03-01", periods=n, freq="h"),
                         **{f"s{i}": v for i, v in enumerate(_sines(n).T)}})


def test_forecaster_predicts_future_timestamps_and_quantiles(tmp_path):
    df = _hourly_frame()
    f = Forecaster(input_len=48, horizon=12, patch_len=8, stride=4, d_model=16, n_layers=1, epochs=1,
                   quantiles=[0.1, 0.5, 0.9]).fit(df)
    out = f.predict(df)
    expected = pd.date_range(df["date"].iloc[-1] + pd.Timedelta(hours=1), periods=12, freq="h")
    assert list(out.index) == list(expected) and out.index.name == "date"
    assert list(out.columns) == ["s0", "s1", "s0_q0.1", "s1_q0.1", "s0_q0.9", "s1_q0.9"]  # the median once
    long = f.predict(df.melt(id_vars="date", var_name="unique_id", value_name="y").rename(columns={"date": "ds"}))
    np.testing.assert_allclose(out["s0"], long.loc[long["unique_id"] == "s0", "y_hat"])  # the median, as y_hat
    assert out.notna().all().all()
    png = f.plot(df.iloc[:-12], tmp_path / "forecast.png", truth=df)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    before = png.read_bytes()
    with pytest.raises(ConfigError, match="forecast.png already exists; give a new file name, or pass overwrite=True"):
        f.plot(df, png)  # another picture: refused, the first one kept
    assert png.read_bytes() == before
    assert f.plot(df, png, overwrite=True) == png and png.read_bytes() != before


def test_forecaster_dlinear_and_errors(tmp_path):
    df = _hourly_frame(300)
    out = Forecaster(model="dlinear", input_len=48, horizon=6, epochs=1).fit(df).predict(df)
    assert out.shape == (6, 2) and str(out.index.freqstr) == "h"
    rlinear = Forecaster(model="rlinear", input_len=48, horizon=6, epochs=1, affine=True).fit(df)
    assert rlinear.predict(df).shape == (6, 2)
    sparse = Forecaster(model="sparsetsf", period=24, input_len=48, horizon=6, epochs=1).fit(df)
    assert sparse.predict(df).shape == (6, 2) and sparse.model.linear.weight.shape == (1, 2)
    sparse.save(tmp_path / "sparse")
    pd.testing.assert_frame_equal(Forecaster.load(tmp_path / "sparse").predict(df), sparse.predict(df))
    with pytest.raises(ConfigError, match="needs period=, the season's length"):
        Forecaster(model="sparsetsf", input_len=48, horizon=6)
    with pytest.raises(ConfigError, match="period applies to model='sparsetsf' only"):
        Forecaster(period=24)
    for bad, message in (({"period": "24"}, "period='24': give a whole number"), ({"period": 0}, "period=0"),
                         ({"period": 73}, "period=73 is longer than input_len=48"), ({"horizon": 0}, "horizon=0")):
        with pytest.raises(ConfigError, match=message):  # at construction, naming the Forecaster's own options
            Forecaster(**{"model": "sparsetsf", "period": 24, "input_len": 48, "horizon": 6, **bad})
    numpy_sizes = Forecaster(model="sparsetsf", period=np.int64(24), input_len=np.int64(48), horizon=6, epochs=1)
    numpy_sizes.fit(df).save(tmp_path / "numpy_sizes")  # numpy integers from a frame are saved as numbers
    assert Forecaster.load(tmp_path / "numpy_sizes").config.period == 24
    with pytest.raises(ConfigError, match="rlinear gives point forecasts only"):
        Forecaster(model="rlinear", input_len=48, horizon=6, quantiles=[0.1, 0.5, 0.9]).fit(df)
    with pytest.raises(ConfigError, match="revin=False does not apply"):
        Forecaster(model="rlinear", input_len=48, horizon=6, revin=False).fit(df)
    # a network option the model does not read is refused, not ignored (a default value given again is fine)
    for model, given, message in (("dlinear", dict(d_model=64, revin=False), "d_model=64, revin=False"),
                                  ("sparsetsf", dict(period=24, dropout=0.3), "dropout=0.3"),
                                  ("rlinear", dict(patch_len=24), "patch_len=24"),
                                  ("steps", dict(stride=4), "stride=4")):
        with pytest.raises(ConfigError, match=f"model='{model}' does not read {message} .*; drop them"):
            Forecaster(model=model, input_len=48, horizon=6, **given).fit(df)
    Forecaster(model="dlinear", input_len=48, horizon=6, epochs=1, d_model=32, revin=True).fit(df)
    Forecaster(model="rlinear", input_len=48, horizon=6, epochs=1, dropout=0.2).fit(df)
    with pytest.raises(ConfigError, match="unknown Forecaster option"):
        Forecaster(horizn=5)
    with pytest.raises(ConfigError, match="call fit"):
        Forecaster().predict(df)
    dropped = df.drop(index=[5, 17, 40])  # missing timestamps of the hourly grid
    with pytest.raises(ConfigError, match="lacks 3 timestamps of freq h .*missing='ffill'"):
        Forecaster(model="dlinear", input_len=48, horizon=6, epochs=1).fit(dropped)


@pytest.mark.parametrize("prefix, n_patches", [("patchtst", 42), ("patchtst64", 64)])
def test_recipes_build_the_patchtst42_64_and_dlinear_models(prefix, n_patches):
    """The recipes' model sections name real parts and keys; PatchTST/42 and /64 have the reference's
    parameter counts (L = 336 and 512: 42 and 64 patches of 16 with stride 8, one padded at the end)."""
    import yaml

    from xformer.config import from_dict

    tasks = Path(__file__).resolve().parents[1] / "tasks"
    for horizon in (96, 192, 336, 720):
        recipe = yaml.safe_load((tasks / f"{prefix}_etth1_{horizon}.yaml").read_text())
        m, data = recipe["model"], recipe["data"]["args"]
        model = build_model(ModelConfig(
            m["architecture"], from_dict(CoreConfig, m["core"]),
            PartConfig(m["tokenizer"]["name"], {**m["tokenizer"]["args"], "n_channels": 7,
                                                "input_len": data["input_len"]}),
            PartConfig(m["head"]["name"], {**m["head"]["args"], "horizon": data["horizon"]})))
        # PatchTST/N: W_P 16*16+16, W_pos N*16, 3 layers of (4 * (16*16+16) + 2*16*128 + 128 + 16 + 2 * 2*16),
        # head N*16*horizon + horizon (BatchNorm and LayerNorm both have 2*16 parameters)
        n = n_patches * 16
        assert model.num_parameters() == 272 + n + 3 * 5392 + n * horizon + horizon
        out = model({"inputs": torch.randn(2, data["input_len"], 7)})["prediction"]
        assert out.shape == (2, horizon, 7)
    recipe = yaml.safe_load((tasks / "dlinear_etth1.yaml").read_text())
    dlinear = build_baseline(recipe["model"]["baseline"]["name"], n_channels=7, input_len=336, horizon=96,
                             **recipe["model"]["baseline"]["args"])
    assert sum(p.numel() for p in dlinear.parameters()) == 2 * (336 * 96 + 96)
    recipe = yaml.safe_load((tasks / "rlinear_etth1.yaml").read_text())
    rlinear = build_baseline(recipe["model"]["baseline"]["name"], n_channels=7, input_len=336, horizon=96,
                             **recipe["model"]["baseline"]["args"])
    assert sum(p.numel() for p in rlinear.parameters()) == 336 * 96 + 96 + 2 * 7  # W, b, RevIN's gamma and beta


def test_recipes_parse_with_the_trainer_schema():
    from xformer.train import config
    from xformer.train.optim import _EpochDecay

    tasks = Path(__file__).resolve().parents[1] / "tasks"
    for horizon in (96, 192, 336, 720):
        for prefix, input_len in (("patchtst", 336), ("patchtst64", 512)):
            experiment = config.load_experiment(tasks / f"{prefix}_etth1_{horizon}.yaml")
            assert experiment.train.schedule == "epoch_decay" and experiment.data.args["horizon"] == horizon
            assert experiment.data.args["input_len"] == input_len
    experiment = config.load_experiment(tasks / "dlinear_etth1.yaml")
    assert experiment.model.baseline.name == "dlinear" and experiment.train.schedule == "epoch_decay"
    experiment = config.load_experiment(tasks / "rlinear_etth1.yaml")
    assert experiment.model.baseline.name == "rlinear" and experiment.train.batch_size == 128
    experiment = config.load_experiment(tasks / "sparsetsf_etth1.yaml")
    assert experiment.model.baseline.name == "sparsetsf" and experiment.data.args["input_len"] == 720
    # lss-1138/SparseTSF utils/tools.py lradj "type3", called with epoch + 1 after each 0-based epoch e: the lr
    # during epoch e is lr for e < 3, else lr * 0.8 ** (e - 3) (epoch 0 keeps the optimizer's initial lr)
    decay = _EpochDecay(steps_per_epoch=10, keep=experiment.train.decay_after_epochs, gamma=experiment.train.gamma)
    reference = [1.0] + [1.0 if e < 3 else 0.8 ** (e - 3) for e in range(1, 30)]
    assert [decay(10 * e) for e in range(30)] == pytest.approx(reference)


def test_token_batchnorm_is_patchtsts_transposed_batchnorm1d():
    """PatchTST's norm: nn.Sequential(Transpose(1, 2), nn.BatchNorm1d(d), Transpose(1, 2)) on (B, N, d)."""
    from xformer.core import make_norm

    torch.manual_seed(0)
    ours, reference = make_norm("batchnorm", 8), torch.nn.BatchNorm1d(8)
    with torch.no_grad():
        ours.weight.normal_(), ours.bias.normal_()
    reference.load_state_dict(ours.state_dict())
    for _ in range(3):  # training mode: batch statistics, running averages updated alike
        x = torch.randn(5, 7, 8) * 3 + 1
        torch.testing.assert_close(ours(x), reference(x.transpose(1, 2)).transpose(1, 2))
    torch.testing.assert_close(ours.running_var, reference.running_var)
    ours.eval(), reference.eval()
    x = torch.randn(2, 7, 8)
    torch.testing.assert_close(ours(x), reference(x.transpose(1, 2)).transpose(1, 2))
    model = build_model(ModelConfig("encoder", CoreConfig(d_model=16, n_layers=2, n_heads=4, norm="batchnorm",
                                                          norm_first=False),
                                    PartConfig("series_patches", {"n_channels": 3, "input_len": 48}),
                                    PartConfig("forecast", {"horizon": 6})))
    layernorm = build_model(ModelConfig("encoder", CoreConfig(d_model=16, n_layers=2, n_heads=4, norm_first=False),
                                        PartConfig("series_patches", {"n_channels": 3, "input_len": 48}),
                                        PartConfig("forecast", {"horizon": 6})))
    assert model.num_parameters() == layernorm.num_parameters()  # 2 d per norm either way
    out = model({"inputs": torch.randn(4, 48, 3), "targets": torch.randn(4, 6, 3)})
    out["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())


def test_quantile_forecasts_never_cross_and_sorting_never_raises_the_pinball_loss():
    from xformer.heads.forecasting import forecast_output, pinball_loss

    torch.manual_seed(0)
    q = torch.tensor([0.1, 0.5, 0.9])
    raw = torch.randn(16, 6, 2, 3) * 3  # crossed in about two thirds of the places
    target = torch.randn(16, 6, 2)
    out = forecast_output(raw, {"targets": target}, q)
    assert (out["quantiles"].diff(dim=-1) >= 0).all()
    torch.testing.assert_close(out["prediction"], out["quantiles"][..., 1])
    assert out["loss"] <= pinball_loss(raw, target, q)


class _PatchTSTEncoderReference(torch.nn.Module):
    """PatchTST's TSTEncoder (res_attention=True, pre_norm=False, BatchNorm), written from the paper's code
    structure: separate W_Q, W_K, W_V; to_out = Linear + Dropout; then the layer's own residual Dropout.
    Its dropouts are xformer's ``Dropout`` (tested against its definition in test_core.py), so that both
    models draw the same masks from the same seed."""

    def __init__(self, d: int, heads: int, d_ff: int, n_layers: int, p: float):
        super().__init__()
        from torch.nn import GELU, BatchNorm1d, Linear, ModuleDict, Sequential

        from xformer.core import Dropout

        def layer():
            return ModuleDict(dict(
                W_Q=Linear(d, d), W_K=Linear(d, d), W_V=Linear(d, d),
                to_out=Sequential(Linear(d, d), Dropout(p)), dropout_attn=Dropout(p), norm_attn=BatchNorm1d(d),
                ff=Sequential(Linear(d, d_ff), GELU(), Dropout(p), Linear(d_ff, d)),
                dropout_ffn=Dropout(p), norm_ffn=BatchNorm1d(d)))

        self.layers, self.heads = torch.nn.ModuleList(layer() for _ in range(n_layers)), heads

    def forward(self, src):
        b, n, d = src.shape
        scores = None
        for m in self.layers:
            q, k, v = (m[w](src).view(b, n, self.heads, -1).transpose(1, 2) for w in ("W_Q", "W_K", "W_V"))
            s = q @ k.transpose(-2, -1) * (d // self.heads) ** -0.5
            scores = s if scores is None else s + scores
            attended = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d)
            src = src + m["dropout_attn"](m["to_out"](attended))
            src = m["norm_attn"](src.transpose(1, 2)).transpose(1, 2)
            src = src + m["dropout_ffn"](m["ff"](src))
            src = m["norm_ffn"](src.transpose(1, 2)).transpose(1, 2)
        return src


def test_patchtst_encoder_equals_the_reference_in_training_mode():
    """Weights copied into a PatchTST-structured encoder: equal outputs and gradients in training mode, the same
    dropout masks drawn in the same order (attention output dropped twice: to_out's Dropout and the residual's)."""
    from xformer.core import CoreConfig, build
    from xformer.interop.patchtst import to_patchtst_state_dict

    torch.manual_seed(0)
    ours = build.encoder(CoreConfig(d_model=16, n_layers=3, n_heads=4, d_ff=32, dropout=0.3, attn_proj_dropout=0.3,
                              norm="batchnorm", norm_first=False, init="torch", residual_attention=True))
    reference = _PatchTSTEncoderReference(16, 4, 32, 3, 0.3)
    reference.load_state_dict(to_patchtst_state_dict(ours, layout="flat"))  # strict: every weight and buffer
    x = torch.randn(6, 7, 16)
    torch.manual_seed(1)
    out = ours(x)
    torch.manual_seed(1)
    expected = reference(x)
    torch.testing.assert_close(out, expected)
    out.square().mean().backward(), expected.square().mean().backward()
    torch.testing.assert_close(ours.blocks[0].attn.qkv.weight.grad[:16], reference.layers[0]["W_Q"].weight.grad)
    torch.manual_seed(2)
    assert not torch.allclose(ours(x), out)  # the dropout masks do matter
