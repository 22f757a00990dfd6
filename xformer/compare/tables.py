"""The tables of ``xformer compare``'s report: each a (header, rows, best) triple, ``best`` the indices of
the rows to mark (the best model and those tied with it), written as Markdown or HTML."""
from __future__ import annotations

import html

from .study import flops_words

COLUMNS = [("parameters", "parameters"), ("tokens_per_example", "tokens / example"),
           ("attention_flops", "attention FLOPs / example"), ("feed_forward_flops", "feed-forward FLOPs / example"),
           ("forward_flops", "forward FLOPs / example"), ("train_flops", "training FLOPs"),
           ("examples_per_second", "train examples / s"), ("wall_seconds", "wall s")]
METRIC_LABEL = {"test_bits_per_character": "test bits / char", "val_bits_per_character": "val bits / char",
                "test_accuracy": "test accuracy", "val_accuracy": "val accuracy",
                "test_mse": "test MSE (standardised)", "test_token_accuracy": "test greedy token accuracy"}
SECOND = {"text": ("test_loss", "test loss (nats)"), "images": ("test_loss", "test loss"),
          "series": ("test_mae", "test MAE"), "seq2seq": ("test_loss", "test loss (teacher-forced)"),
          "classify": ("test_loss", "test loss")}


def number(value) -> str:
    """Counts and rates from 1000 up with thousands separators (millions as "1.23 M"), others to 4 digits."""
    if value is None:
        return "—"
    if abs(value) >= 10**12:
        return f"{value / 1e12:.3g} T"
    if abs(value) >= 10**9:
        return f"{value / 1e9:.3g} G"
    if abs(value) >= 10**6:
        return f"{value / 1e6:.2f} M"
    if isinstance(value, int) or abs(value) >= 1000:
        return f"{round(value):,}"
    return f"{value:.4g}"


def pm(mean, std) -> str:
    """mean ± s, s to two significant digits."""
    if mean is None:
        return "—"
    return f"{mean:.4g} ± {(std or 0.0):.2g}"


def data_table(results: dict) -> tuple[list[str], list[list[str]], set]:
    """Each domain's data: name, source, split rule, items per split, what an item is."""
    header = ["domain", "data", "source", "split", "train / val / test items", "an item", "table on"]
    rows = []
    for domain, info in results["domains"].items():
        d = info.get("data", {})
        sizes = " / ".join(number(d.get("sizes", {}).get(s)) for s in ("train", "val", "test"))
        rows.append([domain, d.get("name", "?"), d.get("source", "?"), d.get("split", "?"), sizes,
                     d.get("item", "?"), info["split"] + (" (the data has no test split)"
                                                           if info["split"] == "validation" else "")])
    return header, rows, set()


def domain_table(domain: str, info: dict) -> tuple[list[str], list[list[str]], set]:
    """One row per model at the largest budget: sizes, FLOPs, speed, the metric ± s, its rank."""
    second_key, second_label = SECOND[domain]
    if info["metric"].startswith("val_"):
        second_key, second_label = "val_loss", "val loss"
    header = (["model"] + [label for _, label in COLUMNS]
              + [METRIC_LABEL.get(info["metric"], info["metric"]) + " (mean ± s)", second_label + " (mean ± s)",
                 "rank"])
    ranking, rows, best = info["ranking"], [], set()
    for i, row in enumerate(info["models"]):
        name = row["name"]
        rank = ranking["rank"].get(name)
        cell = "—" if rank is None else str(rank) + (" (best)" if name == ranking["best"] else "")
        if ranking["ties"].get(name):
            cell += f", tied with {', '.join(ranking['ties'][name])}"
        if name == ranking["best"] or name in ranking["tied_for_best"]:
            best.add(i)
        rows.append([name] + [number(row.get(key)) for key, _ in COLUMNS]
                    + [pm(row.get("metric"), row.get("metric_std")),
                       pm(row["metrics"].get(second_key), row["metrics_std"].get(second_key)), cell])
    return header, rows, best


def budget_table(info: dict) -> tuple[list[str], list[list[str]], set]:
    """One row per model, one column per budget: the metric (mean ± s) and the training FLOPs of a run."""
    names = list(info["curves"])
    budgets = list(dict.fromkeys(c["budget"] for curve in info["curves"].values() for c in curve))
    header = ["model"] + budgets
    rows = []
    for name in names:
        by = {c["budget"]: c for c in info["curves"][name]}
        rows.append([name] + [f"{pm(by[b]['metric'], by[b]['metric_std'])} ({flops_words(by[b]['train_flops'])})"
                              if b in by and by[b]["train_flops"] else
                              pm(by[b]["metric"], by[b]["metric_std"]) if b in by else "—" for b in budgets])
    return header, rows, set()


def attention_table(measures: list[dict]) -> tuple[list[str], list[list[str]], set]:
    unit = measures[0]["unit"]
    header = ["layer", "head", "entropy (nats)", "if uniform", "mean distance (tokens)", f"mean distance ({unit})",
              "if uniform"]
    rows = [[str(m["layer"]), str(m["head"]), f"{m['entropy']:.3f}", f"{m['uniform_entropy']:.3f}",
             f"{m['distance_tokens']:.2f}", f"{m['distance_unit']:.2f}", f"{m['uniform_distance_unit']:.2f}"]
            for m in measures]
    return header, rows, set()


def core_table(results: dict) -> tuple[list[str], list[list[str]], set]:
    """How each domain uses the one core: what a token is, length, mask, positions, head, loss."""
    cfg = results["config"]
    header = ["", *[d for d in results["domains"]]]
    described = {d: _describe(d, results["domains"][d]) for d in results["domains"]}
    keys = ["core", "token", "sequence", "mask", "positions", "pooling / head", "loss"]
    core = f"{cfg['n_layers']} layers, d_model {cfg['d_model']}, {cfg['n_heads']} heads, d_ff {cfg['d_ff']}"
    rows = [[key] + [core if key == "core" else described[d][key] for d in results["domains"]] for key in keys]
    return header, rows, set()


def _describe(domain: str, info: dict) -> dict[str, str]:
    row = next(r for r in info["models"] if r["kind"] == "transformer")
    sequences, source = row.get("sequences_per_example", 1), row.get("source_tokens", 0)
    n = (row["tokens_per_example"] - source) // sequences
    tok = row["experiment"]["model"]["tokenizer"].get("args", {})
    if domain == "text":
        return {"token": "one character", "sequence": f"{n} tokens", "mask": "causal (token i sees 0..i)",
                "positions": f"learned, 1-D ({n} x d)", "pooling / head": "none: LM head at every position, "
                "tied to the token embedding", "loss": "cross-entropy of the next character"}
    if domain == "images":
        p, side = tok.get("patch_size", 2), int((n - 1) ** 0.5)
        return {"token": f"a {p}x{p} patch of pixels (Conv2d, kernel = stride = {p}), plus [CLS]",
                "sequence": f"{n} tokens ({n - 1} patches + [CLS])", "mask": "none (every token sees every token)",
                "positions": f"learned, one per patch of the {side}x{side} grid, plus one for [CLS]",
                "pooling / head": "[CLS] token -> linear to the classes", "loss": "cross-entropy of the class"}
    if domain == "seq2seq":
        return {"token": "one digit or separator symbol", "sequence": f"source {source} + target {n} tokens "
                "(one example; lengths vary)", "mask": "source: padding; target: causal + padding; "
                "cross-attention to real source tokens", "positions": "learned, 1-D, source and target each",
                "pooling / head": "none: LM head at every target position, tied to the embedding",
                "loss": "cross-entropy of the next target token (teacher forcing); greedy decoding to test"}
    if domain == "classify":
        return {"token": f"{tok.get('patch_len', 8)} time steps of one channel (linear patch embedding, stride "
                         f"{tok.get('stride', 4)}), no RevIN (a window's level and scale carry its class)",
                "sequence": f"{sequences} sequence{'s' * (sequences != 1)} (one per channel) of {n} tokens",
                "mask": "none within a channel; channels never attend to each other",
                "positions": f"learned, 1-D ({n} x d)",
                "pooling / head": "mean over each channel's tokens, the channels' vectors concatenated -> linear "
                "to the classes", "loss": "cross-entropy of the class"}
    return {"token": f"{tok.get('patch_len', 16)} time steps of one channel (linear patch embedding, stride "
                     f"{tok.get('stride', 8)}), after RevIN",
            "sequence": f"{sequences} sequences (one per channel) of {n} tokens", "mask": "none within a channel; "
            "channels never attend to each other", "positions": f"learned, 1-D ({n} x d)",
            "pooling / head": "none: flatten N x d -> linear to the horizon, per channel; RevIN undone",
            "loss": "mean squared error"}


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def html_table(header: list[str], rows: list[list[str]], best: set | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(("<tr class='best'>" if i in (best or ()) else "<tr>")
                   + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for i, row in enumerate(rows))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


__all__ = ["data_table", "domain_table", "budget_table", "attention_table", "core_table", "markdown_table",
           "html_table", "number", "pm"]
