"""Print the numbers docs/statistics.md quotes about seed counts and planned looks, from the
project's own functions (`pneumonia_aug.evaluation.power`, `.sequential`, `.inference`):

    python scripts/statistics_numbers.py              # 1,000,000 studies a cell: a few minutes
    python scripts/statistics_numbers.py --studies 100000

1. pairs for the paper's +3 points at 80% power (noncentral t), and what a 3-seed SD leaves
   open; 2. the planned looks of the `claim` profile's 36 seeds: boundaries and power against
   the fixed test; 3. false positives when the table is looked at after every allocation of
   3-7 seeds, planned looks against stopping at the first p < 0.05; 4. false positives of a
   GAN row under the `shared` and `per-seed` GAN designs.
"""

from __future__ import annotations

import argparse

import numpy as np

from pneumonia_aug.evaluation import sequential
from pneumonia_aug.evaluation.inference import ALPHA, paired_t
from pneumonia_aug.evaluation.power import pairs_needed, power, sd_interval

GAIN, LOOKS, PLANNED = 0.03, 4, 36
N_IMAGES, ACCURACY = 624, 0.85
CHUNK = 100_000


def seeds_for_the_claim() -> None:
    print("1. pairs for +0.03 at 80% power, alpha 0.05 two-sided (noncentral t)")
    for sd in (0.047, 0.06):
        n = pairs_needed(GAIN, sd)
        low, high = sd_interval(sd, 3)
        print(f"   SD {sd}: {n} pairs (power {power(n, GAIN, sd):.3f}); a 3-seed SD of {sd} has "
              f"a 95% interval {low:.3f}-{high:.3f}: {pairs_needed(GAIN, low)}-"
              f"{pairs_needed(GAIN, high)} pairs")


def _chunks(studies: int):
    for start in range(0, studies, CHUNK):
        yield min(CHUNK, studies - start)


def planned_looks(studies: int, rng: np.random.Generator) -> None:
    design = sequential.plan(PLANNED, LOOKS)
    print(f"2. {PLANNED} planned seeds, looks at {design.looks}: |t| "
          + ", ".join(f"{t:.3f}" for t in design.t) + "; nominal p "
          + ", ".join(f"{p:.2g}" for p in design.p))
    for sd in (0.06, float(np.hypot(0.06, 0.01))):
        for n in range(33, 39):
            plan = sequential.plan(n, LOOKS)
            found = np.array([sequential.simulated_power(plan, GAIN, sd, k, rng)
                              for k in _chunks(studies)])
            looked, fixed = found.mean(axis=0)
            print(f"   SD {sd:.4f}, N {n}: power with looks {looked:.4f}, one test at N "
                  f"{fixed:.4f} (noncentral t {power(n, GAIN, sd):.4f})")


def _differences(rng: np.random.Generator, studies: int, seeds: int, run_sd: float,
                 gan_sd: float = 0.0, shared: bool = False) -> np.ndarray:
    """GAN - Original test accuracy per seed: Binomial(624, 0.85 + luck) / 624 per run, the
    GAN runs' accuracy moved by their GAN's luck (one GAN for all seeds when shared)."""
    gan = rng.normal(0, gan_sd, (studies, 1 if shared else seeds))
    p = ACCURACY + run_sd * rng.standard_normal((2, studies, seeds))
    p[1] += gan
    original, augmented = rng.binomial(N_IMAGES, np.clip(p, 0, 1)) / N_IMAGES
    return augmented - original


def looking_after_every_allocation(studies: int, rng: np.random.Generator) -> None:
    design = sequential.plan(PLANNED, LOOKS)
    looked = naive = 0
    for k in _chunks(studies):
        d = _differences(rng, k, PLANNED, 0.04)  # per-seed differences with an SD near 0.06
        viewed = np.minimum(np.cumsum(rng.integers(3, 8, (k, PLANNED // 3 + 1)), axis=1),
                            PLANNED)
        looked += sequential.crossed(d, design).any(axis=1).sum()
        prefix = np.full((k, PLANNED + 1), np.nan)
        for n in range(2, PLANNED + 1):
            prefix[:, n] = paired_t(d[:, :n])["p"]
        naive += (np.take_along_axis(prefix, viewed, axis=1) < ALPHA).any(axis=1).sum()
    print(f"3. no true difference, {PLANNED} seeds in allocations of 3-7, the table looked at "
          f"after each: planned looks {looked / studies:.4f}, first p < 0.05 {naive / studies:.4f}"
          f" ({studies} studies)")


def gan_designs(studies: int, rng: np.random.Generator) -> None:
    print("4. no true difference, 1-point SD between GAN runs: false positives of a GAN row")
    for run_sd in (0.015, 0.026, 0.04):
        cells = []
        for seeds in (3, 10, 30):
            for shared in (True, False):
                hits = sum((paired_t(_differences(rng, k, seeds, run_sd, 0.01, shared))["p"]
                            < ALPHA).sum() for k in _chunks(studies))
                cells.append(f"{seeds} seeds {'shared' if shared else 'per-seed'} "
                             f"{hits / studies:.3f}")
        print(f"   run SD {run_sd}: " + "; ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20261206)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    seeds_for_the_claim()
    planned_looks(args.studies, rng)
    looking_after_every_allocation(args.studies, rng)
    gan_designs(args.studies, rng)


if __name__ == "__main__":
    main()
