"""Our results beside the paper's Table 1, with seed statistics and paired tests (PROTOCOL.md).

Pure functions on DataFrames: the tracking layer queries the runs and their per-image test
predictions and passes them in; nothing here talks to MLflow.

- `summarize` turns runs (one row per classifier run) into one row per setting: mean, std and
  a 95% t-interval over seeds for every test metric, the paper's value, and the difference to
  `Original` at the same real fraction with a paired bootstrap over seeds and test images.
- `to_markdown`, `to_csv`, `to_html` and `bar_chart` present that table.
"""

from __future__ import annotations

import base64
import html
import io
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # no pyplot: no global state, no display needed
from matplotlib.patches import Patch
from scipy import stats

from pneumonia_aug.metrics import THRESHOLD
from pneumonia_aug.settings import ORIGINAL, PAPER_TABLE1, Setting, parse_setting

METRICS = ("accuracy", "precision", "recall", "specificity", "f1", "auroc")
PAPER_METRICS = ("accuracy", "recall", "precision")
DELTA_METRICS = ("accuracy", "auroc")  # compared with Original by the paired bootstrap
FINISHED = "FINISHED"

# Tung et al., Table 1 (accuracy given there in %, here as a fraction; recall and precision
# as printed). Each row is a single run on the 624 test images.
PAPER_TABLE1_VALUES = {
    "Original-0.3-0.0": {"accuracy": 0.78365, "recall": 0.997, "precision": 0.744},
    "Original-1.0-0.0": {"accuracy": 0.89423, "recall": 0.997, "precision": 0.857},
    "CGAN-0.3-0.3": {"accuracy": 0.80929, "recall": 0.997, "precision": 0.767},
    "CGAN-0.3-0.6": {"accuracy": 0.74359, "recall": 0.997, "precision": 0.710},
    "CGAN-0.3-1.0": {"accuracy": 0.84295, "recall": 0.997, "precision": 0.800},
    "CGAN-1.0-0.3": {"accuracy": 0.90385, "recall": 0.995, "precision": 0.870},
    "CGAN-1.0-0.6": {"accuracy": 0.90545, "recall": 0.992, "precision": 0.874},
    "DCGAN-0.3-0.3": {"accuracy": 0.80449, "recall": 0.997, "precision": 0.763},
    "DCGAN-0.3-0.6": {"accuracy": 0.75962, "recall": 0.997, "precision": 0.723},
    "DCGAN-0.3-1.0": {"accuracy": 0.79968, "recall": 0.995, "precision": 0.759},
    "DCGAN-1.0-0.3": {"accuracy": 0.91879, "recall": 0.997, "precision": 0.886},
    "DCGAN-1.0-0.6": {"accuracy": 0.92468, "recall": 0.995, "precision": 0.896},
}


def baseline_of(setting: Setting) -> str:
    """The `Original` setting a GAN setting is compared with: same real fraction r, g = 0."""
    return Setting(ORIGINAL, setting.real_fraction, 0.0).name


def _ordered(names: Iterable[str]) -> list[str]:
    """Table 1's order first, then the others sorted, so reports always line up the same way."""
    names = set(names)
    return [s for s in PAPER_TABLE1 if s in names] + sorted(names - set(PAPER_TABLE1))


def _finished(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"].astype(str).str.upper() == FINISHED]


def missing_settings(runs: pd.DataFrame, expected_settings: Iterable[str]) -> list[str]:
    """Expected settings (any spelling) without a single FINISHED run, in Table 1's order."""
    done = {parse_setting(s).name for s in _finished(runs)["setting"]}
    return _ordered({parse_setting(s).name for s in expected_settings} - done)


def _seed_stats(values: pd.Series) -> dict:
    """mean, std (ddof=1) and the 95% t-interval over seeds; NaN where n is too small."""
    values = values.dropna().astype(float)
    n = len(values)
    mean = values.mean() if n else np.nan
    std = values.std(ddof=1) if n > 1 else np.nan
    half = stats.t.ppf(0.975, n - 1) * std / np.sqrt(n) if n > 1 else np.nan
    return {"mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half}


# ---- paired bootstrap ---------------------------------------------------------------------


def _aligned(tables: list[pd.DataFrame]) -> tuple[np.ndarray, np.ndarray]:
    """Labels (N,) and probabilities (runs, N) on the test images every table holds.

    The key is sha256 plus the occurrence number: the test split holds byte-identical images
    under different names, and each copy is one test item in the run's own metrics.
    """
    keyed = []
    for table in tables:
        table = table.sort_values(["sha256", "probability"])
        keyed.append(table.set_index([table["sha256"], table.groupby("sha256").cumcount()]))
    common = keyed[0].index
    for table in keyed[1:]:
        common = common.intersection(table.index)
    common = common.sort_values()
    labels = np.stack([t.loc[common, "y_true"].to_numpy(int) for t in keyed])
    if (labels != labels[0]).any():
        raise ValueError("the runs' test predictions disagree on y_true for the same sha256: "
                         "were they made on the same test set?")
    probs = np.stack([t.loc[common, "probability"].to_numpy(float) for t in keyed])
    return labels[0], probs


def _weighted_auroc(weights: np.ndarray, labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """AUROC for each row of image weights (B, N), ties counted 1/2; O(B*N) after one sort.

    A bootstrap resample is a vector of counts, so each replicate's AUROC is the weighted
    Mann-Whitney statistic: no per-replicate sorting or sklearn call needed.
    """
    order = np.argsort(probs, kind="stable")
    p, y, w = probs[order], labels[order], weights[:, order]
    neg = np.concatenate([np.zeros((len(w), 1)), np.cumsum(w * (y == 0), axis=1)], axis=1)
    left, right = np.searchsorted(p, p, "left"), np.searchsorted(p, p, "right")
    below = neg[:, left] + 0.5 * (neg[:, right] - neg[:, left])
    pos_total, neg_total = (w * (y == 1)).sum(1), neg[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w * (y == 1) * below).sum(1) / (pos_total * neg_total)


def _per_seed(weights: np.ndarray, labels: np.ndarray, probs: np.ndarray) -> dict:
    """metric -> (B, runs): accuracy and AUROC of every run under every image weighting."""
    correct = ((probs >= THRESHOLD).astype(int) == labels).astype(float)
    accuracy = weights @ correct.T / weights.sum(1, keepdims=True)
    auroc = np.stack([_weighted_auroc(weights, labels, p) for p in probs], axis=1)
    return {"accuracy": accuracy, "auroc": auroc}


def paired_bootstrap(gan: list[pd.DataFrame], original: list[pd.DataFrame], n_boot: int,
                     rng: np.random.Generator) -> dict:
    """Difference gan - original in test accuracy and AUROC, paired by seed and by image.

    `gan[i]` and `original[i]` are the prediction tables of the two runs with the same seed.
    The observed difference is the mean over seeds of the per-seed difference. Each replicate
    resamples the test images (one resample, shared by every run, so images stay paired) and
    the seeds (with replacement), and averages the per-seed differences. The 95% CI is the
    2.5/97.5 percentile of the replicates. The two-sided p-value is twice the smaller share
    of replicates at or beyond zero on either side, with the +1 correction
    ((count + 1) / (n_boot + 1)) so it is never 0, capped at 1: a setting identical to its
    Original gets p = 1.
    """
    labels, probs = _aligned(gan + original)
    n_seeds, n_images = len(gan), len(labels)
    observed = _per_seed(np.ones((1, n_images)), labels, probs)
    weights = rng.multinomial(n_images, np.full(n_images, 1 / n_images), size=n_boot).astype(float)
    seeds = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    boot = _per_seed(weights, labels, probs)
    result = {}
    for metric in DELTA_METRICS:
        diff = boot[metric][:, :n_seeds] - boot[metric][:, n_seeds:]
        reps = np.take_along_axis(diff, seeds, axis=1).mean(1)
        tail = min((reps <= 0).sum(), (reps >= 0).sum())
        result[metric] = {
            "delta": float((observed[metric][0, :n_seeds] - observed[metric][0, n_seeds:]).mean()),
            "ci_low": float(np.nanpercentile(reps, 2.5)),
            "ci_high": float(np.nanpercentile(reps, 97.5)),
            "p": float(min(1.0, 2 * (tail + 1) / (n_boot + 1))),
        }
    return result


# ---- the table ----------------------------------------------------------------------------


def _one_per_seed(finished: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """First finished run per seed; a rerun of the same seed is named in the notes, not averaged."""
    extra = finished[finished.duplicated("seed")]
    notes += [f"duplicate run {r.run_id} for seed {r.seed} ignored" for r in extra.itertuples()]
    return finished.drop_duplicates("seed")


def _no_delta(baseline: str = "") -> dict:
    delta = {f"delta_{m}{k}": np.nan
             for m in DELTA_METRICS for k in ("", "_ci_low", "_ci_high", "_p")}
    return {"baseline": baseline, "n_paired_seeds": 0, **delta}


def _compare(setting: Setting, by_setting: dict, predictions: dict, n_boot: int, seed: int,
             notes: list[str]) -> dict:
    """Delta columns of one GAN setting against its Original (NaN, with a note, if impossible)."""
    base = baseline_of(setting)
    empty = _no_delta(base)
    if base not in by_setting or by_setting[base].empty:
        notes.append(f"no finished {base} runs to compare with")
        return empty
    ours, theirs = by_setting[setting.name].set_index("seed"), by_setting[base].set_index("seed")
    pairs = []
    for s in sorted(set(ours.index) & set(theirs.index)):
        run_ids = (ours.at[s, "run_id"], theirs.at[s, "run_id"])
        lost = [r for r in run_ids if r not in predictions]
        notes += [f"no test predictions for run {r} (seed {s})" for r in lost]
        if not lost:
            pairs.append(run_ids)
    if not pairs:
        notes.append(f"no seed with predictions shared with {base}")
        return empty
    # Seeded by the setting's name, so a row does not change when other settings are added.
    rng = np.random.default_rng([seed, zlib.crc32(setting.name.encode())])
    boot = paired_bootstrap([predictions[g] for g, _ in pairs], [predictions[o] for _, o in pairs],
                            n_boot, rng)
    row = {**empty, "n_paired_seeds": len(pairs)}
    for metric, values in boot.items():
        row.update({f"delta_{metric}{'' if k == 'delta' else '_' + k}": v
                    for k, v in values.items()})
    return row


def summarize(runs: pd.DataFrame, predictions: dict[str, pd.DataFrame], n_boot: int = 2000,
              seed: int = 0, expected_settings: Iterable[str] = ()) -> pd.DataFrame:
    """One row per setting: seed statistics, the paper's values and the paired test vs Original.

    Columns: setting, n_runs (FINISHED runs averaged), n_missing_or_failed, missing_or_failed
    ("run_id (STATUS, seed s); ..."), {metric}_{mean,std,ci_low,ci_high} for accuracy,
    precision, recall, specificity, f1, auroc (from the runs' test_* columns), paper_{accuracy,
    recall,precision}, baseline, n_paired_seeds, delta_{accuracy,auroc}{,_ci_low,_ci_high,_p}
    (from the per-image predictions; see `paired_bootstrap`) and note. Settings in
    `expected_settings` without any run get a row with n_runs = 0.
    """
    runs = runs.assign(setting=[parse_setting(s).name for s in runs["setting"]])
    finished = _finished(runs)
    notes = ({s: [] for s in runs["setting"]}
             | {parse_setting(s).name: [] for s in expected_settings})
    by_setting = {s: _one_per_seed(g, notes[s]) for s, g in finished.groupby("setting")}
    rows = []
    for name in _ordered(notes):
        setting, done = parse_setting(name), by_setting.get(name, finished.iloc[:0])
        failed = runs[(runs["setting"] == name) & ~runs.index.isin(finished.index)]
        row = {"setting": name, "n_runs": len(done), "n_missing_or_failed": len(failed),
               "missing_or_failed": "; ".join(f"{r.run_id} ({r.status}, seed {r.seed})"
                                              for r in failed.itertuples())}
        for metric in METRICS:
            for key, value in _seed_stats(done[f"test_{metric}"]).items():
                row[f"{metric}_{key}"] = value
        for metric in PAPER_METRICS:
            row[f"paper_{metric}"] = PAPER_TABLE1_VALUES.get(name, {}).get(metric, np.nan)
        row.update(_no_delta(baseline_of(setting) if setting.gan else ""))
        if not done.empty and setting.gan:
            row.update(_compare(setting, by_setting, predictions, n_boot, seed, notes[name]))
        if done.empty:
            notes[name].append("no finished runs")
        rows.append(row | {"note": "; ".join(notes[name])})
    return pd.DataFrame(rows)


# ---- presentation -------------------------------------------------------------------------

_COLORS = {"Original": "tab:gray", "DCGAN": "tab:blue", "CGAN": "tab:orange"}
LEGEND = ("ours: mean ± std [95% t-interval over seeds]; paper: Tung et al. Table 1 (one run); "
          "Δacc: test accuracy minus Original at the same r, mean over paired seeds "
          "[95% paired-bootstrap CI over seeds and test images], p two-sided")


def _fmt_stat(row: pd.Series, metric: str) -> str:
    mean, std = row[f"{metric}_mean"], row[f"{metric}_std"]
    lo, hi = row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]
    if pd.isna(mean):
        return "–"
    text = f"{mean:.3f}" + (f" ± {std:.3f}" if pd.notna(std) else "")
    return text + (f" [{lo:.3f}, {hi:.3f}]" if pd.notna(lo) else "")


def _fmt_delta(row: pd.Series, metric: str) -> tuple[str, str]:
    delta, p = row[f"delta_{metric}"], row[f"delta_{metric}_p"]
    if pd.isna(delta):
        return "", ""
    lo, hi = row[f"delta_{metric}_ci_low"], row[f"delta_{metric}_ci_high"]
    return f"{delta:+.3f} [{lo:+.3f}, {hi:+.3f}]", f"{p:.3g}"


def display_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The table as short strings: ours next to the paper's value per metric, then Δacc and p."""
    rows = []
    for _, row in table.iterrows():
        out = {"setting": row["setting"], "n": str(int(row["n_runs"]))}
        for metric in ("accuracy", "recall", "precision", "specificity", "f1", "auroc"):
            out[metric] = _fmt_stat(row, metric)
            if metric in PAPER_METRICS:
                paper = row[f"paper_{metric}"]
                digits = 5 if metric == "accuracy" else 3  # as printed in Table 1
                out[f"paper {metric}"] = "" if pd.isna(paper) else f"{paper:.{digits}f}"
        out["Δacc vs Original"], out["p"] = _fmt_delta(row, "accuracy")
        rows.append(out)
    return pd.DataFrame(rows)


def _problems(table: pd.DataFrame) -> list[str]:
    """One line per setting with failed/missing runs or a note, so nothing is dropped silently."""
    lines = []
    for _, row in table.iterrows():
        parts = [row["missing_or_failed"], row["note"]]
        if row["n_missing_or_failed"] or row["n_runs"] == 0 or row["note"]:
            lines.append(f"{row['setting']}: " + "; ".join(p for p in parts if p))
    return lines


def to_markdown(table: pd.DataFrame) -> str:
    frame = display_frame(table)
    cell = lambda text: str(text).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in frame.itertuples(index=False)]
    problems = _problems(table)
    lines += ["", LEGEND + ".", "", "Missing or failed runs and notes:" if problems else
              "Missing or failed runs: none."]
    lines += [f"- {line}" for line in problems]
    return "\n".join(lines) + "\n"


def to_csv(table: pd.DataFrame, path: str | Path) -> Path:
    """Every numeric column, unrounded, for later analysis."""
    path = Path(path)
    table.to_csv(path, index=False)
    return path


def _png_bytes(figure: bytes | str | Path | Figure) -> bytes:
    if isinstance(figure, Figure):
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=120)
        return buffer.getvalue()
    return figure if isinstance(figure, bytes) else Path(figure).read_bytes()


def to_html(table: pd.DataFrame, figure: bytes | str | Path | Figure,
            title: str = "Test results beside Tung et al. Table 1") -> str:
    """A single self-contained page: inline CSS and the chart as a base64 PNG, no external files."""
    png = base64.b64encode(_png_bytes(figure)).decode("ascii")
    problems = ("".join(f"<li>{html.escape(line)}</li>" for line in _problems(table))
                or "<li>none</li>")
    style = ("body{font-family:sans-serif;margin:2em;color:#222}"
             "table{border-collapse:collapse;font-size:0.9em}"
             "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}"
             "th{background:#f0f0f0}tr:nth-child(even){background:#fafafa}"
             "td:first-child{text-align:left}img{max-width:100%}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p>{html.escape(LEGEND)}.</p>{display_frame(table).to_html(index=False)}"
            f"<img alt='test accuracy per setting' src='data:image/png;base64,{png}'>"
            f"<h2>Missing or failed runs and notes</h2><ul>{problems}</ul></body></html>")


def bar_chart(table: pd.DataFrame, error: str = "ci") -> Figure:
    """Test accuracy per setting (one bar per row), error bars = 95% CI or std, paper as markers."""
    if error not in ("ci", "std"):
        raise ValueError(f"error must be 'ci' or 'std', not {error!r}")
    x = np.arange(len(table))
    mean = table["accuracy_mean"].to_numpy(float)
    yerr = table["accuracy_ci_high"] - mean if error == "ci" else table["accuracy_std"]
    sources = [parse_setting(s).source for s in table["setting"]]
    fig = Figure(figsize=(max(6, 0.6 * len(table) + 2), 4.5))
    ax = fig.subplots()
    ax.bar(x, mean, yerr=yerr.to_numpy(float), capsize=3, color=[_COLORS[s] for s in sources])
    paper = ax.scatter(x, table["paper_accuracy"], marker="D", color="black", zorder=3,
                       label="paper (Table 1)")
    handles = [Patch(color=_COLORS[s], label=f"{s} (ours)") for s in _COLORS if s in sources]
    ax.legend(handles=handles + [paper], loc="upper left",
              bbox_to_anchor=(1.0, 1.0))  # off the bars
    ax.set_xticks(x, table["setting"], rotation=45, ha="right")
    low = np.nanmin(np.r_[mean, table["paper_accuracy"].to_numpy(float), 1.0])
    ax.set_ylim(max(0.0, low - 0.1), 1.0)
    ax.set_ylabel("test accuracy")
    ax.set_title(f"Test accuracy, error bars = {'95% CI' if error == 'ci' else 'std'} over seeds")
    fig.tight_layout()
    return fig
