"""Our results beside the paper's Table 1, with seed statistics and calibrated tests.

Pure functions on DataFrames: the compare stage queries the runs of ONE comparison group
(`evaluation.groups`) and their per-image test predictions and passes them in; nothing here
talks to MLflow.

`summarize` turns runs (one row per classifier run) into one row per setting:
- mean, std and a 95% t-interval over seeds for every test metric, and the paper's value;
- for a GAN setting, the difference to `Original` at the same real fraction r in test
  accuracy and AUROC, paired by seed (`evaluation.inference`): the paired t-test over the
  seeds both settings finished (CI and p across training runs, Holm-adjusted over the
  table's GAN rows, per-seed differences, Cohen's d_z). With fewer than 2 paired seeds there
  is no p-value: one pair gives the difference and a test-set-only interval, labelled as such;
  differences with no spread give none either, and say so;
- with a plan (`planned_seeds`), where each GAN row stands in it: the decision at its planned
  looks (`evaluation.sequential`) on the accuracy difference;
- which expected (setting, seed) runs are missing or failed, which metrics were not finite,
  and whether every run scored the same test images.
`evaluation.report` presents it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from pneumonia_aug.config import PLANNED_LOOKS
from pneumonia_aug.contract import TEST, metric
from pneumonia_aug.evaluation import sequential
from pneumonia_aug.evaluation.inference import (
    ALPHA,
    NO_SPREAD,
    holm,
    paired_contrasts,
    paired_test_set_interval,
    t_interval,
)
from pneumonia_aug.evaluation.intervals import SEEDS, TEST_SET
from pneumonia_aug.evaluation.metrics import THRESHOLD
from pneumonia_aug.settings import ORIGINAL, PAPER_TABLE1, Setting, parse_setting

# At 0.5 on the raw probabilities (the paper's way); ece and brier: calibration of those
# probabilities (a run from before they were logged shows none).
METRICS = ("accuracy", "precision", "recall", "specificity", "f1", "auroc", "ece", "brier")
PAPER_METRICS = ("accuracy", "recall", "precision")
DELTA_METRICS = ("accuracy", "auroc")  # compared with Original
DELTA_FIELDS = ("", "_se", "_df", "_ci_low", "_ci_high", "_p", "_p_holm", "_dz", "_per_seed",
                "_no_spread")
PLAN_METRIC = "accuracy"  # the paper's claim, and what a planned look decides on
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


def ordered(names: Iterable[str]) -> list[str]:
    """Table 1's order first, then the others sorted, so reports always line up the same way."""
    names = set(names)
    return [s for s in PAPER_TABLE1 if s in names] + sorted(names - set(PAPER_TABLE1))


def _finished(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"].astype(str).str.upper() == FINISHED]


def seed_stats(values: pd.Series, alpha: float = ALPHA) -> dict:
    """mean, std (ddof=1) and the (1 - alpha) t-interval over seeds; NaN where n is too small
    (a zero-width interval where every seed gave the same value)."""
    values = values.dropna().astype(float)
    n = len(values)
    mean = values.mean() if n else np.nan
    std = values.std(ddof=1) if n > 1 else np.nan
    low, high = t_interval(mean, std / np.sqrt(n), n - 1, alpha) if n > 1 else (np.nan, np.nan)
    return {"mean": mean, "std": std, "ci_low": low, "ci_high": high}


def _test_items(predictions: pd.DataFrame) -> pd.Series:
    """Correct (0/1) per test item, keyed by sha256 and occurrence (the test split holds
    byte-identical images under different names; each copy is one item)."""
    table = predictions.sort_values(["sha256", "probability"])
    key = pd.MultiIndex.from_arrays([table["sha256"], table.groupby("sha256").cumcount()])
    called = (table["probability"].to_numpy() >= THRESHOLD).astype(int)
    return pd.Series(called == table["y_true"].to_numpy(int), index=key, dtype=float)


def _one_per_seed(finished: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """First finished run per seed; a rerun of the same seed is named in the notes, not averaged."""
    extra = finished[finished.duplicated("seed")]
    notes += [f"duplicate run {r.run_id} for seed {r.seed} ignored" for r in extra.itertuples()]
    return finished.drop_duplicates("seed")


def _no_delta(baseline: str = "") -> dict:
    empty = {"_per_seed": "", "_no_spread": False}
    delta = {f"delta_{m}{k}": empty.get(k, np.nan) for m in DELTA_METRICS for k in DELTA_FIELDS}
    return {"baseline": baseline, "n_paired_seeds": 0, "interval": "", **delta}


def _test_set_only(setting: str, base: str, done: pd.DataFrame, predictions: dict,
                   notes: list[str]) -> dict:
    """One seed: accuracy difference with a paired interval over test images only."""
    seed = int(done[done["setting"] == setting]["seed"].iloc[0])
    pair = [done[(done["setting"] == s) & (done["seed"] == seed)]["run_id"] for s in (setting,
                                                                                      base)]
    if any(p.empty for p in pair) or any(p.iloc[0] not in predictions for p in pair):
        notes.append(f"no test predictions of seed {seed} shared with {base}")
        return {}
    ours, theirs = (_test_items(predictions[p.iloc[0]]) for p in pair)
    common = ours.index.intersection(theirs.index)
    delta, low, high = paired_test_set_interval(ours[common].to_numpy(), theirs[common].to_numpy())
    return {"delta_accuracy": delta, "delta_accuracy_ci_low": low,
            "delta_accuracy_ci_high": high, "interval": TEST_SET}


def _deltas(done: pd.DataFrame, pairs: list[tuple[str, str]], predictions: dict,
            notes: dict[str, list[str]]) -> dict[str, dict]:
    """Delta columns per GAN setting: its paired t-test against its Original over their seeds
    (`pairs`: each GAN setting and its baseline)."""
    rows = {s: _no_delta(b) for s, b in pairs}
    for setting, base in pairs:
        if base not in set(done["setting"]):
            notes[setting].append(f"no finished {base} runs to compare with")
    frame = done.rename(columns={metric(TEST, m): m for m in DELTA_METRICS})
    for measure in DELTA_METRICS:
        contrasts = paired_contrasts(frame, measure, pairs)
        adjusted = holm({s: c.p for s, c in contrasts.items()})
        for setting, c in contrasts.items():
            if not c.n_pairs:
                continue
            prefix = f"delta_{measure}"
            rows[setting].update({
                prefix: c.estimate, f"{prefix}_se": c.se, f"{prefix}_df": c.df,
                f"{prefix}_ci_low": c.ci_low, f"{prefix}_ci_high": c.ci_high,
                f"{prefix}_p": c.p, f"{prefix}_p_holm": adjusted[setting],
                f"{prefix}_dz": c.effect_size_dz, f"{prefix}_no_spread": c.no_spread,
                f"{prefix}_per_seed": ";".join(f"{k}:{v:+.4f}" for k, v in c.per_seed.items()),
                "n_paired_seeds": c.n_pairs, "interval": SEEDS if c.n_pairs > 1 else ""})
            if c.no_spread:
                notes[setting].append(f"Δ {measure}: {NO_SPREAD} (each of the {c.n_pairs} "
                                      f"pairs differs by {c.estimate:+.4f}): no p-value or "
                                      "interval")
    for setting, base in pairs:
        row = rows[setting]
        if row["n_paired_seeds"] and row["interval"] != SEEDS:
            # One paired seed: only the test set's own sampling can be shown.
            row.update(_test_set_only(setting, base, done, predictions, notes[setting]))
        elif not row["n_paired_seeds"] and base in set(done["setting"]):
            notes[setting].append(f"no seed shared with {base}")
    return rows


def _test_set_check(done: pd.DataFrame, predictions: dict) -> dict[str, str]:
    """run_id -> a note, for runs that scored other test images than most runs of the table."""
    sets = {r: frozenset(_test_items(predictions[r]).index) for r in done["run_id"]
            if r in predictions}
    if not sets:
        return {}
    common = pd.Series(list(sets.values())).value_counts().index[0]
    return {r: (f"run {r} scored {len(s)} test images, not the {len(common)} of the others"
                if len(s) != len(common) else
                f"run {r} scored another draw of {len(s)} test images than the others "
                f"({len(s - common)} differ)")
            for r, s in sets.items() if s != common}


def _completeness(runs: pd.DataFrame, name: str, done: pd.DataFrame,
                  seeds: list[int]) -> list[str]:
    """`seed s (FAILED run id)` / `seed s (missing)` for every expected seed without a run."""
    out = []
    for seed in seeds:
        if seed in set(done["seed"]):
            continue
        tried = runs[(runs["setting"] == name) & (runs["seed"] == seed)]
        out.append(f"seed {seed} (" + (", ".join(f"{r.status} run {r.run_id}"
                                                 for r in tried.itertuples()) or "missing") + ")")
    return out


def _finite_only(done: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """The runs with each infinite metric value made NaN (that seed left out of that metric),
    each named in the notes: one broken number must not fail the whole table."""
    done = done.copy()
    for measure in METRICS:
        column = metric(TEST, measure)
        if column not in done:
            continue
        values = pd.to_numeric(done[column], errors="coerce")
        bad = np.isinf(values)
        notes += [f"seed {done.at[i, 'seed']} (run {done.at[i, 'run_id']}): {column} is "
                  f"{values[i]}: left out of {measure}" for i in done.index[bad]]
        done[column] = values.mask(bad)
    return done


def _plan_columns(done: pd.DataFrame, pairs: list[tuple[str, str]],
                  design: sequential.Plan) -> dict[str, dict]:
    """Per GAN setting: the plan and where the row stands in it (`sequential.decide` on its
    accuracy differences in seed order)."""
    shared = {"planned_seeds": design.planned_seeds,
              "planned_looks": ",".join(str(n) for n in design.looks),
              "look_boundaries": ",".join(f"{p:.6g}" for p in design.p)}
    frame = done.rename(columns={metric(TEST, PLAN_METRIC): PLAN_METRIC})
    rows = {}
    for setting, c in paired_contrasts(frame, PLAN_METRIC, pairs).items():
        decision = sequential.decide(np.array(list(c.per_seed.values())), design)
        rows[setting] = shared | {
            "decision_look": decision.look, "decision_pairs": decision.look_pairs,
            "decision_p": decision.p, "decision_boundary": decision.boundary,
            "decision_crossed": decision.crossed, "next_look": decision.next_look,
            "interim": decision.pairs < design.planned_seeds,
            "plan_line": sequential.describe(decision, design)}
    return rows


def summarize(runs: pd.DataFrame, predictions: dict[str, pd.DataFrame],
              expected_settings: Iterable[str] = (), expected_seeds: Iterable[int] = (),
              planned_seeds: int = 0, planned_looks: int = PLANNED_LOOKS) -> pd.DataFrame:
    """One row per setting of one comparison group: seed statistics, the paper's values and
    the calibrated comparison with Original.

    `runs`: run_id, setting, seed, status, test/{accuracy,...,brier} (`contract.metric`).
    Columns: setting,
    n_runs (FINISHED runs averaged), seeds, n_missing_or_failed, missing_or_failed
    ("seed s (FAILED run id); seed t (missing)": every expected seed, default the seeds seen,
    without a finished run), {metric}_{mean,std,ci_low,ci_high}, paper_{accuracy,recall,
    precision}, baseline, n_paired_seeds, interval (`seeds`, `test set only` or empty),
    delta_{accuracy,auroc}{,_se,_df,_ci_low,_ci_high,_p,_p_holm,_dz,_per_seed,_no_spread}
    and note. With `planned_seeds` (N > 0 pairs planned, `planned_looks` looks), also
    planned_seeds, planned_looks (pairs at each look), look_boundaries (nominal p at each),
    and per GAN row decision_{look,pairs,p,boundary,crossed}, next_look, interim (fewer pairs
    than planned) and plan_line (where the row stands, in words); without, the table is as it
    was before plans.
    """
    design = sequential.plan(planned_seeds, planned_looks) if planned_seeds else None
    # Each name parsed once, here (the runs' tags and the expected ones: canonical names).
    parsed = {text: parse_setting(text) for text in {*runs["setting"], *expected_settings}}
    runs = runs.assign(setting=[parsed[s].name for s in runs["setting"]])
    setting_of = {p.name: p for p in parsed.values()}
    finished = _finished(runs)
    names = ordered(setting_of)
    notes = {s: [] for s in names}
    by_setting = {s: _finite_only(_one_per_seed(g, notes[s]), notes[s])
                  for s, g in finished.groupby("setting")}
    done = pd.concat(list(by_setting.values())) if by_setting else finished.iloc[:0]
    seeds = sorted(set(expected_seeds) | set(runs["seed"].astype(int)))
    pairs = [(s, baseline_of(setting_of[s])) for s in names
             if setting_of[s].gan and s in by_setting]
    deltas = _deltas(done, pairs, predictions, notes)
    planned = _plan_columns(done, pairs, design) if design else {}
    odd_tests = _test_set_check(done, predictions)
    rows = []
    for name in names:
        setting, mine = setting_of[name], by_setting.get(name, finished.iloc[:0])
        notes[name] += [odd_tests[r] for r in mine["run_id"] if r in odd_tests]
        missing = _completeness(runs, name, mine, seeds)
        row = {"setting": name, "source": setting.source, "n_runs": len(mine),
               "seeds": ",".join(str(s) for s in sorted(mine["seed"])),
               "n_missing_or_failed": len(missing), "missing_or_failed": "; ".join(missing)}
        for measure in METRICS:
            column = mine.get(metric(TEST, measure), pd.Series(np.nan, index=mine.index))
            for key, value in seed_stats(column).items():
                row[f"{measure}_{key}"] = value
        for measure in PAPER_METRICS:
            row[f"paper_{measure}"] = PAPER_TABLE1_VALUES.get(name, {}).get(measure, np.nan)
        row.update(deltas.get(name, _no_delta(baseline_of(setting) if setting.gan else "")))
        if design:
            row.update(planned.get(name, {"planned_seeds": design.planned_seeds}))
        if mine.empty:
            notes[name].append("no finished runs")
        rows.append(row | {"note": "; ".join(notes[name])})
    return pd.DataFrame(rows)
