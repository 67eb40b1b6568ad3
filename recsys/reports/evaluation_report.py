"""The per-model-version HTML evaluation report: one self-contained page a person can open anywhere.

Charts are embedded as base64 PNG and there is no JavaScript or external asset, so the file can be
copied out of the object store, mailed or archived and still render the same.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from html import escape
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from pyarrow import fs

CHOSEN_MODEL = "served"  # the ranking the batch run tunes and publishes; drawn first and highlighted
LEGACY_CHOSEN = "als"  # what versions evaluated before the served ranking was scored published


def chosen_model(metrics: dict[str, dict[str, float]]) -> str:
    """The published ranking's name in a version's metrics (the served ranking; ALS for older versions)."""
    return CHOSEN_MODEL if CHOSEN_MODEL in metrics or LEGACY_CHOSEN not in metrics else LEGACY_CHOSEN
METRIC_LABELS = {"ndcg": "NDCG@{k}", "precision": "P@{k}", "map": "MAP@{k}", "recall": "R@{k}", "coverage": "coverage"}
STYLE = """body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}td:first-child,th:first-child{text-align:left}
tr.best,tr.chosen{background:#fff4c2}img{max-width:100%}"""


@dataclass(frozen=True)
class Trial:
    """One hyper-parameter trial of the ALS tuning."""

    number: int
    params: dict[str, float]  # e.g. {"rank": 64, "reg_param": 1.0, "alpha": 5.0, "max_iter": 15}
    score: float  # validation NDCG@k
    seconds: float  # wall time of the trial


def _png(fig: Figure) -> str:
    """An <img> with the figure inlined, so the page needs no side files."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{escape(fig.get_label())}" src="data:image/png;base64,{data}">'


def _table(header: list[str], rows: list[list[str]], row_classes: list[str] | None = None) -> str:
    """Cells arrive already escaped (some carry <b>); the header is escaped here."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    classes = row_classes or [""] * len(rows)
    body = "".join(
        f"<tr{f' class={cls!r}' if cls else ''}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>"
        for row, cls in zip(rows, classes, strict=True)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _order(metrics: dict[str, dict[str, float]]) -> tuple[list[str], list[str]]:
    """Models with the chosen one first, then metric keys in the usual order (unknown ones after)."""
    models = sorted(metrics, key=lambda m: m != chosen_model(metrics))  # stable: keeps the caller's order otherwise
    seen = {key for values in metrics.values() for key in values}
    keys = [key for key in METRIC_LABELS if key in seen] + sorted(seen - METRIC_LABELS.keys())
    return models, keys


def _metrics_section(metrics: dict[str, dict[str, float]], k: int) -> str:
    """Grouped bars (one group per metric) and the models x metrics table, best per column in bold."""
    models, keys = _order(metrics)
    labels = [METRIC_LABELS.get(key, key).format(k=k) for key in keys]
    fig = Figure(figsize=(8, 3.5), label=f"metrics at k={k}")
    ax = fig.add_subplot()
    width = 0.8 / max(len(models), 1)
    for i, model in enumerate(models):
        chosen = model == chosen_model(metrics)
        ax.bar([j + i * width for j in range(len(keys))], [metrics[model].get(key, math.nan) for key in keys],
               width, label=f"{model} (chosen)" if chosen else model, color=f"C{i}",
               alpha=1.0 if chosen else 0.55, edgecolor="black" if chosen else "none")
    ax.set_xticks([j + width * (len(models) - 1) / 2 for j in range(len(keys))], labels)
    ax.set_ylabel("score")
    ax.legend(fontsize="small")
    best = {key: max((v for v in (metrics[m].get(key, math.nan) for m in models) if math.isfinite(v)), default=None)
            for key in keys}
    rows = []
    for model in models:
        cells = [escape(model)]
        for key in keys:
            value = metrics[model].get(key)
            text = "-" if value is None else f"{value:.4f}"
            cells.append(f"<b>{text}</b>" if value is not None and value == best[key] else text)
        rows.append(cells)
    classes = ["chosen" if model == chosen_model(metrics) else "" for model in models]
    return f"<h2>Metrics at k={k}</h2>{_png(fig)}" + _table(["model", *labels], rows, classes)


def _tuning_section(trials: list[Trial], k: int) -> str:
    """Score per trial with the best-so-far step line, and every trial's parameters; or why there are none."""
    if not trials:
        return "<h2>Tuning</h2><p>Tuning was off for this run: the model used the configured parameters.</p>"
    trials = sorted(trials, key=lambda t: t.number)
    best = max(trials, key=lambda t: t.score)
    numbers, scores = [t.number for t in trials], [t.score for t in trials]
    fig = Figure(figsize=(8, 3.5), label="tuning curve")
    ax = fig.add_subplot()
    ax.plot(numbers, scores, "o", alpha=0.6, label="trial")
    ax.step(numbers, [max(scores[: i + 1]) for i in range(len(scores))], where="post", label="best so far")
    ax.plot([best.number], [best.score], "*", color="C3", markersize=14, label=f"best (trial {best.number})")
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"validation NDCG@{k}")
    ax.legend(fontsize="small")
    rows = [[f"{t.number}{' ★ best' if t is best else ''}",
             escape(", ".join(f"{name}={value:g}" for name, value in t.params.items())),
             f"{t.score:.4f}", f"{t.seconds:.1f}"] for t in trials]
    classes = ["best" if t is best else "" for t in trials]
    header = ["trial", "params", f"NDCG@{k}", "seconds"]
    return f"<h2>Tuning ({len(trials)} trials)</h2>{_png(fig)}" + _table(header, rows, classes)


def render_report(version: str, metrics: dict[str, dict[str, float]], trials: list[Trial],
                  details: dict[str, str], k: int) -> str:
    """The whole page as one string, so the batch run can store it next to the model version it describes."""
    title = escape(f"Model {version} evaluation")
    details_table = _table(["", "value"], [[escape(str(key)), escape(str(value))] for key, value in details.items()])
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{STYLE}</style></head><body><h1>{title}</h1><h2>Details</h2>{details_table}"
            f"{_metrics_section(metrics, k)}{_tuning_section(trials, k)}</body></html>\n")


def comparison_chart(version: str, metrics: dict[str, dict[str, float]],
                     earlier: list[tuple[str, dict[str, float]]], k: int) -> str:
    """An <img>: one version's ALS against its baselines and the ALS of earlier versions, grouped per metric.

    `metrics` is the version's evaluation (model -> metric -> value); `earlier` holds (version, ALS metrics)
    pairs, newest first. Earlier versions are drawn in greys after the version's own models.
    """
    models, keys = _order(metrics)
    labels = [METRIC_LABELS.get(key, key).format(k=k) for key in keys]
    chosen = chosen_model(metrics)
    series = [(f"{version} {model}{' (chosen)' if model == chosen else ''}", metrics[model], f"C{i}",
               model == chosen) for i, model in enumerate(models)]
    greys = [str(round(0.3 + 0.5 * n / max(len(earlier), 1), 2)) for n in range(len(earlier))]
    series += [(f"{name} {chosen}", values, grey, False)
               for (name, values), grey in zip(earlier, greys, strict=True)]
    fig = Figure(figsize=(9, 3.8), label=f"{version} against its baselines and earlier versions")
    ax = fig.add_subplot()
    width = 0.8 / max(len(series), 1)
    for i, (name, values, color, chosen) in enumerate(series):
        ax.bar([j + i * width for j in range(len(keys))], [values.get(key, math.nan) for key in keys], width,
               label=name, color=color, alpha=1.0 if chosen else 0.7, edgecolor="black" if chosen else "none")
    ax.set_xticks([j + width * (len(series) - 1) / 2 for j in range(len(keys))], labels)
    ax.set_ylabel("score")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _png(fig)


def read_report(uri: str) -> str | None:
    """The page write_report wrote at `uri` (a local path or a pyarrow URI); None when there is none."""
    filesystem, path = fs.FileSystem.from_uri(uri if "://" in uri else str(Path(uri).resolve()))
    try:
        with filesystem.open_input_stream(path) as stream:
            return stream.read().decode("utf-8")
    except FileNotFoundError:
        return None


def write_report(html: str, uri: str) -> None:
    """Write the page where the run's artifacts live: a local path or any URI pyarrow can open (s3://, gs://...)."""
    filesystem, path = fs.FileSystem.from_uri(uri if "://" in uri else str(Path(uri).resolve()))
    if isinstance(filesystem, fs.LocalFileSystem):
        filesystem.create_dir(str(Path(path).parent), recursive=True)
    with filesystem.open_output_stream(path, metadata={"Content-Type": "text/html; charset=utf-8"}) as out:
        out.write(html.encode("utf-8"))
