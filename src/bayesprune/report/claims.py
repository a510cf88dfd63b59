"""The study's claims set against this profile's runs, each with a verdict computed from the numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from bayesprune.config import SELECTIONS, target_score
from bayesprune.pipeline.results import RUN_KEYS, finished_runs, load_table
from bayesprune.report.calibration import has_uncertainty, pruning_keeps_uncertainty
from bayesprune.report.frontier import as_points, at_chosen_rate, compression_verdict, load_finetuned, superseded
from bayesprune.report.formatting import mnist_first
from bayesprune.report.operating_point import RULES, decay_reading, operating_point_tables, table2
from bayesprune.report.structured import has_bcgnj, prunes_units_and_bits
from bayesprune.report.reference import BLUNDELL_TABLE2, REPORTED, STUDY_BBB_OVER_SGD, method_label
from bayesprune.report.tables import main_protocols, primary_rows, spread_and_kept
from bayesprune.report.verdicts import (COLLAPSES, FAILS, HOLDS, INCONCLUSIVE, KEEPS, NOT_TESTED, Interval, combine,
                                       difference, interval)
from bayesprune.training.train import chosen_epoch

TABLE2_SLACK = 0.2  # Table 2 holds if pruning raises our error by at most Blundell's rise plus 0.2 points
STILL_LEARNING = 0.003  # test accuracy still rising by more than 0.3 points over the last fifth of training
BAYESIAN = ("bbb", "sparsevd", "bcgnj")  # not baselines of the study's claims: every other method is
POSTERIOR_MARGIN = 0.02  # the posterior "adds" if BBB loses at least 2 points less than every MAP estimate at 90 %
HUGE_MARGIN = 0.10  # "by a huge margin": BBB at least 10 points above every other method at 90 % pruned
MAP_METHODS = ("-l2", "-l1", "-mixture")  # name endings of the point estimates trained under a prior


def seed_accuracy(pruning: pd.DataFrame) -> pd.Series:
    """Accuracy (own criterion, posterior mean) per dataset, protocol, method, fraction and seed."""
    rows = primary_rows(main_protocols(pruning))
    keys = [rows["dataset"], rows["protocol"], rows["method"], rows["fraction"].round(6).rename("fraction"), rows["seed"]]
    return rows.groupby(keys)["accuracy_mean"].mean()


def accuracy_table(pruning: pd.DataFrame) -> pd.Series:
    """Mean accuracy over seeds (own criterion, posterior mean) per dataset, protocol, method and fraction."""
    return seed_accuracy(pruning).groupby(level=["dataset", "protocol", "method", "fraction"]).mean()


def _datasets(accuracy: pd.Series) -> list[str]:
    """The datasets present, MNIST first."""
    return mnist_first(accuracy.index.get_level_values("dataset"))


def _seeds(accuracy: pd.Series, dataset: str, protocol: str, method: str, fraction: float) -> pd.Series:
    """One cell's per-seed accuracies (empty where it did not run)."""
    try:
        return accuracy.loc[(dataset, protocol, method, round(fraction, 6))]
    except KeyError:
        return pd.Series(dtype=float)


def _lost(accuracy: pd.Series, dataset: str, protocol: str, method: str, fraction: float = 0.9) -> pd.Series:
    """Accuracy each seed loses when `fraction` is pruned (empty where it did not run)."""
    dense, pruned = (_seeds(accuracy, dataset, protocol, method, f) for f in (0.0, fraction))
    return (dense - pruned).dropna()


def _fmt(values: dict[str, Interval], digits: int = 3) -> str:
    """'mnist 0.012 [0.004, 0.020], fashion-mnist 0.034 (one seed)'."""
    return ", ".join(f"{key} {value.text(digits)}" for key, value in values.items()) or "no runs"


def _lost_intervals(accuracy: pd.Series, protocol: str, method: str, fraction: float = 0.9) -> dict[str, Interval]:
    """Per dataset, the accuracy lost at `fraction` pruned with its interval over seeds."""
    found = {}
    for dataset in _datasets(accuracy):
        lost = _lost(accuracy, dataset, protocol, method, fraction)
        if len(lost):
            found[dataset] = interval(lost)
    return found


def baselines(accuracy: pd.Series, protocol: str = "corrected") -> list[str]:
    """The methods the study's claims set against BBB: every non-Bayesian one that ran (regularised included)."""
    present = accuracy.xs(protocol, level="protocol").index.get_level_values("method").unique() \
        if protocol in accuracy.index.get_level_values("protocol") else []
    return [m for m in present if m not in BAYESIAN]


def bbb_keeps_accuracy(accuracy: pd.Series) -> dict[str, Any]:
    """Claim 1a: BBB keeps its accuracy at 90 % pruned (at most KEEPS lost, the interval over seeds below it)."""
    corrected, study = _lost_intervals(accuracy, "corrected", "bbb"), _lost_intervals(accuracy, "study", "bbb")
    verdict = combine([i.below(KEEPS) for i in corrected.values()]) if corrected else NOT_TESTED
    if not verdict.startswith(HOLDS) and study and combine([i.below(KEEPS) for i in study.values()]).startswith(HOLDS):
        verdict = "holds only under the study's code, where pruning never reaches the network"
    reported = {d: REPORTED[d]["bbb"][0] - REPORTED[d]["bbb"][3] for d in REPORTED}
    return {"claim": "BBB keeps its accuracy after 90 % of its weights are pruned",
            "study": "accuracy lost at 90 %: " + ", ".join(f"{d} {v:.4f}" for d, v in reported.items()),
            "ours": f"lost, corrected: {_fmt(corrected)}; study protocol: {_fmt(study)}",
            "verdict": verdict, "see": ("pruning", "audit")}


def baselines_collapse(accuracy: pd.Series) -> dict[str, Any]:
    """Claim 1b: SGD and dropout networks collapse at 90 % pruned (more than COLLAPSES lost), judged per baseline,
    the regularised ones included."""
    methods = baselines(accuracy)
    verdicts, lines = {}, []
    for method in methods:
        lost = _lost_intervals(accuracy, "corrected", method)
        if lost:
            verdicts[method] = combine([i.above(COLLAPSES) for i in lost.values()])
            lines.append(f"{method_label(method)}: {_fmt(lost)} ({verdicts[method]})")
    held = [m for m, v in verdicts.items() if v.startswith(HOLDS)]
    failed = [m for m, v in verdicts.items() if v.startswith(FAILS)]
    if not verdicts:
        verdict = NOT_TESTED
    elif len(held) == len(verdicts):
        verdict = HOLDS
    elif failed and held:  # some baselines collapse, some do not: the claim holds in part
        verdict = f"does not hold for {', '.join(method_label(m) for m in failed)}"
    elif failed:  # none collapses for sure: the claim fails, whatever the seeds leave open
        unclear = [method_label(m) for m in verdicts if m not in failed]
        verdict = FAILS + (f" (inconclusive for {', '.join(unclear)})" if unclear else "")
    else:
        verdict = INCONCLUSIVE
    return {"claim": "SGD and dropout networks collapse at 90 % pruned",
            "study": "lost at 90 %: " + "; ".join(
                f"{method_label(m)}: " + ", ".join(f"{d} {REPORTED[d][m][0] - REPORTED[d][m][3]:.4f}" for d in REPORTED)
                for m in REPORTED["mnist"] if m != "bbb"),
            "ours": "lost at 90 %, corrected: " + "; ".join(lines), "verdict": verdict, "see": ("pruning",)}


def _best_reported(dataset: str) -> str:
    """The study's BBB and best baseline at 90 % pruned on one dataset."""
    table = REPORTED[dataset]
    best = max((m for m in table if m != "bbb"), key=lambda m: table[m][3])
    return f"{dataset}: BBB {table['bbb'][3]:.4f}, best baseline {method_label(best)} {table[best][3]:.4f}"


def _against_each(accuracy: pd.Series, fraction: float = 0.9) -> dict[str, dict[str, Interval]]:
    """Per dataset: BBB minus every baseline at `fraction` pruned, over seeds. A claim about the best baseline is
    judged against each, so that no rival is picked, least of all on test images."""
    found = {}
    for dataset in _datasets(accuracy):
        bbb = _seeds(accuracy, dataset, "corrected", "bbb", fraction)
        others = {m: _seeds(accuracy, dataset, "corrected", m, fraction) for m in baselines(accuracy)}
        gaps = {m: difference(bbb, s) for m, s in others.items() if len(s)}
        if len(bbb) and gaps:
            found[dataset] = gaps
    return found


def _against_every_baseline(found: dict[str, dict[str, Interval]], margin: float) -> tuple[str, list[str]]:
    """BBB ahead of every baseline by more than `margin` on every dataset (each pair's interval above it), and per
    dataset the baseline closest to BBB, the one that decides."""
    verdict = combine([gap.above(margin) for gaps in found.values() for gap in gaps.values()]) if found else NOT_TESTED
    lines = []
    for dataset, gaps in found.items():
        closest = min(gaps, key=lambda m: gaps[m].mean)
        lines.append(f"{dataset}: BBB − {method_label(closest)} (the closest of {len(gaps)}) {gaps[closest].text()}")
    return verdict, lines


def bbb_prunes_best(accuracy: pd.Series) -> dict[str, Any]:
    """Claim 1c: at 90 % pruned BBB beats every baseline (BBB minus each one above 0, over seeds)."""
    verdict, lines = _against_every_baseline(_against_each(accuracy), 0.0)
    return {"claim": "At 90 % pruned, BBB is the most accurate model",
            "study": "; ".join(_best_reported(d) for d in REPORTED), "ours": "; ".join(lines) or "no runs",
            "verdict": verdict, "see": ("pruning",)}


def outperforms_by_a_huge_margin(accuracy: pd.Series) -> dict[str, Any]:
    """The study's abstract: BBB "outperforms all other methods by a huge margin" at 90 % pruned, read as at least
    HUGE_MARGIN above every baseline, the regularised ones included."""
    verdict, lines = _against_every_baseline(_against_each(accuracy), HUGE_MARGIN)
    return {"claim": "BBB outperforms all other methods by a huge margin (the study's abstract)",
            "study": "; ".join(_best_reported(d) for d in REPORTED),
            "ours": f"at 90 % pruned (huge: ≥ {HUGE_MARGIN:.2f}): " + ("; ".join(lines) or "no runs"),
            "verdict": verdict, "see": ("pruning", "operating_point")}


def posterior_not_prior(accuracy: pd.Series) -> dict[str, Any]:
    """BBB's robustness to pruning comes from its posterior, not from its prior: at 90 % pruned BBB loses at least
    POSTERIOR_MARGIN less accuracy than MAP under its own prior and than every L1 / L2 network. Does not hold
    where some MAP estimate loses no more than that margin above BBB's loss (the interval below it)."""
    maps = [m for m in baselines(accuracy) if m.endswith(MAP_METHODS)]
    verdicts, lines = [], []
    for dataset in _datasets(accuracy):
        bbb = _lost(accuracy, dataset, "corrected", "bbb")
        for method in maps:
            lost = _lost(accuracy, dataset, "corrected", method)
            if len(bbb) and len(lost):
                gap = difference(lost, bbb)  # how much more the MAP estimate loses
                verdicts.append(gap.above(POSTERIOR_MARGIN))
                lines.append(f"{dataset}, {method_label(method)} − BBB {gap.text()}")
    verdict = combine(verdicts) if verdicts else NOT_TESTED
    return {"claim": "BBB's robustness to pruning comes from its posterior, not from its prior",
            "study": "not examined: no baseline trained under a prior",
            "ours": f"accuracy lost at 90 %, MAP minus BBB (posterior adds: ≥ {POSTERIOR_MARGIN:.2f}): "
                    + ("; ".join(lines) or "no MAP runs"),
            "verdict": verdict, "see": ("operating_point",)}


def _study_style_ratio(report: dict[str, Any]) -> float:
    """The study-style BBB step (launched op by op) over SGD's step launched the same way: against the eagerly
    launched SGD where the machine ran one (a GPU, where SGD is otherwise one CUDA graph), else its SGD."""
    models = report.get("models", {})
    if "bbb-study" in models and "sgd-eager" in models:
        return models["bbb-study"]["step_ms"] / models["sgd-eager"]["step_ms"]
    return report["bbb-study/sgd"]


def bbb_cost(history: pd.DataFrame, bench: list[dict[str, Any]]) -> dict[str, Any]:
    """Claim 2: BBB costs about 10x the wall time of SGD (ours against the study's implementation style). The
    verdict rests on the benchmarks, where there are any (each model timed alone, median of repeats); a profile's
    own epochs are shown beside them but shared the machine with whatever else ran, so they decide only where no
    benchmark was run."""
    seconds = history[history["protocol"] == "corrected"].groupby("method")["seconds"].median()  # no paused epoch
    ratios, measured = {}, {}
    if {"bbb", "sgd"} <= set(seconds.index):
        ratios["this profile's epochs"] = seconds["bbb"] / seconds["sgd"]
    for report in bench:
        ratios[f"bench on {report['machine']}"] = measured[report["machine"]] = report["bbb/sgd"]
    worst = max((measured or ratios).values(), default=float("nan"))
    study_style = [f"{_study_style_ratio(r):.1f}x on {r['machine']}" for r in bench if "bbb-study/sgd" in r]
    verdict = ("holds" if worst >= 0.7 * STUDY_BBB_OVER_SGD else
               "holds only for the study's implementation" if worst <= 0.5 * STUDY_BBB_OVER_SGD else
               "partly: BBB is several times dearer, less than 10x")
    return {"claim": "BBB costs about 10x the training time of SGD",
            "study": "about 50 min against 5 min for 50 epochs (10x), RTX 3080",
            "ours": "BBB/SGD " + ", ".join(f"{k}: {v:.1f}x" for k, v in ratios.items())
                    + (f"; BBB written as the study writes it: {', '.join(study_style)}" if study_style else ""),
            "verdict": verdict, "see": ("compute", "training")}


def _epochs_to(run: pd.DataFrame, target: float) -> float:
    """The first epoch whose validation accuracy after pruning reaches target (NaN if none does)."""
    reached = run.loc[run["val_acc_pruned"] >= target, "epoch"]
    return float(reached.min()) if len(reached) else float("nan")


def fewer_epochs_to_a_pruned_accuracy(history: pd.DataFrame) -> dict[str, Any]:
    """Claim 2b: BBB needs fewer epochs: to reach a validation accuracy after 90 % pruning that every run of BBB and
    of the regularised (MAP) baselines reaches (the lowest of their best), BBB takes fewer epochs than each of them
    (the interval of the difference below 0); the seconds follow from each method's median epoch."""
    rows = history[history["protocol"] == "corrected"]
    if "val_acc_pruned" not in rows or rows["val_acc_pruned"].isna().all():
        return {"claim": "BBB needs fewer epochs than a regularised baseline to a given pruned accuracy",
                "study": "BBB needs fewer epochs (no measure)", "ours": "no per-epoch pruned validation accuracy",
                "verdict": NOT_TESTED, "see": ("training",)}
    compared = ["bbb", *[m for m in rows["method"].unique() if m.endswith(MAP_METHODS)]]
    verdicts, lines = [], []
    for dataset in mnist_first(rows["dataset"]):
        runs = rows[(rows["dataset"] == dataset) & rows["method"].isin(compared)].dropna(subset=["val_acc_pruned"])
        best = runs.groupby(["method", "seed"])["val_acc_pruned"].max()  # runs without a validation split left out
        methods = best.index.get_level_values("method").unique()
        if "bbb" not in methods or len(methods) < 2:
            continue
        target = best.min()
        epochs = {m: [_epochs_to(run, target) for _, run in runs[runs["method"] == m].groupby("seed")] for m in methods}
        seconds = runs.groupby("method")["seconds"].median()
        parts = [f"{method_label(m)} {interval(e).text(1)} epochs (~{interval(e).mean * seconds[m]:.0f} s)"
                 for m, e in epochs.items()]
        lines.append(f"{dataset}, to {target:.3f}: " + ", ".join(parts))
        verdicts += [difference(epochs["bbb"], e).below(0.0) for m, e in epochs.items() if m != "bbb"]
    return {"claim": "BBB needs fewer epochs than a regularised baseline to a given pruned accuracy",
            "study": "BBB needs fewer epochs than SGD (no measure given)",
            "ours": "; ".join(lines) or "no BBB and regularised runs side by side",
            "verdict": combine(verdicts) if verdicts else NOT_TESTED, "see": ("training", "compute")}


def spread_predicts_pruning(weights: pd.DataFrame, pruning: pd.DataFrame) -> dict[str, Any]:
    """Claim 3: wider weight distributions prune better."""
    frame = spread_and_kept(weights, pruning)
    corrected = frame[frame["protocol"] == "corrected"]
    rho = {d: g["std"].rank().corr(g["kept"].rank()) for d, g in corrected.groupby("dataset")}
    if corrected["method"].nunique() < 2:
        verdict = NOT_TESTED
    elif rho and min(rho.values()) >= 0.5:
        verdict = "holds"
    elif rho and max(rho.values()) <= 0.2:
        verdict = "does not hold"
    else:
        verdict = "weak or mixed"
    width = corrected.groupby(["dataset", "method"])["std"].mean()
    wider = {d: width[d].get("sgd", float("nan")) > width[d].drop("sgd", errors="ignore")
             .filter(like="dropout").max() for d in width.index.get_level_values(0).unique()}
    return {"claim": "Networks whose weights spread wider prune better (and SGD's spread wider than dropout's)",
            "study": "argued from the weight histograms; no measure across models",
            "ours": "Spearman(std, accuracy kept at 90 %), corrected runs: "
                    f"{', '.join(f'{d} {r:.2f}' for d, r in rho.items()) or 'no runs'}; "
                    f"SGD wider than every dropout model: {', '.join(f'{d} {w}' for d, w in wider.items())}",
            "verdict": verdict, "see": ("weights",)}


def underfitting(history: pd.DataFrame) -> dict[str, Any]:
    """Claim 4: every model still under-fits after 50 epochs (test accuracy still rising by more than
    STILL_LEARNING over the last fifth of each run, the interval over runs above it)."""
    rows = history[history["protocol"] == "corrected"]
    gains: dict[str, Interval] = {}
    for method, runs in rows.groupby("method"):
        per_run = []  # each run against its own last fifth: runs may stop at different epochs (early stopping)
        for _, run in runs.groupby([k for k in ("dataset", "seed", "variant") if k in runs]):
            curve = run.sort_values("epoch")["test_acc"].to_numpy()
            if len(curve) > 1:
                per_run.append(curve[-1] - curve[-1 - max(1, len(curve) // 5)])
        if per_run:
            gains[method_label(method)] = interval(per_run)
    epochs = int(rows["epoch"].max()) if len(rows) else 0
    verdicts = {m: g.above(STILL_LEARNING) for m, g in gains.items()}
    rising = [m for m, v in verdicts.items() if v.startswith(HOLDS)]
    unclear = [m for m, v in verdicts.items() if v.startswith(INCONCLUSIVE)]
    if not verdicts:
        verdict = NOT_TESTED
    elif len(rising) == len(verdicts) or not (rising or unclear):
        verdict = combine(list(verdicts.values()))
    else:
        verdict = "; ".join(part for part in (f"holds for {', '.join(rising)}" if rising else "",
                                              f"inconclusive for {', '.join(unclear)}" if unclear else "") if part)
    return {"claim": f"All models still under-fit after 50 epochs (this profile: {epochs})",
            "study": "150 epochs helped only a little",
            "ours": "test accuracy gained over the last fifth of training (runs): " + _fmt(gains),
            "verdict": verdict, "see": ("training",)}


def blundell_table2(accuracy: pd.Series) -> dict[str, Any]:
    """Claim B: Blundell et al.'s Table 2, judged in two parts: its shape (removing 95 % and 98 % of BBB's weights
    by signal-to-noise raises the MNIST test error by no more than their rise plus TABLE2_SLACK points) and its
    level (the unpruned error no more than TABLE2_SLACK points above their 1.24 %). `parts`: our evidence as
    phrases, for a list."""
    reported = {f: BLUNDELL_TABLE2[f] - BLUNDELL_TABLE2[0.0] for f in (0.95, 0.98)}
    error = {f: 100 * (1 - _seeds(accuracy, "mnist", "corrected", "bbb", f)) for f in (0.0, 0.95, 0.98)}
    if all(len(e) for e in error.values()):
        rise = {f: interval(error[f] - error[0.0]) for f in reported}
        shape = combine([rise[f].below(reported[f] + TABLE2_SLACK) for f in reported])
        level = interval(error[0.0]).below(BLUNDELL_TABLE2[0.0] + TABLE2_SLACK)
        verdict = f"shape: {shape}; level: {level}"
        parts = [f"{interval(error[0.0]).text(2)} % unpruned", f"{interval(error[0.95]).text(2)} % at 95 % removed",
                 f"{interval(error[0.98]).text(2)} % at 98 %",
                 f"rises of {rise[0.95].text(2)} and {rise[0.98].text(2)} points"]
        ours = f"MNIST test error {', '.join(parts[:3])}; {parts[3]}"
    else:
        verdict, ours, parts = NOT_TESTED, "no MNIST BBB runs pruned at 95 % and 98 %", []
    return {"claim": "Blundell et al.'s Table 2: removing 95 % or 98 % of BBB's weights by signal-to-noise "
                     "barely changes its MNIST test error",
            "study": (f"Blundell et al. (2 x 1200 units): {BLUNDELL_TABLE2[0.0]:.2f} % unpruned, "
                      f"{BLUNDELL_TABLE2[0.95]:.2f} % at 95 %, {BLUNDELL_TABLE2[0.98]:.2f} % at 98 %"),
            "ours": ours, "parts": parts, "verdict": verdict, "see": ("operating_point",)}


def table2_judged(blundell_dir: Path) -> dict[str, Any]:
    """Claim B judged on one profile's BBB runs (`blundell_table2` of their pruning sweeps)."""
    return blundell_table2(seed_accuracy(load_table(blundell_dir, "pruning")))


def decayed_table2(constant_dir: Path, decayed_dir: Path) -> tuple[pd.DataFrame, dict[str, Any], str | None]:
    """A decaying rate's Table 2 (`operating_point.table2`), Claim B judged on it, and its reading against the
    constant rate (`operating_point.decay_reading`; None where the constant rate has not run)."""
    reading = decay_reading(constant_dir, decayed_dir) if finished_runs(constant_dir) else None
    return table2(decayed_dir), table2_judged(decayed_dir), reading


def bbb_compresses_better(pruning: pd.DataFrame, finetuned: pd.DataFrame | None = None,
                          anchored: pd.DataFrame | None = None) -> dict[str, Any]:
    """Bayesian training compresses better: BBB's test error against the non-Bayesian methods' at the same
    compression, at the published anchors' ratios (`frontier.compression_verdict`), each pruned once and then
    fine-tuned where the regime fine-tunes, and each method at its point chosen for the ratio where `anchored`
    (`frontier.anchored_points`) has it."""
    ours, verdict = compression_verdict(as_points(pruning, finetuned), anchored=anchored)
    return {"claim": "Bayesian training (BBB) compresses better than a non-Bayesian method",
            "study": "BBB keeps its accuracy at 90 % pruned while SGD and dropout collapse (no fine-tuning)",
            "ours": ours, "verdict": verdict,
            "see": ("frontier",)}


def claims_table(
    pruning: pd.DataFrame, history: pd.DataFrame, weights: pd.DataFrame, bench: list[dict[str, Any]],
    finetuned: pd.DataFrame | None = None, uncertainty: pd.DataFrame | None = None,
    precision: pd.DataFrame | None = None, anchored: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per claim: the study's evidence, ours, the verdict and the chapters behind it (finetuned: the
    regime's fine-tuned pruning sweeps, uncertainty: its calibration and OOD tables, precision: BC-GNJ's bits,
    anchored: the frontier's points chosen per anchor ratio, where it has them)."""
    accuracy = seed_accuracy(pruning)
    rows = [bbb_keeps_accuracy(accuracy), baselines_collapse(accuracy), bbb_prunes_best(accuracy),
            outperforms_by_a_huge_margin(accuracy), posterior_not_prior(accuracy),
            bbb_cost(history, bench), fewer_epochs_to_a_pruned_accuracy(history),
            spread_predicts_pruning(weights, pruning), underfitting(history),
            blundell_table2(accuracy), bbb_compresses_better(pruning, finetuned, anchored), pruning_keeps_uncertainty(uncertainty),
            prunes_units_and_bits(pruning, precision)]
    return pd.DataFrame(rows)


REGIME_TABLES = ("pruning", "history", "weights")


def _tables(folder: Path, finetuned: bool = False) -> tuple:
    """A regime's tables: pruning, history and weights, then its fine-tuned sweeps (at the rate chosen on
    validation data), its uncertainty table and BC-GNJ's bits (None where it has none)."""
    folder = Path(folder)
    return (*(load_table(folder, table) for table in REGIME_TABLES),
            at_chosen_rate(load_finetuned(folder)) if finetuned else None,
            load_table(folder, "uncertainty") if has_uncertainty(folder) else None,
            load_table(folder, "precision") if has_bcgnj(folder) else None)


def _joined_tables(folders: list[Path], finetuned: bool = False) -> tuple:
    """One regime's tables read from several folders (one profile per dataset, or a later profile retraining a
    method: `frontier.superseded`), each table stacked where any folder has it."""
    parts = [_tables(folder, finetuned) for folder in folders]
    trains = [set(zip(part[0]["dataset"], part[0]["method"])) for part in parts]
    return tuple(superseded(list(column), trains) for column in zip(*parts))


POINT_REGIMES = {"point": "as trained", "point-pruned": "pruned 90 %"}  # the operating point under each rule


def regimes(
    results_dir: Path, converged_dir: Path, search_dir: Path, blundell_dir: Path,
    frontier_dirs: tuple[Path, ...] = (), compression_dir: Path | None = None, anchored: pd.DataFrame | None = None,
) -> dict[str, tuple]:
    """The regimes the claims are judged in, key -> (title, its pruning, history and weights tables, its
    fine-tuned sweeps and its uncertainty table, each None where it has none): the
    profile's runs (`recipe`; for the reference, the study's 50-epoch recipe; beside another profile's, the
    reference's as `reference`), every model at its operating
    point (`point`: the converged runs, the search's standing in where a model has none) and Blundell et
    al.'s protocol (`blundell`), and the frontier (`frontier`: its profiles on each dataset read as one, each method
    at its point chosen per anchor ratio where `anchored`, `frontier.anchored_points`, has it), each where it has run."""
    name, reference = Path(results_dir).name, Path(results_dir).parent / "paper"
    found = {"recipe": ("the study's recipe, 50 epochs" if name == "paper" else f"profile {name}", _tables(results_dir))}
    if name != "paper" and finished_runs(reference):
        found["reference"] = ("the study's recipe, 50 epochs (the reference runs)", _tables(reference))
    if finished_runs(converged_dir) or finished_runs(search_dir):
        uncertainty = load_table(converged_dir, "uncertainty") if has_uncertainty(converged_dir) else None
        for key, rule in POINT_REGIMES.items():
            point = operating_point_tables(converged_dir, search_dir, REGIME_TABLES, rule)
            if point[0].empty or (key != "point" and not (point[0]["seed"] > 0).any()):
                continue  # a second rule only where converged has run it
            complete = (point[0]["seed"] > 0).all() and point[0]["seed"].nunique() >= 3
            runs = set(map(tuple, point[0][RUN_KEYS].drop_duplicates().to_numpy()))
            kept = None if uncertainty is None else uncertainty[
                [tuple(k) in runs for k in uncertainty[RUN_KEYS].to_numpy()]]
            found[key] = (f"at the operating point, {rule}" + ("" if complete else " (partial, see the claims chapter)"),
                          (*point, None, kept))
    if finished_runs(blundell_dir):
        found["blundell"] = ("Blundell et al.'s protocol (BBB only)", _tables(blundell_dir))
    frontiers = [Path(folder) for folder in frontier_dirs if finished_runs(folder)]
    if frontiers:
        found["frontier"] = ("LeNet-300-100 with fine-tuning (the frontier)",
                             (*_joined_tables(frontiers, finetuned=True), anchored))
    if compression_dir is not None and has_bcgnj(compression_dir) and not has_bcgnj(results_dir):
        found["compression"] = ("Bayesian compression (BC-GNJ)", _tables(compression_dir))
    return found


def claims_by_regime(
    regimes: dict[str, tuple], bench: list[dict[str, Any]]
) -> pd.DataFrame:
    """The claims judged once per regime (name -> its pruning, history and weights tables, then optionally its
    fine-tuned sweeps and uncertainty table), side by side:
    the study's evidence once, then our numbers and the verdict of each regime."""
    frames = {name: claims_table(*tables[:3], bench, *tables[3:]) for name, tables in regimes.items()}
    first = next(iter(frames.values()))
    table = first[["claim", "study", "see"]].copy()
    for name, frame in frames.items():
        table[f"ours: {name}"] = frame["ours"]
        table[f"verdict: {name}"] = frame["verdict"]
    return table


def regime_comparison(found: dict[str, tuple]) -> pd.DataFrame:
    """What changes between regimes (found: key -> (title, tables) as `regimes` gives), per dataset: BBB's
    test accuracy unpruned and at 90 % and 98 % pruned by signal-to-noise and by |mu| (corrected runs, mean over
    seeds)."""
    rows = []
    for title, (pruning, *_) in found.values():
        frame = pruning[pruning["protocol"] == "corrected"]
        bbb = frame[frame["method"] == "bbb"]
        accuracy = bbb.groupby(["dataset", "criterion", bbb["fraction"].round(6)])["accuracy_mean"].mean()
        for dataset in mnist_first(frame["dataset"]):
            row = {"regime": title, "dataset": dataset, "BBB unpruned": accuracy.get((dataset, "snr", 0.0))}
            for criterion, label in (("snr", "SNR"), ("magnitude", "|mu|")):
                for fraction in (0.9, 0.98):
                    row[f"BBB {100 * fraction:g} % {label}"] = accuracy.get((dataset, criterion, fraction))
            rows.append(row)
    return pd.DataFrame(rows).set_index(["regime", "dataset"])


FAIR_FRACTIONS = (0.9, 0.98)  # where the fair comparison is read: the study's fraction, and the far end


def validation_scores(history: pd.DataFrame, rule: str) -> pd.Series:
    """Each run's validation score under a selection rule (`config.SELECTIONS` or `TARGET_RULES`) at the epoch that
    rule keeps (`training.train.chosen_epoch`): dense validation accuracy as trained, accuracy pruned 90 % under
    the pruned rule, pruned to f chosen for f; per dataset, protocol, method and seed (mean over a seed's runs),
    runs that never recorded the score left out."""
    score = rule if rule in SELECTIONS else target_score(rule)
    keys = ["dataset", "protocol", "method", "seed"]
    if history is None or score not in history or "val_acc" not in history:
        return pd.Series(dtype=float, index=pd.MultiIndex.from_tuples([], names=keys))
    scores = {}
    for run, epochs in history.dropna(subset=[score, "val_acc"]).groupby(keys + ["variant"], dropna=False):
        records = epochs.sort_values("epoch").to_dict("records")
        scores[run] = records[chosen_epoch(records, rule) - 1][score]
    table = pd.Series(scores, dtype=float)
    table.index = table.index.set_names(keys + ["variant"]) if len(table) else table.index
    return table.groupby(level=keys).mean() if len(table) else validation_scores(None, rule)


def validation_rival(seeds: pd.Series, validation: pd.Series, methods: list[str],
                     fraction: float) -> tuple[str, pd.Series] | None:
    """Of `methods` (one dataset's test accuracies per method, fraction and seed), the one with the highest mean
    validation score under the regime's own rule, with its test accuracies per seed: a rival chosen before any
    test number is read. None where no method has both."""
    present = [m for m in methods if (m, fraction) in seeds.index.droplevel("seed") and m in validation.index]
    if not present:
        return None
    best = max(present, key=lambda m: validation[m].mean())
    return best, seeds[(best, fraction)]


def _compared(difference_: Interval) -> str:
    """BBB against another model in one word, from their difference's 95 % interval."""
    if difference_.seeds < 2:
        return "one seed"
    return "more" if difference_.low > 0 else "less" if difference_.high < 0 else "no clear difference"


def fair_comparison_table(found: dict[str, tuple]) -> pd.DataFrame:
    """The fair comparison, per selection rule of the operating point, dataset and fraction pruned (90 %, 98 %):
    BBB's accuracy (SNR) beside the best point estimate under a prior and the best plain baseline (each by
    magnitude), corrected runs, mean over seeds, with BBB's difference from each and its 95 % interval. "Best"
    is the highest validation score under the same rule (`validation_rival`), never a test number."""
    rows = []
    codes = {label: code for code, label in RULES.items()}
    for key, rule in POINT_REGIMES.items():
        if key not in found:
            continue
        seeds = seed_accuracy(found[key][1][0]).xs("corrected", level="protocol")
        validation = validation_scores(found[key][1][1], codes[rule])
        validation = validation.xs("corrected", level="protocol") if len(validation) else validation
        methods = set(seeds.index.get_level_values("method"))
        maps = sorted(m for m in methods if m.endswith(MAP_METHODS))
        groups = {"MAP estimate": maps, "plain baseline": sorted(methods - set(maps) - set(BAYESIAN))}
        for dataset in mnist_first(seeds.index.get_level_values("dataset")):
            at = seeds[dataset]
            for fraction in FAIR_FRACTIONS:
                if ("bbb", fraction) not in at.index.droplevel("seed"):
                    continue
                bbb = at[("bbb", fraction)]
                row = {"rule": rule, "dataset": dataset, "pruned": f"{100 * fraction:g} %", "BBB": bbb.mean()}
                chosen = validation[dataset] if dataset in validation.index.get_level_values("dataset") else \
                    pd.Series(dtype=float)
                for kind, group in groups.items():
                    best = validation_rival(at, chosen, group, fraction)
                    if best:
                        gap = difference(bbb, best[1])
                        row |= {f"best {kind}": method_label(best[0]), f"{kind} accuracy": best[1].mean(),
                                f"BBB − {kind}": gap.text(), f"BBB against the {kind}": _compared(gap)}
                rows.append(row)
    return pd.DataFrame(rows).set_index(["rule", "dataset", "pruned"]) if rows else pd.DataFrame()


def fair_counts(table: pd.DataFrame, kind: str = "MAP estimate") -> dict[str, int]:
    """How often BBB keeps more, less or not clearly different accuracy than the best model of `kind` in the fair
    comparison table (with "one seed" where a comparison rests on one)."""
    counts = table[f"BBB against the {kind}"].value_counts()
    return {word: int(counts.get(word, 0)) for word in ("more", "less", "no clear difference", "one seed")}


def fair_comparison_reading(table: pd.DataFrame) -> str:
    """The fair comparison table in one sentence: how often BBB keeps clearly more or clearly less accuracy than
    the best point estimate under a prior, and than the best plain baseline (the rest: no clear difference)."""
    if table.empty:
        return "The operating point has not run."
    phrases = []
    for kind in ("MAP estimate", "plain baseline"):
        if f"BBB against the {kind}" in table:
            counts = fair_counts(table, kind)
            single = f" ({counts['one seed']} rest on one seed)" if counts["one seed"] else ""
            phrases.append(f"clearly more than the best {kind} in {counts['more']} and clearly less in "
                           f"{counts['less']}{single}")
    return (f"Of {len(table)} comparisons (each selection rule, dataset and target, judged on 95 % intervals over "
            f"seeds), BBB keeps " + "; ".join(phrases) + "; the rest show no clear difference.")
