"""The report folder of ``xformer compare``: report.md, report.html, results.json and the plots (:mod:`.plots`).

Both reports open with a summary computed from the numbers (:func:`.study.summary_lines`: per domain the
best model, the transformer's rank, the ties; the crossovers), then the data of each domain, the tables
(every metric as mean ± sample standard deviation over the seeds) and the plots. report.html is one
self-contained file: the plots are inlined as base64 PNGs, the style sheet is in the page (screen and print).
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from .inside import attention_measures
from .plots import all_plots
from .study import flops_words, summary_lines
from .tables import (attention_table, budget_table, core_table, data_table, domain_table, html_table,
                     markdown_table)

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1150px;margin:2em auto;
 padding:0 1em;color:#222;background:#fff;line-height:1.45}
h1{border-bottom:2px solid #c33;padding-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}
.scroll{overflow-x:auto;max-width:100%;margin:.6em 0}
table{border-collapse:collapse;font-size:.9em;font-variant-numeric:tabular-nums}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}tr.best td{background:#eef7ee;font-weight:600}
.summary{background:#fff8e6;border-left:4px solid #e0a800;padding:.5em 1em}.summary ul{padding-left:1.2em}
.note{color:#555;font-size:.9em}figure{margin:1em 0}img{display:block;max-width:100%;height:auto}
figcaption{color:#555;font-size:.9em}code{overflow-wrap:anywhere}
@media (max-width:40em){body{margin:1em auto;padding:0 .6em}h1{font-size:1.6em}td,th{min-width:6.5em;padding:3px 5px}}
@page{size:A4 landscape;margin:12mm}
@media print{body{max-width:none;margin:0;padding:0;font-size:9pt}.scroll{overflow:visible}table{font-size:8pt}
 h2{break-after:avoid}section,table,tr,figure{break-inside:avoid}img{max-height:165mm;width:auto}
 .summary{background:none;border-left-color:#999}}
"""
CAPTION = {
    "budgets.png": "Each domain's metric on the split its table is ranked on (mean ± s over {seeds}) against "
                   "training FLOPs (top) and wall seconds (bottom); dotted verticals: crossovers of the transformer "
                   "with a baseline.",
    "learning_curves.png": "Training loss (lines) and validation loss (circles).",
    "attention.png": "The last layer's first head of each transformer on one training example.",
    "attention_measures.png": "Attention entropy (nats) and mean attention distance in the domain's unit, per "
                              "layer (L) and head (H); black marks: the same for attention spread uniformly over "
                              "the keys each query sees.",
    "positions.png": "Cosine similarity of the learned position vectors.",
    "forecast.png": "The middle test window of the series domain, channel 0: history, truth, every model.",
}


def caption(name: str, results: dict) -> str:
    """A plot's caption with what it shows: the number of seeds its means are over (budgets.png), or the one run
    each model's curve or map comes from (every other plot: the first seed at the largest budget)."""
    n = len(results["seeds"])
    text = CAPTION.get(name, name).format(seeds=f"{n} seed{'s' * (n != 1)}")
    if name == "budgets.png":
        return text
    last = results["budgets"][-1]
    budget = f"{last['steps']} steps" + (f", at most {last['seconds']:g} s" if last["seconds"] else "")
    return f"{text} Seed {results['seeds'][0]}, {budget} (the first seed at the largest budget)."


def _html_inline(text: str) -> str:
    """**bold** -> <strong>bold</strong> in an escaped line."""
    parts = html.escape(text).split("**")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))


def write_report(results: dict, out: str | Path, models: dict, datasets: dict) -> None:
    """The report folder from ``run_comparison``'s results, its models ({(domain, name): model}: the first
    seed at the largest budget) and the data of each domain."""
    out = Path(out)
    for domain, info in results["domains"].items():
        row = next((r for r in info["models"] if r["kind"] == "transformer"), None)
        info["attention_measures"] = None if row is None else attention_measures(
            domain, models[domain, row["name"]], datasets[domain],
            row["experiment"]["model"]["tokenizer"].get("args", {}))
    plots = all_plots(results, out, models, datasets)
    results["plots"] = [p.name for p in plots]
    results["summary"] = summary_lines(results)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    c = results["config"]
    budgets = ", ".join(f"{b['steps']} steps" + (f" (at most {b['seconds']:g} s)" if b["seconds"] else "")
                        for b in results["budgets"])
    v = results["versions"]
    intro = (f"{results['date']}, {results['machine']}, device {results['device']}; xformer {v['xformer']}, Python "
             f"{v['python']}; core: {c['n_layers']} layers, d_model {c['d_model']}, "
             f"{c['n_heads']} heads, d_ff {c['d_ff']}; budgets: {budgets}, batch {c['batch_size']} (AdamW, "
             f"warmup + cosine); seeds {', '.join(map(str, results['seeds']))}; total {results['total_seconds']} s.")
    sections = [("Data", data_table(results), None), ("The same core in each domain", core_table(results), None)]
    for domain, info in results["domains"].items():
        note = (f"Ranked by {info['metric']} on the {info['split']} split (the validation split picked each "
                f"run's best checkpoint); mean ± sample standard deviation over {c['seeds']} seed(s); "
                f"training FLOPs = 3 x forward FLOPs x examples seen at the largest budget.")
        sections.append((domain, domain_table(domain, info), note))
        if len(results["budgets"]) > 1:
            sections.append((f"{domain}: by budget", budget_table(info),
                             f"{info['metric']} on the {info['split']} split at each budget, mean ± s over "
                             f"{c['seeds']} seed{'s' * (c['seeds'] != 1)} (in brackets: training FLOPs of a run)."))
        if info.get("attention_measures"):
            sections.append((f"{domain}: inside the transformer", attention_table(info["attention_measures"]),
                             "Per layer and head on up to 16 validation examples: entropy of a query's attention "
                             "(nats) and mean distance to the keys it attends to, in tokens and in the domain's "
                             "unit (docs/compare.md)."))
    summary = results["summary"]
    md = ["# xformer compare", "", intro, "", f"Command: `{results['command']}`", "", "## Summary", ""]
    md += [f"- {line}" for line in summary] + [""]
    body = [f"<h1>xformer compare</h1><p class='note'>{html.escape(intro)}</p><p class='note'>Command: <code>"
            f"{html.escape(results['command'])}</code></p><h2>Summary</h2>"
            "<div class='summary'><ul>" + "".join(f"<li>{_html_inline(line)}</li>" for line in summary)
            + "</ul></div>"]
    for title, (header, rows, best), note in sections:
        md += [f"## {title}", "", markdown_table(header, rows), ""] + ([note, ""] if note else [])
        body.append(f"<section><h2>{html.escape(title)}</h2><div class='scroll'>{html_table(header, rows, best)}"
                    + "</div>" + (f"<p class='note'>{html.escape(note)}</p>" if note else "") + "</section>")
    md += ["## Plots", ""]
    body.append("<h2>Plots</h2>")
    for name in results["plots"]:
        md += [f"![{name}]({name})", "", f"*{caption(name, results)}*", ""]
        data = base64.b64encode((out / name).read_bytes()).decode("ascii")
        body.append(f"<figure><img src='data:image/png;base64,{data}' alt='{name}'>"
                    f"<figcaption>{html.escape(caption(name, results))}</figcaption></figure>")
    tail = ("FLOPs: one example's forward pass (xformer/compare/flops.py); training FLOPs = 3 x that x steps x "
            "batch. Every domain's table is on its test split unless the Data table says otherwise (series MSE/MAE "
            "on the standardised scale; "
            "seq2seq by greedy decoding); a tie is a difference within the larger standard deviation of the two "
            "(docs/compare.md).")
    md += [tail, ""]
    body.append(f"<p class='note'>{html.escape(tail)}</p>")
    (out / "report.md").write_text("\n".join(md), encoding="utf-8")
    (out / "report.html").write_text(f"<!doctype html><html lang='en'><head><meta charset='utf-8'><meta "
                                     f"name='viewport' content='width=device-width, initial-scale=1'><title>xformer "
                                     f"compare</title><style>{STYLE}</style></head><body>{''.join(body)}"
                                     f"</body></html>\n", encoding="utf-8")


__all__ = ["write_report", "flops_words"]
