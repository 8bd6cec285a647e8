"""Table 1 as reports: Markdown, CSV, a self-contained HTML page and a bar chart.

Pure presentation of the frame `evaluation.table.summarize` returns and the group's `Scale`
(`evaluation.groups`): every report states at what scale its numbers were made, what its
intervals are over, and what one seed cannot tell.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # no pyplot: no global state, no display needed
from matplotlib.patches import Patch

from pneumonia_aug.evaluation.groups import Scale
from pneumonia_aug.evaluation.table import PAPER_METRICS, SEEDS, TEST_SET
from pneumonia_aug.settings import parse_setting

_COLORS = {"Original": "tab:gray", "DCGAN": "tab:blue", "CGAN": "tab:orange"}
TITLE = "Test results beside Tung et al. Table 1"
LEGEND_SEEDS = (
    "Ours: mean ± SD over seeds [95% t-interval of the mean]; paper: Tung et al. Table 1 (one "
    "run each). Δacc, ΔAUROC: the setting minus Original at the same r, seed by seed, averaged "
    "over the n seeds both finished (n pairs, in the cell); [95% CI] and p (two-sided) are "
    "across training runs, from the paired t-test over those seeds (each row on its own "
    "differences, so a setting that trains less stably than the others does not distort the "
    "other rows); no p-value with fewer than 2 pairs (one pair: the bracket covers the test "
    "set only); p adj: Holm-adjusted over the table's GAN rows.")
LEGEND_ONE_SEED = (
    "ONE SEED per setting: one training run each, so nothing here measures how much a setting "
    "varies between training runs (seed to seed, test accuracy moves by a few points). No "
    "p-values. Δacc is the difference between two single runs; its [interval] covers only "
    "which images happen to be in the test set (test set only), not training variance, so it "
    "cannot say that augmentation helps. Ours: the run's value; paper: Tung et al. Table 1.")


def legend(scale: Scale) -> str:
    return LEGEND_ONE_SEED if scale.one_seed else LEGEND_SEEDS


def _fmt_stat(row: pd.Series, metric: str) -> str:
    mean, std = row[f"{metric}_mean"], row[f"{metric}_std"]
    lo, hi = row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]
    if pd.isna(mean):
        return "–"
    text = f"{mean:.3f}" + (f" ± {std:.3f}" if pd.notna(std) else "")
    return text + (f" [{lo:.3f}, {hi:.3f}]" if pd.notna(lo) else "")


def _fmt_delta(row: pd.Series, metric: str) -> tuple[str, str, str]:
    """(Δ [interval] (what it is over), n pairs; p; p adjusted)."""
    delta = row[f"delta_{metric}"]
    if pd.isna(delta):
        return "", "", ""
    lo, hi = row[f"delta_{metric}_ci_low"], row[f"delta_{metric}_ci_high"]
    text = f"{delta:+.3f}"
    if pd.notna(lo):
        text += f" [{lo:+.3f}, {hi:+.3f}]" + (" (test set only)" if row["interval"] == TEST_SET
                                              else "")
    pairs = int(row["n_paired_seeds"])
    text += f", {pairs} pair" + ("s" if pairs != 1 else "")
    p, adj = row[f"delta_{metric}_p"], row[f"delta_{metric}_p_holm"]
    if row["interval"] != SEEDS or pd.isna(p):
        return text, "", ""
    return text, f"{p:.3g}", f"{adj:.3g}"


def display_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The table as short strings: ours next to the paper's value per metric, then ΔAcc and
    ΔAUROC with their p-values."""
    rows = []
    for _, row in table.iterrows():
        out = {"setting": row["setting"], "n": str(int(row["n_runs"]))}
        for metric in ("accuracy", "recall", "precision", "specificity", "f1", "auroc"):
            out[metric] = _fmt_stat(row, metric)
            if metric in PAPER_METRICS:
                paper = row[f"paper_{metric}"]
                digits = 5 if metric == "accuracy" else 3  # as printed in Table 1
                out[f"paper {metric}"] = "" if pd.isna(paper) else f"{paper:.{digits}f}"
        out["Δacc vs Original"], out["p"], out["p adj"] = _fmt_delta(row, "accuracy")
        out["ΔAUROC vs Original"], out["p AUROC"], out["p adj AUROC"] = _fmt_delta(row, "auroc")
        rows.append(out)
    return pd.DataFrame(rows)


def problems(table: pd.DataFrame) -> list[str]:
    """One line per setting with failed/missing runs or a note, so nothing is dropped silently."""
    lines = []
    for _, row in table.iterrows():
        parts = [row["missing_or_failed"], row["note"]]
        if row["n_missing_or_failed"] or row["n_runs"] == 0 or row["note"]:
            lines.append(f"{row['setting']}: " + "; ".join(p for p in parts if p))
    return lines


def to_markdown(table: pd.DataFrame, scale: Scale) -> str:
    frame = display_frame(table)
    cell = lambda text: str(text).replace("|", "\\|")  # noqa: E731
    lines = [scale.line(), ""]
    lines += ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in frame.itertuples(index=False)]
    found = problems(table)
    lines += ["", legend(scale), "", "Missing or failed runs and notes:" if found else
              "Missing or failed runs: none."]
    lines += [f"- {line}" for line in found]
    return "\n".join(lines) + "\n"


def to_csv(table: pd.DataFrame, path: str | Path) -> Path:
    """Every numeric column, unrounded, for later analysis (per-seed differences included)."""
    path = Path(path)
    table.to_csv(path, index=False)
    return path


def _png_bytes(figure: bytes | str | Path | Figure) -> bytes:
    if isinstance(figure, Figure):
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=120)
        return buffer.getvalue()
    return figure if isinstance(figure, bytes) else Path(figure).read_bytes()


def to_html(table: pd.DataFrame, scale: Scale, figure: bytes | str | Path | Figure,
            title: str = TITLE) -> str:
    """A single self-contained page: inline CSS and the chart as a base64 PNG, no external files."""
    png = base64.b64encode(_png_bytes(figure)).decode("ascii")
    found = "".join(f"<li>{html.escape(line)}</li>" for line in problems(table)) or "<li>none</li>"
    style = ("body{font-family:sans-serif;margin:2em;color:#222}"
             "table{border-collapse:collapse;font-size:0.9em}"
             "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}"
             "th{background:#f0f0f0}tr:nth-child(even){background:#fafafa}"
             "td:first-child{text-align:left}img{max-width:100%}.scale{font-weight:bold}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p class='scale'>{html.escape(scale.line())}</p>"
            f"<p>{html.escape(legend(scale))}</p>{display_frame(table).to_html(index=False)}"
            f"<img alt='test accuracy per setting' src='data:image/png;base64,{png}'>"
            f"<h2>Missing or failed runs and notes</h2><ul>{found}</ul></body></html>")


def bar_chart(table: pd.DataFrame, scale: Scale, error: str = "ci") -> Figure:
    """Test accuracy per setting (one bar per row), error bars = 95% CI or std over seeds (none
    with one seed, and the legend says so), the paper's values as markers."""
    if error not in ("ci", "std"):
        raise ValueError(f"error must be 'ci' or 'std', not {error!r}")
    x = np.arange(len(table))
    mean = table["accuracy_mean"].to_numpy(float)
    yerr = table["accuracy_ci_high"] - mean if error == "ci" else table["accuracy_std"]
    sources = [parse_setting(s).source for s in table["setting"]]
    fig = Figure(figsize=(max(7, 0.6 * len(table) + 3), 5))
    ax = fig.subplots()
    ax.bar(x, mean, yerr=None if scale.one_seed else yerr.to_numpy(float), capsize=3,
           color=[_COLORS[s] for s in sources])
    paper = ax.scatter(x, table["paper_accuracy"], marker="D", color="black", zorder=3,
                       label="paper (Table 1)")
    handles = [Patch(color=_COLORS[s], label=f"{s} (ours)") for s in _COLORS if s in sources]
    bars = ("no error bars: one seed" if scale.one_seed else
            f"error bars: {'95% CI' if error == 'ci' else 'SD'} over seeds")
    handles.append(Patch(color="white", label=bars))
    ax.legend(handles=handles + [paper], loc="upper left",
              bbox_to_anchor=(1.0, 1.0))  # off the bars
    ax.set_xticks(x, table["setting"], rotation=45, ha="right")
    low = np.nanmin(np.r_[mean, table["paper_accuracy"].to_numpy(float), 1.0])
    ax.set_ylim(max(0.0, low - 0.1), 1.0)
    ax.set_ylabel("test accuracy")
    p = scale.parts
    subtitle = (f"profile {scale.profile}, {p.get('image_size')} px, {p.get('epochs')} epochs, "
                f"{scale.per_setting} seed(s) per setting"
                + ("" if scale.comparable_with_paper else "; not comparable with the paper"))
    ax.set_title(f"Test accuracy per setting\n{subtitle}", fontsize=10)
    fig.tight_layout()
    return fig
