"""Does BBB's posterior buy a pruned network uncertainty that a cheap posterior would not? Read from a profile that
trains every method at the point chosen for each target (`target-seeds-*`): BBB's two predictives beside each
point estimate's cheap posteriors (temperature scaling, the Laplace approximations, the deep ensemble), each run
read at the sparsity its epoch was chosen for (`evaluate.posthoc.judged_fractions`), with what each costs.

The claim's rule, fixed before its runs: at each target of `CLAIM_TARGETS` and on each dataset, the rival is the
cheap posterior with the lowest mean validation NLL over seeds among those of every prior-trained point estimate
(`CHEAP_METHODS`: temperature-scaled, either Laplace structure, the deep ensemble). BBB's Monte Carlo predictive is
compared with it on entropy AUROC against the other dataset (`CLAIM_SCORE`), over the seeds every method of the
cell shares (`on_shared_seeds`), by Welch's 95 % interval: the claim holds where BBB's AUROC is higher, does not hold where it is lower, and is inconclusive where
the interval straddles zero.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from bayesprune.compress.prune import own_criteria
from bayesprune.evaluate.posthoc import judged_fractions
from bayesprune.pipeline.ensembles import ENSEMBLES
from bayesprune.pipeline.manifest import training_seconds
from bayesprune.pipeline.results import RUN_KEYS, has_table, load_manifests, load_table
from bayesprune.report.formatting import DATASET_LABELS, mnist_first, places
from bayesprune.report.reference import method_label
from bayesprune.report.verdicts import FAILS, HOLDS, INCONCLUSIVE, Interval, combine, difference, interval

CHEAP_METHODS = ("sgd-l1", "sgd-l2", "sgd-mixture")  # the prior-trained point estimates whose cheap posteriors rival
CLAIM_TARGETS = (0.9, 0.98)
CLAIM_SCORE = "auroc_entropy_other"
PREDICTIVES = {  # (table, its prediction or post-hoc kind) -> the predictive in words
    ("uncertainty", "deterministic"): "as deployed",
    ("uncertainty", "mc"): "Monte Carlo",
    ("posthoc", "temperature deterministic"): "temperature-scaled",
    ("posthoc", "temperature mc"): "Monte Carlo, temperature-scaled",
    ("posthoc", "laplace_last_layer laplace"): "Laplace, last layer",
    ("posthoc", "laplace_diagonal laplace"): "Laplace, diagonal",
    ("ensembles", ""): "ensemble of 5",
}
CHEAP = ("temperature-scaled", "Laplace, last layer", "Laplace, diagonal", "ensemble of 5")
COLUMNS = ("accuracy", "nll", "ece", "auroc_entropy_other", "val_nll", "train_seconds", "posthoc_seconds")


def judged_rows(results_dir: Path) -> pd.DataFrame:
    """Every predictive of every run at the fraction its rule judges it at (unpruned for a run kept as trained), one
    row per seed: accuracy, NLL, ECE, entropy AUROC against the other dataset, validation NLL (post-hoc only),
    training seconds, and post-hoc seconds (fit and predict)."""
    runs = pd.DataFrame([{**{key: manifest["config"].get(key, "") for key in RUN_KEYS if key != "protocol"},
                          "select": manifest["config"].get("select", "val_acc"),
                          "train_seconds": training_seconds(manifest, Path(results_dir) / "runs")}
                         for manifest in load_manifests(results_dir)])
    uncertainty = load_table(results_dir, "uncertainty")
    uncertainty = uncertainty[[c == own_criteria(m)[0] for m, c in zip(uncertainty["method"], uncertainty["criterion"])]]
    parts = [uncertainty.assign(predictive=[PREDICTIVES["uncertainty", p] for p in uncertainty["prediction"]],
                                posthoc_seconds=0.0)]
    if has_table(results_dir, "posthoc"):
        posthoc = load_table(results_dir, "posthoc")
        kinds = posthoc["posthoc"] + " " + posthoc["prediction"]
        parts.append(posthoc.assign(predictive=[PREDICTIVES["posthoc", k] for k in kinds],
                                    posthoc_seconds=posthoc["fit_seconds"] + posthoc["predict_seconds"]))
    rows = pd.concat(parts, ignore_index=True).merge(runs, on=["dataset", "method", "seed", "variant"], how="left")
    rows = rows[[fraction in judged_fractions(select, [fraction])
                 for select, fraction in zip(rows["select"], rows["fraction"])]]
    if (Path(results_dir) / ENSEMBLES).exists():
        ensembles = pd.read_csv(Path(results_dir) / ENSEMBLES)
        rows = pd.concat([rows, ensembles.assign(predictive=PREDICTIVES["ensembles", ""],
                                                 posthoc_seconds=ensembles["predict_seconds"])], ignore_index=True)
    columns = ["dataset", "method", "variant", "seed", "fraction", "predictive", *COLUMNS]
    return rows.reindex(columns=columns).reset_index(drop=True)


def on_shared_seeds(rows: pd.DataFrame) -> pd.DataFrame:
    """Each cell's rows (a dataset at a sparsity) on the seeds every method in it has, as the accuracy cells are read
    (`target_claims.on_common_seeds`); the deep ensemble, one value over its five seeds, is kept whole."""
    ensemble = rows["predictive"] == PREDICTIVES["ensembles", ""]
    kept = [rows[ensemble]]
    for _, cell in rows[~ensemble].groupby(["dataset", "fraction"], sort=False):
        seeds = set.intersection(*(set(cell.loc[cell["method"] == m, "seed"]) for m in cell["method"].unique()))
        kept.append(cell[cell["seed"].isin(seeds)])
    return pd.concat(kept).sort_index()


def cheap_rival(rows: pd.DataFrame, dataset: str, fraction: float) -> tuple[str, str] | None:
    """(method, predictive) of the cheap posterior with the lowest mean validation NLL at a dataset and target."""
    candidates = rows[(rows["dataset"] == dataset) & (rows["fraction"] == fraction)
                      & rows["method"].isin(CHEAP_METHODS) & rows["predictive"].isin(CHEAP)]
    if candidates.empty:
        return None
    return candidates.groupby(["method", "predictive"])["val_nll"].mean().idxmin()


def _scores(rows: pd.DataFrame, dataset: str, fraction: float, method: str, predictive: str) -> pd.Series:
    """One predictive's claim score per seed."""
    return rows[(rows["dataset"] == dataset) & (rows["fraction"] == fraction) & (rows["method"] == method)
                & (rows["predictive"] == predictive)][CLAIM_SCORE]


def _verdict(gap: Interval) -> str:
    """BBB's AUROC minus the rival's, in a verdict word."""
    if gap.seeds < 2:
        return INCONCLUSIVE + " (one seed)"
    return HOLDS if gap.above(0.0) == HOLDS else FAILS if gap.below(0.0) == HOLDS else INCONCLUSIVE


def cheap_posterior_claim(rows: pd.DataFrame) -> dict[str, Any]:
    """The claim judged at each dataset and target (see the module docstring): per cell the rival, BBB's AUROC
    minus the rival's with its interval, and the verdict; and one verdict over every cell."""
    cells, rows = [], on_shared_seeds(rows)
    for dataset in mnist_first(rows["dataset"]):
        for fraction in CLAIM_TARGETS:
            rival = cheap_rival(rows, dataset, fraction)
            bbb = _scores(rows, dataset, fraction, "bbb", "Monte Carlo")
            if rival is None or bbb.empty:
                continue
            theirs = _scores(rows, dataset, fraction, *rival)
            gap = difference(bbb, theirs) if len(theirs) > 1 else _against_one(bbb, float(theirs.mean()))
            cells.append({"dataset": dataset, "fraction": fraction, "rival": rival, "gap": gap,
                          "verdict": _verdict(gap)})
    return {"cells": cells, "verdict": combine([cell["verdict"] for cell in cells]) if cells else "not tested"}


def _against_one(seeds: pd.Series, value: float) -> Interval:
    """BBB's seeds minus one value (a single ensemble), with the one-sample interval of BBB's seeds."""
    spread = interval(seeds.to_numpy())
    return Interval(spread.mean - value, spread.low - value, spread.high - value, spread.seeds)


SPARSITY_LABELS = {0.0: "unpruned", 0.9: "90 % pruned", 0.95: "95 % pruned", 0.98: "98 % pruned", 0.99: "99 % pruned"}


def _mean_sd(values: pd.Series, digits: int = 3) -> str:
    """'0.981 ± 0.002' over seeds, '0.981' for one, '—' for none."""
    values = values.dropna()
    if values.empty:
        return "—"
    return f"{values.mean():.{digits}f}" + (f" ± {values.std():.{digits}f}" if len(values) > 1 else "")


def cheap_posterior_table(rows: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """One dataset's predictives, per sparsity judged, method and predictive: accuracy, NLL, ECE and entropy AUROC
    against the other dataset (mean ± sd over seeds), and the seconds of training and of post-hoc work."""
    part = rows[rows["dataset"] == dataset]
    table = []
    for (fraction, method, predictive), seeds in part.groupby(["fraction", "method", "predictive"], sort=False):
        table.append({"sparsity": SPARSITY_LABELS.get(fraction, f"{100 * fraction:g} % pruned"),
                      "method": method, "predictive": predictive, "accuracy": _mean_sd(seeds["accuracy"]),
                      "NLL": _mean_sd(seeds["nll"]), "ECE": _mean_sd(seeds["ece"]),
                      "AUROC, other data": _mean_sd(seeds[CLAIM_SCORE]),
                      "training (s)": f"{seeds['train_seconds'].mean():.0f}",
                      "post-hoc (s)": f"{seeds['posthoc_seconds'].mean():.0f}"})
    order = {label: i for i, label in enumerate(SPARSITY_LABELS.values())}
    frame = pd.DataFrame(table)
    return frame.sort_values("sparsity", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def claim_reading(claim: dict[str, Any]) -> str:
    """The claim's cells in words (Markdown): per dataset and target the rival chosen on validation data and BBB's
    AUROC minus its, then the verdict."""
    if not claim["cells"]:
        return "Not tested: no profile has trained BBB and the point estimates at the targets yet."
    items = [f"- {DATASET_LABELS.get(cell['dataset'], cell['dataset'])}, {SPARSITY_LABELS[cell['fraction']]}: "
             f"BBB's AUROC minus that of {method_label(cell['rival'][0])}, {cell['rival'][1]}: "
             f"{cell['gap'].text(3)} ({cell['verdict']})" for cell in claim["cells"]]
    return ("The rival in each cell is the cheap posterior with the lowest validation NLL:\n\n" + "\n".join(items)
            + f"\n\nOverall: {claim['verdict']}.")


def claim_sentence(claim: dict[str, Any]) -> str:
    """The claim in one sentence (`cheap_posterior_claim`): where BBB's Monte Carlo predictive tells the other dataset
    apart better than the cheap posterior validation data prefers, where worse, and where its interval cannot say."""
    if not claim["cells"]:
        return "No cheap posterior has been set against BBB's posterior yet."
    parts = []
    for verdicts, words in (((HOLDS,), "better"), ((FAILS,), "worse"),
                            ((INCONCLUSIVE, INCONCLUSIVE + " (one seed)"), "neither better nor worse by its interval")):
        cells = [(cell["dataset"], cell["fraction"]) for cell in claim["cells"] if cell["verdict"] in verdicts]
        if cells:
            parts.append(f"{words} {places(cells)}")
    return ("Set against the cheap posterior that validation data prefers (temperature scaling, a Laplace "
            "approximation or a deep ensemble, added to a pruned point estimate), BBB's posterior tells the other "
            f"dataset apart {'; '.join(parts)}.")


def posthoc_dirs(*candidates: Path) -> list[Path]:
    """The results folders given (each once) whose finished runs carry post-hoc scores."""
    found = []
    for folder in dict.fromkeys(Path(c) for c in candidates):
        if has_table(folder, "posthoc"):
            found.append(folder)
    return found
