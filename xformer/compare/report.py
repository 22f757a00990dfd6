"""The report folder of ``xformer compare``: report.md, report.html, results.json and four plots.

    learning_curves.png   training loss against step, one panel per domain, every trained model
    attention.png         the same layer and head of each domain's transformer on one example
    positions.png         cosine similarity of the learned position vectors, cos(p_i, p_j), per domain
    forecast.png          one test window of the series domain: history, truth and every model's forecast
"""
from __future__ import annotations

import html
import json
from pathlib import Path

import torch

from ..analysis.attention_maps import collect_attention
from ..batch import INPUTS, LABELS, TARGETS
from .flops import one_example

PLOTS = ("learning_curves.png", "attention.png", "positions.png", "forecast.png")
COLUMNS = [("parameters", "parameters"), ("tokens_per_example", "tokens / example"),
           ("attention_flops", "attention FLOPs / example"), ("feed_forward_flops", "feed-forward FLOPs / example"),
           ("forward_flops", "forward FLOPs / example"), ("examples_per_second", "train examples / s"),
           ("wall_seconds", "wall s")]
METRIC_LABEL = {"val_bits_per_character": "val bits / char", "test_accuracy": "test accuracy",
                "test_mse": "test MSE (standardised)", "test_token_accuracy": "test greedy token accuracy"}
SECOND = {"text": ("val_loss", "val loss (nats)"), "images": ("test_loss", "test loss"),
          "series": ("test_mae", "test MAE"), "seq2seq": ("test_loss", "test loss (teacher-forced)")}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _number(value) -> str:
    """Counts and rates from 1000 up with thousands separators (millions as "1.23 M"), others to 4 digits."""
    if value is None:
        return "—"
    if abs(value) >= 10**6:
        return f"{value / 1e6:.2f} M"
    if isinstance(value, int) or abs(value) >= 1000:
        return f"{round(value):,}"
    return f"{value:.4g}"


# ---- tables -----------------------------------------------------------------------------------------------
def domain_table(domain: str, info: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one domain's table."""
    second_key, second_label = SECOND[domain]
    header = ["model"] + [label for _, label in COLUMNS] + [METRIC_LABEL[info["metric"]], second_label]
    rows = []
    for row in info["models"]:
        rows.append([row["name"]] + [_number(row.get(key)) for key, _ in COLUMNS]
                    + [_number(row.get("metric")), _number(row["metrics"].get(second_key))])
    return header, rows


def core_table(results: dict) -> tuple[list[str], list[list[str]]]:
    """How each domain uses the one core: what a token is, length, mask, positions, head, loss."""
    cfg = results["config"]
    header = ["", *[d for d in results["domains"]]]
    described = {d: _describe(d, results["domains"][d]) for d in results["domains"]}
    keys = ["core", "token", "sequence", "mask", "positions", "pooling / head", "loss"]
    core = f"{cfg['n_layers']} layers, d_model {cfg['d_model']}, {cfg['n_heads']} heads, d_ff {cfg['d_ff']}"
    rows = [[key] + [core if key == "core" else described[d][key] for d in results["domains"]] for key in keys]
    return header, rows


def _describe(domain: str, info: dict) -> dict[str, str]:
    row = next(r for r in info["models"] if r["kind"] == "transformer")
    sequences, source = row.get("sequences_per_example", 1), row.get("source_tokens", 0)
    n = (row["tokens_per_example"] - source) // sequences
    if domain == "text":
        return {"token": "one character", "sequence": f"{n} tokens", "mask": "causal (token i sees 0..i)",
                "positions": f"learned, 1-D ({n} x d)", "pooling / head": "none: LM head at every position, "
                "tied to the token embedding", "loss": "cross-entropy of the next character"}
    if domain == "images":
        return {"token": "a 2x2 patch of pixels (Conv2d, kernel = stride = 2), plus [CLS]",
                "sequence": f"{n} tokens ({n - 1} patches + [CLS])", "mask": "none (every token sees every token)",
                "positions": f"learned, one per patch of the {int((n - 1) ** 0.5)}x{int((n - 1) ** 0.5)} grid, "
                "plus one for [CLS]", "pooling / head": "[CLS] token -> linear to 10 classes",
                "loss": "cross-entropy of the class"}
    if domain == "seq2seq":
        return {"token": "one digit or separator symbol", "sequence": f"source {source} + target {n} tokens "
                "(one example; lengths vary)", "mask": "source: padding; target: causal + padding; "
                "cross-attention to real source tokens", "positions": "learned, 1-D, source and target each",
                "pooling / head": "none: LM head at every target position, tied to the embedding",
                "loss": "cross-entropy of the next target token (teacher forcing); greedy decoding to test"}
    return {"token": "16 time steps of one channel (linear patch embedding, stride 8), after RevIN",
            "sequence": f"{sequences} sequences (one per channel) of {n} tokens", "mask": "none within a channel; "
            "channels never attend to each other", "positions": f"learned, 1-D ({n} x d)",
            "pooling / head": "none: flatten N x d -> linear to the horizon, per channel; RevIN undone",
            "loss": "mean squared error"}


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# ---- plots ------------------------------------------------------------------------------------------------
def plot_learning_curves(results: dict, out: Path) -> Path:
    plt = _plt()
    domains = list(results["domains"])
    fig, axes = plt.subplots(1, len(domains), figsize=(5 * len(domains), 3.6), squeeze=False)
    for ax, domain in zip(axes[0], domains):
        for row in results["domains"][domain]["models"]:
            log = out / row["run_dir"] / "metrics.jsonl"
            if not log.is_file():
                continue
            points = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
            points = [p for p in points if "train_loss" in p]
            ax.plot([p["step"] for p in points], [p["train_loss"] for p in points], label=row["name"], lw=1.2)
        ax.set_title(domain)
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.set_yscale("log")
        ax.legend(fontsize="small")
    fig.tight_layout()
    return _save(fig, out / "learning_curves.png")


def plot_attention_and_positions(results: dict, out: Path, models: dict, datasets: dict) -> tuple[Path, Path]:
    """The last layer's first head on one training example per domain; the position similarities."""
    plt = _plt()
    domains = list(results["domains"])
    fig_a, axes_a = plt.subplots(1, len(domains), figsize=(4.2 * len(domains), 4), squeeze=False)
    fig_p, axes_p = plt.subplots(1, len(domains), figsize=(4.2 * len(domains), 4), squeeze=False)
    for domain, ax_a, ax_p in zip(domains, axes_a[0], axes_p[0]):
        row = next(r for r in results["domains"][domain]["models"] if r["kind"] == "transformer")
        model = models[domain, row["name"]].cpu().eval()
        batch = one_example(datasets[domain], torch.device("cpu"))
        maps, _, _ = collect_attention(model, {k: v for k, v in batch.items() if k != LABELS})
        layer = len(maps) - 1
        attention = maps[layer][0, 0].float()  # example 0 (series: its first channel), head 0
        ax_a.imshow(attention.numpy(), cmap="viridis")
        ax_a.set_title(f"{domain}: layer {layer}, head 0 ({attention.shape[0]} tokens)", fontsize="medium")
        ax_a.set_xlabel("key")
        ax_a.set_ylabel("query")
        table = position_table(model)
        unit = torch.nn.functional.normalize(table.float(), dim=-1)
        ax_p.imshow((unit @ unit.T).numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
        ax_p.set_title(f"{domain}: cos(p_i, p_j), {table.shape[0]} positions", fontsize="medium")
    fig_a.tight_layout()
    fig_p.tight_layout()
    return _save(fig_a, out / "attention.png"), _save(fig_p, out / "positions.png")


def position_table(model) -> torch.Tensor:
    """The learned position vectors (n, d) of a model's tokenizer (image patches: the grid's;
    an encoder-decoder: the target's)."""
    params = dict(model.tokenizer.named_parameters())
    for name in ("positions.weight", "pos_grid", "target.positions.weight"):
        if name in params:
            return params[name].detach().cpu()
    raise ValueError(f"no learned position table in {type(model.tokenizer).__name__}")


def plot_forecasts(results: dict, out: Path, models: dict, datasets: dict) -> Path | None:
    """Channel 0 of the middle test window of the series domain: history, truth, every model."""
    info = results["domains"].get("series")
    if info is None:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 3.6))
    test = datasets["series"].test
    item = test[len(test) // 2]
    history, truth = item[INPUTS][:, 0], item[TARGETS][:, 0]
    past, future = range(len(history)), range(len(history), len(history) + len(truth))
    ax.plot(past, history, color="0.4", lw=1, label="history")
    ax.plot(future, truth, color="black", lw=1.5, label="truth")
    for row in info["models"]:
        with torch.no_grad():
            model = models["series", row["name"]].cpu().eval()
            prediction = model({INPUTS: item[INPUTS][None]})["prediction"][0, :, 0]
        ax.plot(future, prediction, lw=1.2, label=row["name"])
    ax.set_title("series: the middle test window, channel 0 (standardised)")
    ax.set_xlabel("time step")
    ax.legend(fontsize="small", ncol=3)
    fig.tight_layout()
    return _save(fig, out / "forecast.png")


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=100)
    _plt().close(fig)
    return path


# ---- the report -------------------------------------------------------------------------------------------
def write_report(results: dict, out: str | Path, models: dict, datasets: dict) -> None:
    """The report folder from ``run_comparison``'s results, its models ({(domain, name): model}) and the
    data of each domain."""
    out = Path(out)
    plots = [plot_learning_curves(results, out), *plot_attention_and_positions(results, out, models, datasets),
             plot_forecasts(results, out, models, datasets)]
    results["plots"] = [p.name for p in plots if p is not None]
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    c = results["config"]
    intro = (f"{results['date']}, {results['machine']}; core: {c['n_layers']} layers, d_model {c['d_model']}, "
             f"{c['n_heads']} heads, d_ff {c['d_ff']}; {c['steps']} steps of batch {c['batch_size']} per trained "
             f"model (AdamW, warmup + cosine), seed {c['seed']}; total {results['total_seconds']} s.")
    sections = [("The same core in each domain", core_table(results))]
    sections += [(f"{domain}", domain_table(domain, info)) for domain, info in results["domains"].items()]
    md = ["# xformer compare", "", intro, ""]
    body = [f"<h1>xformer compare</h1><p>{html.escape(intro)}</p>"]
    for title, (header, rows) in sections:
        md += [f"## {title}", "", _markdown_table(header, rows), ""]
        body.append(f"<h2>{html.escape(title)}</h2>{_html_table(header, rows)}")
    md += ["## Plots", ""] + [f"![{name}]({name})" for name in results["plots"]] + [""]
    body.append("<h2>Plots</h2>" + "".join(f'<p><img src="{name}" alt="{name}"></p>' for name in results["plots"]))
    md += ["FLOPs: one example's forward pass (see `xformer/compare/flops.py`); tokens / example: what the core "
           "reads. Metrics: text on the validation split (bits per character), the others on the test "
           "split; series MSE/MAE on the standardised scale; seq2seq by greedy decoding.", ""]
    (out / "report.md").write_text("\n".join(md))
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}img{max-width:100%}")
    (out / "report.html").write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>xformer compare"
                                     f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n")


__all__ = ["write_report", "domain_table", "core_table", "position_table", "PLOTS"]
