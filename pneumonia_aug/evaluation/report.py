"""Table 1 as reports: Markdown, CSV, a self-contained HTML page, the accuracy of each setting
and the claim as a picture (each GAN row's difference from its Original: a forest plot).

Pure presentation of the frame `evaluation.table.summarize` returns and the group's `Scale`
(`evaluation.groups`): every report states at what scale its numbers were made, what its
intervals are over (`evaluation.legend`: with the GAN design, `gan_seeds`), what one seed
cannot tell, and, with a plan, where each GAN row stands in it.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # no pyplot: no global state, no display needed
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from pneumonia_aug.evaluation.groups import Scale
from pneumonia_aug.evaluation.intervals import SEEDS, TEST_SET, is_interim
from pneumonia_aug.evaluation.legend import UNRECORDED, legend
from pneumonia_aug.evaluation.table import PAPER_METRICS, PAPER_TABLE1_VALUES
from pneumonia_aug.settings import ORIGINAL

_COLORS = {"Original": "tab:gray", "DCGAN": "tab:blue", "CGAN": "tab:orange"}
TITLE = "Test results beside Tung et al. Table 1"


UNINFORMATIVE = 0.5  # an interval of a proportion wider than this says nothing: not printed


def _fmt_stat(row: pd.Series, metric: str) -> str:
    """mean ± SD [95% interval], the interval kept inside [0, 1] (proportions), or marked
    uninformative where it is wider than half that range (two seeds: t = 12.7)."""
    mean, std = row[f"{metric}_mean"], row[f"{metric}_std"]
    lo, hi = row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]
    if pd.isna(mean):
        return "–"
    text = f"{mean:.3f}" + (f" ± {std:.3f}" if pd.notna(std) else "")
    if pd.isna(lo):
        return text
    if hi - lo > UNINFORMATIVE:
        return text + " [uninformative]"
    return text + f" [{max(lo, 0.0):.3f}, {min(hi, 1.0):.3f}]"


def _fmt_delta(row: pd.Series, metric: str) -> tuple[str, str, str]:
    """(Δ [interval]; p; p adjusted); the interval marked when it covers the test set only."""
    delta = row[f"delta_{metric}"]
    if pd.isna(delta):
        return "–", "", ""
    lo, hi = row[f"delta_{metric}_ci_low"], row[f"delta_{metric}_ci_high"]
    flat = row.get(f"delta_{metric}_no_spread", False)
    text = f"{delta:+.3f}" + (" (no spread)" if pd.notna(flat) and bool(flat) else "")
    if pd.notna(lo):
        text += f" [{lo:+.3f}, {hi:+.3f}]" + (" (test set only)" if row["interval"] == TEST_SET
                                              else "")
    p, adj = row[f"delta_{metric}_p"], row[f"delta_{metric}_p_holm"]
    if row["interval"] != SEEDS or pd.isna(p) or is_interim(row):
        return text, "", ""
    return text, f"{p:.3f}", f"{adj:.3f}"


def plan_lines(table: pd.DataFrame) -> list[str]:
    """`setting: interim: k of N planned seeds; ...` for each GAN row of a planned table."""
    if "plan_line" not in table:
        return []
    return [f"{row['setting']}: {row['plan_line']}" for _, row in table.iterrows()
            if isinstance(row["plan_line"], str)]


def _fmt_paper(value: float) -> str:
    return "" if pd.isna(value) else f"{value:.3f}"


def display_blocks(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The table as three short blocks of strings, one precision throughout: our results per
    setting; the paper's; each GAN row against its Original (the statistics)."""
    ours, paper, versus = [], [], []
    for _, row in table.iterrows():
        ours.append({"setting": row["setting"], "n": str(int(row["n_runs"]))}
                    | {name: _fmt_stat(row, metric) for metric, name in (
                        ("accuracy", "accuracy"), ("recall", "recall"),
                        ("precision", "precision"), ("specificity", "specificity"),
                        ("f1", "F1"), ("auroc", "AUROC"), ("ece", "ECE"),
                        ("brier", "Brier"))})
        paper.append({"setting": row["setting"]}
                     | {metric: _fmt_paper(row[f"paper_{metric}"]) for metric in PAPER_METRICS})
        if row["source"] != ORIGINAL:
            acc, p_acc, adj_acc = _fmt_delta(row, "accuracy")
            auroc, p_auroc, adj_auroc = _fmt_delta(row, "auroc")
            versus.append({"setting": row["setting"], "against": row["baseline"],
                           "pairs": str(int(row["n_paired_seeds"])), "Δ accuracy": acc,
                           "p": p_acc, "p adj": adj_acc, "Δ AUROC": auroc,
                           "p (AUROC)": p_auroc, "p adj (AUROC)": adj_auroc})
    blocks = [("Ours: mean ± SD over seeds [95% interval]", pd.DataFrame(ours)),
              ("Paper: Tung et al. Table 1 (one run each)", pd.DataFrame(paper))]
    if versus:
        blocks.append(("Each GAN setting against its Original (paired over seeds)",
                       pd.DataFrame(versus)))
    return blocks


def problems(table: pd.DataFrame) -> list[str]:
    """One line per setting with failed/missing runs or a note, so nothing is dropped silently."""
    lines = []
    for _, row in table.iterrows():
        parts = [row["missing_or_failed"], row["note"]]
        if row["n_missing_or_failed"] or row["n_runs"] == 0 or row["note"]:
            lines.append(f"{row['setting']}: " + "; ".join(p for p in parts if p))
    return lines


def to_markdown(table: pd.DataFrame, scale: Scale, gan_seeds: str = UNRECORDED) -> str:
    cell = lambda text: str(text).replace("|", "\\|")  # noqa: E731
    lines = [scale.line()]
    for title, frame in display_blocks(table):
        lines += ["", f"**{title}**", ""]
        lines += ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
        lines += ["| " + " | ".join(cell(v) for v in r) + " |"
                  for r in frame.itertuples(index=False)]
    found, plan = problems(table), plan_lines(table)
    lines += [""] * bool(plan) + [f"- {line}" for line in plan]
    lines += ["", legend(scale, gan_seeds, table), "",
              "Missing or failed runs and notes:" if found else "Missing or failed runs: none."]
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


def to_html(table: pd.DataFrame, scale: Scale, *figures: bytes | str | Path | Figure,
            title: str = TITLE, gan_seeds: str = UNRECORDED) -> str:
    """A single self-contained page: inline CSS and the charts (the accuracy per setting, the
    forest plot) as base64 PNGs, no external files."""
    images = "".join(f"<img alt='figure {i + 1}' src='data:image/png;base64,"
                     f"{base64.b64encode(_png_bytes(f)).decode('ascii')}'>"
                     for i, f in enumerate(figures))
    found = "".join(f"<li>{html.escape(line)}</li>" for line in problems(table)) or "<li>none</li>"
    style = ("body{font-family:sans-serif;margin:2em;color:#222}"
             "table{border-collapse:collapse;font-size:0.9em}"
             "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}"
             "th{background:#f0f0f0}tr:nth-child(even){background:#fafafa}"
             "td:first-child{text-align:left}img{max-width:100%}.scale{font-weight:bold}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p class='scale'>{html.escape(scale.line())}</p>"
            f"<p>{html.escape(legend(scale, gan_seeds, table))}</p>"
            + "".join(f"<h2>{html.escape(heading)}</h2>{frame.to_html(index=False)}"
                      for heading, frame in display_blocks(table))
            + "".join(f"<p class='plan'>{html.escape(line)}</p>" for line in plan_lines(table)) +
            f"{images}"
            f"<h2>Missing or failed runs and notes</h2><ul>{found}</ul></body></html>")


def _subtitle(scale: Scale) -> str:
    p = scale.parts
    return (f"profile {scale.profile}, {p.get('image_size')} px, {p.get('epochs')} epochs, "
            f"{scale.per_setting} seed(s) per setting"
            + ("" if scale.comparable_with_paper else "; not comparable with the paper"))


def accuracy_chart(table: pd.DataFrame, scale: Scale, error: str = "ci") -> Figure:
    """Test accuracy per setting as a point with its 95% CI or SD over seeds (no interval with
    one seed, and the legend says so), the paper's values as markers. Points, not bars: the
    axis starts well above zero, where a bar's length would mean nothing."""
    if error not in ("ci", "std"):
        raise ValueError(f"error must be 'ci' or 'std', not {error!r}")
    x = np.arange(len(table))
    mean = table["accuracy_mean"].to_numpy(float)
    yerr = table["accuracy_ci_high"] - mean if error == "ci" else table["accuracy_std"]
    sources = list(table["source"])
    fig = Figure(figsize=(max(7, 0.6 * len(table) + 3), 5))
    ax = fig.subplots()
    for i, source in enumerate(sources):
        ax.errorbar(x[i], mean[i], yerr=None if scale.one_seed else float(yerr.iloc[i]),
                    fmt="o", markersize=8, capsize=4, color=_COLORS[source])
    paper = ax.scatter(x, table["paper_accuracy"], marker="D", color="black", zorder=3,
                       label="paper (Table 1)")
    handles = [Line2D([], [], marker="o", linestyle="", color=_COLORS[s], label=f"{s} (ours)")
               for s in _COLORS if s in sources]
    bars = ("no interval: one seed" if scale.one_seed else
            f"lines: {'95% CI' if error == 'ci' else 'SD'} over seeds")
    handles.append(Patch(color="white", label=bars))
    ax.legend(handles=handles + [paper], loc="upper left",
              bbox_to_anchor=(1.0, 1.0))  # off the points
    ax.set_xticks(x, table["setting"], rotation=45, ha="right")
    low = np.nanmin(np.r_[mean - np.nan_to_num(yerr.to_numpy(float)),
                          table["paper_accuracy"].to_numpy(float), 1.0])
    ax.set_ylim(max(0.0, low - 0.05), 1.0)
    ax.set_ylabel("test accuracy")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"Test accuracy per setting\n{_subtitle(scale)}", fontsize=10)
    fig.tight_layout()
    return fig


def _per_seed(text: str) -> list[float]:
    """The `delta_*_per_seed` cell ("0:+0.0120;1:-0.0300") as values."""
    return [float(item.split(":")[1]) for item in str(text).split(";") if ":" in item]


def forest_plot(table: pd.DataFrame, scale: Scale) -> Figure:
    """Each GAN row's Δ test accuracy against its Original at the same r: the mean as a point,
    its interval as a line (95% CI over seeds, or over the test set only with one pair), each
    seed's own difference as a dot, the paper's Δ as a diamond, and zero as a line."""
    gan = table[table["delta_accuracy"].notna()].reset_index(drop=True)
    fig = Figure(figsize=(8, 1.2 + 0.7 * max(1, len(gan))))
    ax = fig.subplots()
    ax.axvline(0, color="grey", linewidth=1)
    if gan.empty:
        ax.text(0.5, 0.5, "no GAN row with a finished Original to compare with",
                ha="center", va="center", transform=ax.transAxes)
    paper_values = PAPER_TABLE1_VALUES
    for i, row in gan.iterrows():
        y = len(gan) - 1 - i
        color = _COLORS[row["source"]]
        low, high = row["delta_accuracy_ci_low"], row["delta_accuracy_ci_high"]
        if np.isfinite(low) and np.isfinite(high):
            ax.plot([low, high], [y, y], color=color, linewidth=2,
                    linestyle="-" if row["interval"] == SEEDS else "--")
        ax.plot(row["delta_accuracy"], y, "o", color=color, markersize=9)
        seeds = _per_seed(row["delta_accuracy_per_seed"])
        ax.plot(seeds, [y - 0.18] * len(seeds), ".", color="black", alpha=0.6)
        paper = (paper_values.get(row["setting"], {}).get("accuracy", np.nan)
                 - paper_values.get(row["baseline"], {}).get("accuracy", np.nan))
        if np.isfinite(paper):
            ax.plot(paper, y, "D", color="black", markersize=6, fillstyle="none")
    ax.set_yticks(range(len(gan)), [f"{s}\n- {b}" for s, b in
                                    zip(gan["setting"][::-1], gan["baseline"][::-1],
                                        strict=True)])
    ax.set_ylim(-0.7, max(1, len(gan)) - 0.3)
    ax.set_xlabel("Δ test accuracy (GAN setting minus its Original)")
    handles = [Line2D([], [], marker="o", linestyle="-", color="tab:blue",
                      label="mean, 95% CI over seeds (dashed: test set only)"),
               Line2D([], [], marker=".", linestyle="", color="black", label="each seed"),
               Line2D([], [], marker="D", linestyle="", color="black", fillstyle="none",
                      label="paper's Δ (Table 1)")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.set_title(f"Augmentation against its Original\n{_subtitle(scale)}", fontsize=10)
    fig.tight_layout()
    return fig
