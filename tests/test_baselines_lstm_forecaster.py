"""The LSTM forecaster baseline: equations, RevIN invariances, the config path, and learning the series."""
import pytest
import torch
from torch.utils.data import DataLoader

from xformer.baselines import build_baseline
from xformer.baselines.recurrent_series import LSTMForecaster
from xformer.config import ConfigError, from_dict
from xformer.data.registry import build_data
from xformer.models import ModelConfig, PartConfig, build_model
from xformer.train.config import ExperimentConfig, with_implied_args
from xformer.train.distributed import World
from xformer.train.run import build
from xformer.train.trainer import Trainer


def test_forward_is_the_lstm_equations_then_a_direct_linear_map():
    """revin=False, one layer: the gates written out by hand (PyTorch's i, f, g, o row order) give the same forecast."""
    model = LSTMForecaster(n_channels=3, input_len=10, horizon=4, hidden_dim=5, revin=False).eval()
    x, y = torch.randn(2, 10, 3), torch.randn(2, 4, 3)
    out = model({"inputs": x, "targets": y})
    assert out["prediction"].shape == (2, 4, 3) and int(out["loss_weight"]) == 2 * 4 * 3
    torch.testing.assert_close(out["loss"], ((out["prediction"] - y) ** 2).mean())

    lstm = model.lstm
    w_i, w_f, w_g, w_o = lstm.weight_ih_l0.chunk(4)
    u_i, u_f, u_g, u_o = lstm.weight_hh_l0.chunk(4)
    b_i, b_f, b_g, b_o = (lstm.bias_ih_l0 + lstm.bias_hh_l0).chunk(4)
    h, c = torch.zeros(2, 5), torch.zeros(2, 5)
    for t in range(10):
        xt = x[:, t]
        i = torch.sigmoid(xt @ w_i.T + h @ u_i.T + b_i)
        f = torch.sigmoid(xt @ w_f.T + h @ u_f.T + b_f)
        g = torch.tanh(xt @ w_g.T + h @ u_g.T + b_g)
        o = torch.sigmoid(xt @ w_o.T + h @ u_o.T + b_o)
        c = f * c + i * g
        h = o * torch.tanh(c)
    expected = (h @ model.proj.weight.T + model.proj.bias).view(2, 4, 3)
    torch.testing.assert_close(out["prediction"], expected, rtol=1e-5, atol=1e-5)
    assert set(model({"inputs": x})) == {"prediction"}


def test_revin_makes_the_forecast_shift_and_scale_with_the_window():
    """x -> a x + b channel-wise (a > 0) gives y -> a y + b; without RevIN it does not."""
    torch.manual_seed(0)
    x = torch.randn(4, 16, 3)
    a, b = torch.tensor([0.5, 3.0, 20.0]), torch.tensor([5.0, -2.0, 100.0])
    with torch.no_grad():
        model = LSTMForecaster(3, 16, 6, hidden_dim=8, n_layers=2, dropout=0.1, revin=True).eval()
        y, moved = model({"inputs": x})["prediction"], model({"inputs": a * x + b})["prediction"]
        torch.testing.assert_close(moved, a * y + b, rtol=1e-4, atol=1e-3)
        plain = LSTMForecaster(3, 16, 6, hidden_dim=8, n_layers=2, revin=False).eval()
        y, moved = plain({"inputs": x})["prediction"], plain({"inputs": a * x + b})["prediction"]
        assert (moved - (a * y + b)).abs().max() > 1.0


def test_lstm_forecaster_builds_through_the_config_path():
    bundle = build_data("csv_series", {"input_len": 24, "horizon": 6})
    config = ModelConfig(baseline=PartConfig("lstm_forecaster", {"hidden_dim": 8, "n_layers": 2}))
    config = with_implied_args(config, bundle.model_args)
    assert config.baseline.args == {"hidden_dim": 8, "n_layers": 2, "n_channels": 3, "input_len": 24, "horizon": 6}
    model = build_model(config)
    assert isinstance(model, LSTMForecaster) and model.lstm.num_layers == 2 and model.revin is not None
    batch = next(iter(DataLoader(bundle.train, batch_size=5)))
    out = model(batch)
    assert out["prediction"].shape == (5, 6, 3) and out["loss"].ndim == 0
    with pytest.raises(ValueError, match=r"inputs must be \(batch, 24, 3\), got \(5, 23, 3\)"):
        model({"inputs": batch["inputs"][:, 1:]})

    bad = ModelConfig(baseline=PartConfig("lstm_forecaster", {"hidden_size": 8}))
    bad = with_implied_args(bad, bundle.model_args)
    with pytest.raises(ConfigError) as err:
        build_model(bad)
    assert "\n" not in str(err.value)
    assert "unknown baseline.args key 'hidden_size' for baseline 'lstm_forecaster'; did you mean hidden_dim" \
        in str(err.value)
    with pytest.raises(ConfigError, match="baseline 'lstm_forecaster': dropout must be in"):
        build_baseline("lstm_forecaster", n_channels=3, input_len=24, horizon=6, dropout=1.5)


def test_lstm_forecaster_beats_last_value_on_the_generated_series():
    """Daily + weekly sines with noise: 150 trainer steps (~1 s) leave the LSTM well below last value's test MSE."""
    config = from_dict(ExperimentConfig, {
        "model": {"baseline": {"name": "lstm_forecaster", "args": {"hidden_dim": 32}}},
        "data": {"name": "csv_series", "args": {"input_len": 24, "horizon": 6}},
        "train": {"steps": 150, "batch_size": 64, "lr": 1e-2, "eval_every": 150, "log_every": 150, "device": "cpu"}})
    model, data = build(config)
    Trainer(model, data, config.train, None, World()).fit()
    test = DataLoader(data.test, batch_size=512)
    mse = data.evaluate(model, test)["mse"]
    last = data.evaluate(build_baseline("last_value", n_channels=3, input_len=24, horizon=6), test)["mse"]
    assert mse < 0.3 * last, (mse, last)
