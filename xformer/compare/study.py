"""What the numbers of ``xformer compare`` allow one to say: spread over seeds, ties, ranks, crossovers.

Spread. Each trained model is run with seeds 0 .. n-1; a table shows mean ± s, with s the sample
standard deviation (ddof = 1; 0 for one seed, and for models with nothing to train).

Ties. Two models a, b are tied when their difference is no larger than the spread of either:

    |mean_a - mean_b| <= max(s_a, s_b)

(with one seed s = 0 and only equal means tie: a single run cannot call a tie, nor tell a win from
noise). The best model is the one with the best mean; every model tied with it is "tied for best".
A model's rank is 1 + the number of models better than it and not tied with it.

Crossovers. For each budget a model has a point (x, mean metric), x = training FLOPs (or wall
seconds); between budgets the curve is linear in log10(x). For the transformer T and a baseline B,
d(x) = (metric_T(x) - metric_B(x)) * (+1 if higher is better else -1) is evaluated at every x of
either curve inside the x range both cover; where d changes sign between two neighbouring x, the
crossing is interpolated linearly in log10(x). A model with nothing to train is a flat line.
"""
from __future__ import annotations

import math
import statistics

from .experiments import METRIC


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for fewer than two values)."""
    values = [float(v) for v in values]
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def is_tie(mean_a: float, std_a: float, mean_b: float, std_b: float) -> bool:
    """|mean_a - mean_b| <= max(std_a, std_b): the difference is within the spread of the seeds."""
    return abs(mean_a - mean_b) <= max(std_a, std_b)


def better(a: float, b: float, direction: str) -> bool:
    return a < b if direction == "min" else a > b


def ranking(rows: list[dict], direction: str) -> dict:
    """rows: {name, kind, metric, metric_std}. The best model, those tied with it, each model's rank and
    the models each one is tied with."""
    rows = [r for r in rows if r.get("metric") is not None and math.isfinite(r["metric"])]
    if not rows:
        return {"best": None, "tied_for_best": [], "rank": {}, "ties": {}}
    best = rows[0]
    for r in rows[1:]:
        if better(r["metric"], best["metric"], direction):
            best = r

    def tie(a, b):
        return is_tie(a["metric"], a.get("metric_std", 0.0), b["metric"], b.get("metric_std", 0.0))

    rank = {r["name"]: 1 + sum(better(o["metric"], r["metric"], direction) and not tie(o, r) for o in rows)
            for r in rows}
    ties = {r["name"]: [o["name"] for o in rows if o is not r and tie(o, r)] for r in rows}
    return {"best": best["name"], "tied_for_best": ties[best["name"]], "rank": rank, "ties": ties,
            "of": len(rows)}


def _at(curve: list[tuple[float, float]], x: float) -> float:
    """The curve (sorted (x, y) points, x > 0) at x, linear in log10(x); a one-point curve is flat."""
    if len(curve) == 1:
        return curve[0][1]
    for (x0, y0), (x1, y1) in zip(curve, curve[1:]):
        if x0 <= x <= x1:
            span = math.log10(x1) - math.log10(x0)
            if span == 0:  # equal, or so close (0.17 and 0.16999999999999998) that their logs are equal
                return y1
            t = (math.log10(x) - math.log10(x0)) / span
            return y0 + t * (y1 - y0)
    raise ValueError(f"{x} outside the curve")


def crossovers(transformer: list[tuple[float, float]], baseline: list[tuple[float, float]] | None,
               direction: str, flat: float | None = None) -> dict:
    """Where the transformer's curve crosses the baseline's (see the module docstring). ``baseline``: its
    (x, metric) points, or None with ``flat``: the metric of a model with nothing to train.
    Returns {"points": [{"x", "transformer_ahead_after": bool}], "overlap": (lo, hi) or None,
    "ahead": "transformer" | "baseline" | "tied" | None over the overlap when nothing crosses}."""
    t = sorted((x, y) for x, y in transformer if x > 0)
    b = sorted((x, y) for x, y in baseline if x > 0) if baseline is not None else None
    if not t or (b is not None and not b):
        return {"points": [], "overlap": None, "ahead": None}
    lo, hi = (t[0][0], t[-1][0]) if b is None else (max(t[0][0], b[0][0]), min(t[-1][0], b[-1][0]))
    if lo > hi:
        return {"points": [], "overlap": None, "ahead": None,
                "ranges": [(t[0][0], t[-1][0]), (b[0][0], b[-1][0])]}
    xs = sorted({x for x, _ in t + (b or []) if lo <= x <= hi})
    sign = 1.0 if direction == "max" else -1.0

    def d(x):
        return sign * (_at(t, x) - (flat if b is None else _at(b, x)))

    points = []
    for x0, x1 in zip(xs, xs[1:]):
        d0, d1 = d(x0), d(x1)
        if d0 == 0 or d0 * d1 >= 0:
            continue
        u = d0 / (d0 - d1)  # d is linear in log10(x) between neighbouring points of both curves
        points.append({"x": 10 ** (math.log10(x0) + u * (math.log10(x1) - math.log10(x0))),
                       "transformer_ahead_after": d1 > 0})
    values = [d(x) for x in xs]
    ahead = None
    if not points:
        ahead = "transformer" if min(values) > 0 else "baseline" if max(values) < 0 else "tied"
    return {"points": points, "overlap": (lo, hi), "ahead": ahead}


def flops_words(x: float) -> str:
    """1.2e9 -> "1.2 GFLOPs"."""
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= scale:
            return f"{x / scale:.3g} {prefix}FLOPs"
    return f"{x:.3g} FLOPs"


def crossover_sentences(domain: str, transformer: str, found: dict[str, dict], unit: str = "flops") -> list[str]:
    """Plain sentences, one per baseline: who passes whom and where, or who stays ahead."""
    words = flops_words if unit == "flops" else (lambda x: f"{x:.3g} s of training")
    lines = []
    for name, c in found.items():
        for p in c["points"]:
            first, second = (transformer, name) if p["transformer_ahead_after"] else (name, transformer)
            lines.append(f"{domain}: the {first} passes the {second} at about {words(p['x'])} of training.")
        if c["overlap"] is None and c.get("ranges"):
            (t_lo, t_hi), (b_lo, b_hi) = c["ranges"]
            lines.append(f"{domain}: the {transformer} ({words(t_lo)} to {words(t_hi)}) and the {name} ({words(b_lo)} "
                         f"to {words(b_hi)}) cover no common range: no crossover can be read.")
        if not c["points"] and c["overlap"] is not None:
            lo, hi = (words(v) for v in c["overlap"])
            span = f"at {lo}" if c["overlap"][0] == c["overlap"][1] else f"from {lo} to {hi}"
            if c["ahead"] == "tied":
                lines.append(f"{domain}: the {transformer} and the {name} touch but do not cross ({span}).")
            else:
                first, second = (transformer, name) if c["ahead"] == "transformer" else (name, transformer)
                lines.append(f"{domain}: at equal training {'FLOPs' if unit == 'flops' else 'time'} the {first} "
                             f"stays ahead of the {second} {span} (no crossover).")
    return lines


def summary_lines(results: dict) -> list[str]:
    """Per domain: the best model (mean ± s), the transformer's rank, the ties; then the crossovers."""
    lines = []
    for domain, info in results["domains"].items():
        r, label = info["ranking"], info["metric"]
        if r["best"] is None:
            continue
        rows = {m["name"]: m for m in info["models"]}
        best = rows[r["best"]]
        text = f"**{domain}** ({label}, {info['split']} split): best {r['best']} {_pm(best)}"
        if r["tied_for_best"]:
            text += f", tied with {', '.join(r['tied_for_best'])}"
        t = next((m["name"] for m in info["models"] if m["kind"] == "transformer"), None)
        if t is not None and t != r["best"]:
            text += f"; the {t} ranks {r['rank'][t]} of {r['of']} ({_pm(rows[t])})"
            if r["ties"][t]:
                text += f", tied with {', '.join(r['ties'][t])}"
        elif t is not None:
            text += " (the transformer)"
        lines.append(text + ".")
    seeds = results["config"]["seeds"]
    lines.append(f"{seeds} seed{'s' if seeds > 1 else ''} per trained model; "
                 + ("a tie is a difference within the larger standard deviation."
                    if seeds > 1 else "with one seed there is no spread: no difference can be called a tie or a "
                                      "win beyond noise (use --seeds 3)."))
    for domain, info in results["domains"].items():
        lines += info.get("crossover_sentences", [])
    return lines


def _pm(row: dict) -> str:
    return f"{row['metric']:.4g} ± {row.get('metric_std', 0.0):.2g}"


def direction(domain: str) -> str:
    return METRIC[domain][1]


__all__ = ["mean_std", "is_tie", "ranking", "crossovers", "crossover_sentences", "summary_lines", "flops_words"]
