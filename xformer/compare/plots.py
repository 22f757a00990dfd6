"""The plots of ``xformer compare``'s report folder.

    budgets.png           per domain: the test metric (mean ± s over seeds) against training FLOPs and
                          against wall seconds, every model, one point per budget (with two budgets or more)
    learning_curves.png   training loss (lines) and validation loss (markers) against step, per domain
    attention.png         the last layer's first head of each domain's transformer on one example
    attention_measures.png  attention entropy and mean attention distance per layer and head, per domain
    positions.png         cosine similarity of the learned position vectors, cos(p_i, p_j), per domain
    forecast.png          one test window of the series domain: history, truth and every model's forecast
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..analysis.attention_maps import collect_attention
from ..batch import INPUTS, LABELS, TARGETS
from .flops import one_example
from .study import flops_words


TRANSFORMER_COLOUR = "#c2185b"  # outside matplotlib's default cycle, so no baseline shares it


def _plain_ticks(ax, axis: str = "y", flops: bool = False) -> None:
    """Log-scale ticks written as plain numbers (0.02, 0.05, 2, 3), not 4x10^0: at 1, 2, 5 x 10^k over a wide
    range, at more steps within about a decade; unlabelled minor ticks."""
    import math

    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    target = ax.yaxis if axis == "y" else ax.xaxis
    lo, hi = ax.get_ylim() if axis == "y" else ax.get_xlim()
    decades = math.log10(hi / lo) if lo > 0 and hi > lo else 1.0
    subs = (1.0, 2.0, 5.0) if decades > 1.3 else (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)
    target.set_major_locator(LogLocator(base=10, subs=subs))
    if flops:  # 3e11 -> 300G
        target.set_major_formatter(FuncFormatter(lambda v, _: flops_words(v).replace(" ", "").replace("FLOPs", "")))
    else:
        target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())


def _style(row: dict) -> dict:
    """The transformer on top in a thick solid line; the baselines thinner, dashed."""
    if row["kind"] == "transformer":
        return {"lw": 2.2, "zorder": 5, "color": TRANSFORMER_COLOUR}
    return {"lw": 1.2, "ls": "--", "zorder": 3}


def _panels(n: int, rows: int = 1, width: float = 4.6, height: float = 3.6):
    """A figure of ``rows`` x ``n`` axes, built without pyplot: the caller's backend and open figures stay as
    they are."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * n, height * rows))
    return fig, fig.subplots(rows, n, squeeze=False)


def plot_budgets(results: dict, out: Path) -> Path | None:
    """Metric against training FLOPs (top) and wall seconds (bottom), log x, one line per model; crossings
    of the transformer with a baseline marked with a vertical dotted line."""
    if len(results["budgets"]) < 2:
        return None
    domains = list(results["domains"])
    fig, axes = _panels(len(domains), rows=2)
    for col, domain in enumerate(domains):
        info = results["domains"][domain]
        for row_i, (key, label, unit) in enumerate((("train_flops", "training FLOPs", "flops"),
                                                    ("wall_seconds", "wall seconds", "seconds"))):
            ax = axes[row_i, col]
            trained = [c["metric"] for m in info["models"] if m["steps"]
                       for c in info["curves"][m["name"]] if c["metric"] is not None]
            lo, hi = (min(trained), max(trained)) if trained else (0.0, 1.0)
            pad = (hi - lo) * 0.15 or abs(hi) * 0.05 or 0.05
            for model in info["models"]:
                curve = [c for c in info["curves"][model["name"]] if c["metric"] is not None]
                if not curve:
                    continue
                if not model["steps"]:  # nothing to train: a flat line, named with its value when off the scale
                    value = curve[0]["metric"]
                    if lo - 3 * pad <= value <= hi + 3 * pad:
                        ax.axhline(value, color="0.6", lw=1, ls=":", label=model["name"])
                    else:
                        ax.plot([], [], color="0.6", lw=1, ls=":", label=f"{model['name']} ({value:.3g}, off the scale)")
                    continue
                xs, ys = [c[key] for c in curve], [c["metric"] for c in curve]
                ax.errorbar(xs, ys, yerr=[c["metric_std"] for c in curve], marker="o", capsize=3,
                            label=model["name"], **_style(model))
            for found in info.get("crossovers", {}).get(unit, {}).values():
                for p in found["points"]:
                    ax.axvline(p["x"], color=TRANSFORMER_COLOUR, lw=0.8, ls=":")
            ax.set_xscale("log")
            ax.set_ylim(min(ax.get_ylim()[0], lo - pad), max(ax.get_ylim()[1], hi + pad))
            if lo - 3 * pad > ax.get_ylim()[0] or hi + 3 * pad < ax.get_ylim()[1]:
                ax.set_ylim(lo - 3 * pad, hi + 3 * pad)
            _plain_ticks(ax, "x", flops=unit == "flops")
            ax.set_xlabel(label)
            ax.set_ylabel(f"{info['metric']} ({info['split'].split()[0]})")
            ax.set_title(f"{domain}: {info['metric']} against {label}", fontsize="medium")
            ax.grid(alpha=0.3, which="both")
        axes[0, col].legend(fontsize="x-small")
    fig.tight_layout()
    return _save(fig, out / "budgets.png")


def plot_learning_curves(results: dict, out: Path) -> Path:
    """Training loss (lines) and validation loss (circles, same colour) of the first seed at the largest
    budget, per domain."""
    domains = list(results["domains"])
    fig, axes = _panels(len(domains))
    for ax, domain in zip(axes[0], domains):
        for k, row in enumerate(results["domains"][domain]["models"]):
            if not row["run_dir"]:
                continue
            log = out / row["run_dir"] / "metrics.jsonl"
            points = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
            train = [(p["step"], p["train_loss"]) for p in points if "train_loss" in p]
            val = [(p["step"], p["val_loss"]) for p in points if "val_loss" in p]
            style = {**_style(row), "color": f"C{k}"}
            if train:
                ax.plot(*zip(*train), label=f"{row['name']} (train)", **style)
            if val:
                ax.plot(*zip(*val), marker="o", ls="none", color=style["color"], zorder=6,
                        label=f"{row['name']} (val)")
        ax.set_title(domain)
        ax.set_xlabel("step")
        ax.set_ylabel("loss (log scale)")
        ax.set_yscale("log")
        _plain_ticks(ax)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="x-small", ncol=1)
    fig.tight_layout()
    return _save(fig, out / "learning_curves.png")


def plot_attention_and_positions(results: dict, out: Path, models: dict, datasets: dict) -> tuple[Path, Path]:
    """The last layer's first head on one training example per domain; the position similarities; both
    with a colour bar."""
    domains = list(results["domains"])
    fig_a, axes_a = _panels(len(domains), width=4.6, height=4)
    fig_p, axes_p = _panels(len(domains), width=4.6, height=4)
    for domain, ax_a, ax_p in zip(domains, axes_a[0], axes_p[0]):
        row = next(r for r in results["domains"][domain]["models"] if r["kind"] == "transformer")
        model = models[domain, row["name"]].cpu().eval()
        batch = one_example(datasets[domain], torch.device("cpu"))
        maps, _, _ = collect_attention(model, {k: v for k, v in batch.items() if k != LABELS})
        layer = len(maps) - 1
        attention = maps[layer][0, 0].float()  # example 0 (series: its first channel), head 0
        image = ax_a.imshow(attention.numpy(), cmap="viridis", vmin=0)
        fig_a.colorbar(image, ax=ax_a, fraction=0.046, pad=0.04, label="attention weight")
        ax_a.set_title(f"{domain}: layer {layer}, head 0 ({attention.shape[0]} tokens)", fontsize="medium")
        ax_a.set_xlabel("key token")
        ax_a.set_ylabel("query token")
        table = position_table(model)
        unit = torch.nn.functional.normalize(table.float(), dim=-1)
        image = ax_p.imshow((unit @ unit.T).numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
        fig_p.colorbar(image, ax=ax_p, fraction=0.046, pad=0.04, label="cosine similarity")
        ax_p.set_title(f"{domain}: cos(p_i, p_j), {table.shape[0]} positions", fontsize="medium")
        from matplotlib.ticker import MaxNLocator

        ax_p.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax_p.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax_a.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax_a.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax_p.set_xlabel("position j")
        ax_p.set_ylabel("position i")
    fig_a.tight_layout()
    fig_p.tight_layout()
    return _save(fig_a, out / "attention.png"), _save(fig_p, out / "positions.png")


def plot_attention_measures(results: dict, out: Path) -> Path | None:
    """Per domain: entropy (bars, nats) and mean distance in the domain's unit (line) of every layer/head."""
    domains = [d for d, info in results["domains"].items() if info.get("attention_measures")]
    if not domains:
        return None
    fig, axes = _panels(len(domains), rows=2, height=3)
    for col, domain in enumerate(domains):
        rows = results["domains"][domain]["attention_measures"]
        labels = [f"L{r['layer']}H{r['head']}" for r in rows]
        x = range(len(rows))
        ax = axes[0, col]
        ax.bar(x, [r["entropy"] for r in rows], color="C0")
        ax.plot(list(x), [r["uniform_entropy"] for r in rows], "k_", ms=18, label="uniform over the keys seen")
        ax.set_title(f"{domain}: attention entropy", fontsize="medium")
        ax.set_ylabel("nats")
        ax.set_xticks(list(x), labels, fontsize="x-small", rotation=90)
        ax.legend(fontsize="x-small")
        ax = axes[1, col]
        ax.bar(x, [r["distance_unit"] for r in rows], color="C2")
        ax.plot(list(x), [r["uniform_distance_unit"] for r in rows], "k_", ms=18, label="uniform over the keys seen")
        ax.legend(fontsize="x-small")
        ax.set_title(f"{domain}: mean attention distance", fontsize="medium")
        ax.set_ylabel(rows[0]["unit"])
        ax.set_xticks(list(x), labels, fontsize="x-small", rotation=90)
    fig.tight_layout()
    return _save(fig, out / "attention_measures.png")


def position_table(model) -> torch.Tensor:
    """The learned position vectors (n, d) of a model's tokenizer (image patches: the grid's;
    an encoder-decoder: the target's)."""
    params = dict(model.tokenizer.named_parameters())
    for name in ("positions.weight", "pos_grid", "target.positions.weight"):
        if name in params:
            return params[name].detach().cpu()
    raise ValueError(f"no learned position table in {type(model.tokenizer).__name__}")


def plot_forecasts(results: dict, out: Path, models: dict, datasets: dict) -> Path | None:
    """Channel 0 of the middle test window of the series domain: history, truth, every model (the
    transformer drawn last, on top, in a thick solid line)."""
    info = results["domains"].get("series")
    if info is None:
        return None
    fig, axes = _panels(1, width=10, height=3.8)
    ax = axes[0, 0]
    test = datasets["series"].test if datasets["series"].test is not None else datasets["series"].val
    item = test[len(test) // 2]
    history, truth = item[INPUTS][:, 0], item[TARGETS][:, 0]
    past, future = range(len(history)), range(len(history), len(history) + len(truth))
    ax.plot(past, history, color="0.55", lw=1, label="history")
    ax.plot(future, truth, color="black", lw=2, label="truth", zorder=4)
    for row in sorted(info["models"], key=lambda r: r["kind"] == "transformer"):
        with torch.no_grad():
            model = models["series", row["name"]].cpu().eval()
            prediction = model({INPUTS: item[INPUTS][None]})["prediction"][0, :, 0]
        ax.plot(future, prediction, label=row["name"], **_style(row))
    ax.set_title("series: the middle test window, channel 0 (standardised)")
    ax.set_xlabel("time step")
    ax.legend(fontsize="small", ncol=4)
    fig.tight_layout()
    return _save(fig, out / "forecast.png")


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=100)
    return path


def all_plots(results: dict, out: Path, models: dict, datasets: dict) -> list[Path]:
    """Every plot, in the order the report shows them."""
    plots = [plot_budgets(results, out), plot_learning_curves(results, out),
             *plot_attention_and_positions(results, out, models, datasets), plot_attention_measures(results, out),
             plot_forecasts(results, out, models, datasets)]
    return [p for p in plots if p is not None]


__all__ = ["all_plots", "plot_budgets", "plot_learning_curves", "plot_attention_and_positions",
           "plot_attention_measures", "plot_forecasts", "position_table"]
