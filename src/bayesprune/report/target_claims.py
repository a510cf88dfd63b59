"""The study's accuracy claims judged at the sparsity they speak of, from the profiles that train each method at the
point chosen for each target on further seeds (`target-seeds-*`).

At a target f every method is read under two rules only: the rule chosen for f (its point and epoch picked by
validation accuracy pruned to f) and as trained. The rival "best baseline" of a cell is the non-Bayesian method
with the highest mean validation accuracy under the cell's rule (pruned to f chosen for f, unpruned as trained),
chosen before any test number is read; BBB is also set beside each prior-trained method, and beside MAP under its
own prior family (the scale mixture), which answers "prior or posterior?". Every verdict rests on the 95 %
intervals over seeds (`report.verdicts`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bayesprune.config import TARGET_RULES, TARGETS
from bayesprune.pipeline.results import RUN_KEYS, finished_runs, load_manifests, load_table, run_keys
from bayesprune.report.claims import BAYESIAN
from bayesprune.report.formatting import DATASET_LABELS, fraction_label, mnist_first, places
from bayesprune.report.reference import method_label
from bayesprune.report.tables import COMPARED_FIRST, method_order, primary_rows
from bayesprune.report.targets import RULE_LABELS, against_cap, has_targets, run_epochs
from bayesprune.report.verdicts import (COLLAPSES, FAILS, HOLDS, INCONCLUSIVE, KEEPS, NOT_TESTED, Interval, combine,
                                       difference, interval)

AS_TRAINED = RULE_LABELS["val_acc"]
WAITING = "still training"  # a cell some of whose methods have not yet trained on any seed the others have
MATCHED_MAP = "sgd-mixture"  # MAP under BBB's own prior family, the scale mixture
CLAIMS = {
    "keeps": "BBB keeps its accuracy",
    "most accurate": "BBB is the most accurate model",
    "posterior": "the posterior, not the prior",
    "collapse": "the baselines collapse",
}


def _run_rules(results_dir: Path) -> pd.DataFrame:
    """Each finished run's keys and the rule that kept its epoch (`RULE_LABELS`; runs kept by another rule, and
    runs without a validation split to choose on, left out)."""
    rows = []
    for manifest in load_manifests(results_dir):
        select = manifest["config"].get("select", "val_acc")
        if select in RULE_LABELS and manifest["config"].get("validation"):
            rows.append({**run_keys(manifest["config"]), "rule": RULE_LABELS[select]})
    return pd.DataFrame(rows, columns=[*RUN_KEYS, "rule"])


def judged_folders(results_dir: Path, *seed_dirs: Path) -> list[Path]:
    """The folders the per-target verdicts read: a profile whose own runs record the targets alone (its search stands
    in for the seeds, as the smoke profile's does), else every seed profile that has run; never the two mixed."""
    if has_targets(Path(results_dir)):
        return [Path(results_dir)]
    return [Path(d) for d in seed_dirs if has_targets(Path(d))]


def judged_accuracy(*results_dirs: Path | None) -> pd.DataFrame:
    """One row per dataset, rule, target, method and seed of the corrected runs: the run's test accuracy unpruned
    and pruned to the target by its own criterion, and its validation score under the rule that kept its epoch
    (pruned to the target chosen for it, unpruned as trained). A run chosen for one target is read at that target
    only; a run kept as trained at every target."""
    columns = ["dataset", "rule", "target", "method", "seed", "dense", "pruned", "validation"]
    found = []
    for results_dir in (d for d in results_dirs if d is not None and finished_runs(d)):
        rows = primary_rows(load_table(results_dir, "pruning")).merge(_run_rules(results_dir), on=RUN_KEYS)
        rows = rows[rows["protocol"] == "corrected"].assign(fraction=lambda r: r["fraction"].round(6))
        for (dataset, method, seed, rule), run in rows.groupby(["dataset", "method", "seed", "rule"]):
            at = run.groupby("fraction")[["accuracy_mean", "val_accuracy_mean"]].mean()
            for target in (t for t in TARGETS if rule in (AS_TRAINED, _chosen_for(t)) and t in at.index):
                if 0.0 in at.index:
                    scored = 0.0 if rule == AS_TRAINED else target
                    found.append({"dataset": dataset, "rule": rule, "target": target, "method": method,
                                  "seed": seed, "dense": at.loc[0.0, "accuracy_mean"],
                                  "pruned": at.loc[target, "accuracy_mean"],
                                  "validation": at.loc[scored, "val_accuracy_mean"]})
    return pd.DataFrame(found, columns=columns)


def _chosen_for(target: float) -> str:
    """The label of the rule chosen for a target."""
    return RULE_LABELS[TARGET_RULES[TARGETS.index(target)]]


def _cell(judged: pd.DataFrame, dataset: str, rule: str, target: float) -> pd.DataFrame:
    """One cell's rows: every method's seeds at a dataset, rule and target."""
    return judged[(judged["dataset"] == dataset) & (judged["rule"] == rule) & (judged["target"] == target)]


def on_common_seeds(judged: pd.DataFrame) -> pd.DataFrame:
    """Each cell's rows on the seeds every method of its dataset has trained in it: a cell is judged only once all
    its methods share a seed, and then on the shared seeds alone (a cell still training is left out)."""
    methods = judged.groupby("dataset")["method"].agg(set)
    kept = []
    for (dataset, _, _), cell in judged.groupby(["dataset", "rule", "target"], sort=False):
        seeds = set.intersection(*(set(cell.loc[cell["method"] == m, "seed"]) for m in methods[dataset]))
        kept.append(cell[cell["seed"].isin(seeds)])
    return pd.concat(kept) if kept else judged


def _pruned(cell: pd.DataFrame, method: str) -> pd.Series:
    """A method's test accuracy pruned to the cell's target, one value per seed."""
    return cell.loc[cell["method"] == method].set_index("seed")["pruned"]


def rival(cell: pd.DataFrame) -> str | None:
    """The non-Bayesian method with the highest mean validation score in a cell: chosen on validation data."""
    scores = cell[~cell["method"].isin(BAYESIAN)].groupby("method")["validation"].mean().dropna()
    return None if scores.empty else scores.idxmax()


def _gap(first: pd.Series, second: pd.Series) -> Interval | None:
    """First minus second over seeds (Welch's interval), None where either is missing."""
    return difference(first.to_numpy(), second.to_numpy()) if len(first) and len(second) else None


def cell_verdicts(cell: pd.DataFrame) -> dict[str, str]:
    """The four accuracy claims in one cell (dataset, rule, target), each from its intervals over seeds."""
    bbb = _pruned(cell, "bbb")
    baselines = sorted(set(cell["method"]) - set(BAYESIAN))
    verdicts = {key: NOT_TESTED for key in CLAIMS}
    if len(bbb):
        lost = cell.loc[cell["method"] == "bbb", "dense"].to_numpy() - bbb.to_numpy()
        verdicts["keeps"] = interval(lost).below(KEEPS)
        gaps = [gap for gap in (_gap(bbb, _pruned(cell, m)) for m in baselines) if gap is not None]
        verdicts["most accurate"] = combine([gap.above(0.0) for gap in gaps]) if gaps else NOT_TESTED
        matched = _gap(bbb, _pruned(cell, MATCHED_MAP))
        verdicts["posterior"] = matched.above(0.0) if matched else NOT_TESTED
    collapsed = [interval((run["dense"] - run["pruned"]).to_numpy()).above(COLLAPSES)
                 for _, run in cell[cell["method"].isin(baselines)].groupby("method")]
    verdicts["collapse"] = _all_or_none(collapsed)
    return verdicts


def _all_or_none(verdicts: list[str]) -> str:
    """A claim about every baseline: holds if it holds for each, does not hold if it fails for any, else
    inconclusive ("does not hold" for a claim that fails for every one, never "partly")."""
    return combine(verdicts) if verdicts else NOT_TESTED


def _mean(values: pd.Series) -> float:
    """Mean over seeds (NaN for none)."""
    return float(values.mean()) if len(values) else float("nan")


def target_table(judged: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, target and rule: BBB's test accuracy pruned to the target, MAP under its prior family beside
    it, the validation-chosen best baseline beside it, BBB's difference from each with its 95 % interval, the
    seeds every method shares (`on_common_seeds`), and the four claims' verdicts; a cell whose methods share no
    seed yet has no numbers and every verdict `WAITING`."""
    rows = []
    common = on_common_seeds(judged)
    for dataset in mnist_first(judged["dataset"].unique()):
        for target in TARGETS:
            for rule in (_chosen_for(target), AS_TRAINED):
                if _cell(judged, dataset, rule, target).empty:
                    continue
                cell = _cell(common, dataset, rule, target)
                if cell.empty:
                    rows.append({"dataset": dataset, "target": target, "rule": rule, "seeds": 0,
                                 **{key: WAITING for key in CLAIMS}})
                    continue
                bbb, matched = _pruned(cell, "bbb"), _pruned(cell, MATCHED_MAP)
                best = rival(cell)
                row = {"dataset": dataset, "target": target, "rule": rule, "seeds": int(cell["seed"].nunique()),
                       "BBB": _mean(bbb), "MAP, same prior": _mean(matched),
                       "BBB − MAP": _gap(bbb, matched),
                       "best baseline": method_label(best) if best else "—",
                       "baseline accuracy": _mean(_pruned(cell, best)) if best else float("nan"),
                       "BBB − baseline": _gap(bbb, _pruned(cell, best)) if best else None}
                rows.append({**row, **cell_verdicts(cell)})
    return pd.DataFrame(rows)


def method_table(judged: pd.DataFrame, rule_kind: str = "chosen") -> pd.DataFrame:
    """Each method's test accuracy pruned to each target under the rule chosen for it (or as trained): mean over
    seeds, per dataset; columns are the targets."""
    judged = on_common_seeds(judged)
    chosen = judged["rule"] != AS_TRAINED if rule_kind == "chosen" else judged["rule"] == AS_TRAINED
    means = judged[chosen].groupby(["dataset", "method", "target"])["pruned"].mean().unstack("target")
    return means.rename(index=method_label, level="method")


def verdict_matrices(table: pd.DataFrame, rule_kind: str = "chosen", uncertainty: dict | None = None
                     ) -> dict[str, pd.DataFrame]:
    """Per dataset (its label), the claims by target ('98 %'), under the rule chosen for each target (or as trained):
    the verdict words, narrow enough for the page; with the cheap-posterior claim
    (`cheap_posteriors.cheap_posterior_claim`) as a last row where it was judged, "—" at the targets it does not
    speak of."""
    rows = table[table["rule"] != AS_TRAINED] if rule_kind == "chosen" else table[table["rule"] == AS_TRAINED]
    judged = {(cell["dataset"], cell["fraction"]): cell["verdict"] for cell in uncertainty["cells"]} \
        if uncertainty and uncertainty["cells"] and rule_kind == "chosen" else {}
    matrices = {}
    for dataset in mnist_first(rows["dataset"]) if not rows.empty else []:
        of_dataset = rows[rows["dataset"] == dataset]
        matrix = of_dataset.set_index(of_dataset["target"].map(fraction_label))[list(CLAIMS)].rename(columns=CLAIMS).T
        matrix.columns.name = None
        if judged:
            matrix.loc[UNCERTAINTY_CLAIM] = [judged.get((dataset, target), "—") for target in of_dataset["target"]]
        matrices[DATASET_LABELS.get(dataset, dataset)] = matrix
    return matrices


UNCERTAINTY_CLAIM = "BBB's uncertainty beats a cheap posterior's"


def target_reading(table: pd.DataFrame) -> str:
    """The per-target judgement as a list, a claim an item: where BBB keeps its accuracy, where it is the most accurate,
    and what MAP under its own prior does, under the rule chosen for each target."""
    chosen = table[table["rule"] != AS_TRAINED] if not table.empty else table
    if chosen.empty:
        return "The seeds trained at the points chosen for each target have not run yet."
    waiting = chosen[chosen["seeds"] == 0]
    chosen = chosen[chosen["seeds"] > 0]
    later = _still_training(waiting)
    if chosen.empty:
        return f"No cell has every method chosen for its target trained on a shared seed yet. {later}".strip()
    low, high = chosen["seeds"].min(), chosen["seeds"].max()
    seeds = "one seed" if high == 1 else f"{low} seeds" if low == high else f"{low} to {high} seeds"
    items = [f"- {claim}: {_where(chosen, key)}" for key, claim in (
        ("keeps", "BBB keeps its accuracy"), ("most accurate", "BBB is the most accurate model"),
        ("posterior", "BBB beats MAP under its own prior"))]
    return (f"Each method chosen for the target it is judged at ({seeds} a cell, every method on the same seeds; "
            "95 % intervals):\n\n" + ";\n".join(items) + "." + (f"\n\n{later}" if later else ""))


def _still_training(waiting: pd.DataFrame) -> str:
    """The cells not judged yet, in a sentence; empty where there are none."""
    if waiting.empty:
        return ""
    return f"Not judged yet, some methods still training: the cells {places(zip(waiting['dataset'], waiting['target']))}."


def posterior_beyond_ninety(table: pd.DataFrame) -> str:
    """The report's answer beyond 90 %: where, chosen for 95-99 % pruned, BBB keeps more than MAP under its own prior
    (the posterior at work), then where it is also the most accurate model and where the baseline chosen on validation
    keeps more still; or that it keeps no more anywhere; empty while no such cell is decided."""
    if table.empty:
        return ""
    cells = table[(table["rule"] != AS_TRAINED) & (table["target"] > 0.9)]
    held = cells[cells["posterior"] == HOLDS]
    if len(held):
        best = held[held["most accurate"] == HOLDS]
        beaten = held[held["most accurate"] == FAILS]
        after = [f"{places(zip(best['dataset'], best['target']))} it is the most accurate model of all"] if len(best) else []
        after += [f"{places(zip(rows['dataset'], rows['target']))}, {baseline}, chosen on validation, keeps more still"
                  for baseline, rows in beaten.groupby("best baseline", sort=False)]
        return ("Chosen for sparser targets, though, BBB keeps more than its own prior without a posterior "
                f"{places(zip(held['dataset'], held['target']))}: there its posterior does the work."
                + (f" {'; '.join(after)}.".replace(" on", " On", 1) if after else ""))
    if len(cells) and (cells["posterior"] == FAILS).all():
        return "Chosen for 95 to 99 % pruned too, its own prior without a posterior keeps as much."
    return ""


def _where(table: pd.DataFrame, key: str) -> str:
    """Where a claim holds, fails and is undecided: 'holds on MNIST at 90 and 95 %; fails on Fashion-MNIST at 99 %';
    a verdict that rests on one seed apart, and said so."""
    parts = []
    for word, label in [(w, w) for w in (HOLDS, FAILS, INCONCLUSIVE)] + [
            (f"{w} (one seed)", f"{w}, so far on one seed,") for w in (HOLDS, FAILS)]:
        cells = [(d, t) for d, t, v in zip(table["dataset"], table["target"], table[key]) if v == word]
        if cells:
            parts.append(f"{label} {places(cells)}")
    return "; ".join(parts) or "not tested"


def formatted_target_table(table: pd.DataFrame) -> pd.DataFrame:
    """The target table for a reader: accuracies in %, differences with their intervals in points, the rule in
    words; a handful of columns."""
    table = table[table["seeds"] > 0] if not table.empty else table
    if table.empty:
        return table
    shown = pd.DataFrame({
        "dataset": table["dataset"].map(lambda d: DATASET_LABELS.get(d, d)), "pruned": table["target"].map(fraction_label),
        "rule": table["rule"].map(lambda r: "as trained" if r == AS_TRAINED else "for the target"),
        "BBB (%)": (100 * table["BBB"]).round(1),
        "BBB − MAP, same prior (points)": [gap.text(1, 100) if gap else "—" for gap in table["BBB − MAP"]],
        "best baseline (by validation)": table["best baseline"],
        "BBB − baseline (points)": [gap.text(1, 100) if gap else "—" for gap in table["BBB − baseline"]],
        "seeds": table["seeds"]})
    return shown.set_index(["dataset", "pruned", "rule"])


def kept_against_cap(*results_dirs: Path | None) -> pd.DataFrame:
    """Every judged run's kept epoch against its cap (`targets.against_cap`), per dataset, method and rule."""
    frames = [run_epochs(d).merge(_run_rules(d), on=RUN_KEYS) for d in results_dirs if d is not None and finished_runs(d)]
    columns = ["seeds", "epoch kept", "most epochs trained", "cap", "stopped by the cap", "kept the cap's last epoch"]
    if not frames:
        return pd.DataFrame(columns=columns)
    runs = pd.concat(frames, ignore_index=True)
    runs = runs[runs["protocol"] == "corrected"]
    rows = []
    for dataset in mnist_first(runs["dataset"]):
        of_dataset = runs[runs["dataset"] == dataset]
        methods = [m for m in COMPARED_FIRST if m in set(of_dataset["method"])]
        for method in methods + [m for m in method_order(of_dataset["method"]) if m not in methods]:
            for rule in (r for r in RULE_LABELS.values() if r in set(of_dataset["rule"])):
                part = of_dataset[(of_dataset["method"] == method) & (of_dataset["rule"] == rule)]
                if not part.empty:
                    rows.append({"dataset": DATASET_LABELS.get(dataset, dataset), "method": method_label(method),
                                 "rule": rule, **against_cap(part)})
    return pd.DataFrame(rows).set_index(["dataset", "method", "rule"])[columns]


