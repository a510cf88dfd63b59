"""The study's claims set against this profile's runs, each with a verdict computed from the numbers."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from bayesprune.pipeline.results import finished_runs, load_table
from bayesprune.report.frontier import as_points, compression_verdict, load_finetuned
from bayesprune.report.operating_point import operating_point_tables
from bayesprune.report.reference import BLUNDELL_TABLE2, REPORTED, STUDY_BBB_OVER_SGD, method_label
from bayesprune.report.tables import main_protocols, primary_rows, spread_and_kept, summarise

KEEPS = 0.02  # a model "keeps its accuracy" if 90 % pruning costs it at most 2 points
COLLAPSES = 0.20  # and "collapses" if it costs more than 20 points
NOT_TESTED = "not tested in this regime"
TABLE2_SLACK = 0.2  # Table 2 holds if pruning raises our error by at most Blundell's rise plus 0.2 points
STILL_LEARNING = 0.003  # test accuracy still rising by more than 0.3 points over the last fifth of training


def accuracy_table(pruning: pd.DataFrame) -> pd.DataFrame:
    """Mean accuracy (own criterion, posterior mean) per dataset, protocol, method and fraction."""
    summary = summarise(primary_rows(main_protocols(pruning)))
    return summary.set_index(["dataset", "protocol", "method", summary["fraction"].round(6)])["mean"]


def _drops(accuracy: pd.Series, protocol: str, method: str) -> dict[str, float]:
    """Accuracy lost at 90 % pruned, per dataset, for one protocol and method."""
    drops = {}
    for dataset in accuracy.index.get_level_values("dataset").unique():
        try:
            drops[dataset] = accuracy[(dataset, protocol, method, 0.0)] - accuracy[(dataset, protocol, method, 0.9)]
        except KeyError:
            continue
    return drops


def _fmt(values: dict[str, float], digits: int = 3) -> str:
    """'mnist 0.012, fashion-mnist 0.034'."""
    return ", ".join(f"{key} {value:.{digits}f}" for key, value in values.items()) or "no runs"


def bbb_keeps_accuracy(accuracy: pd.Series) -> dict[str, Any]:
    """Claim 1a: BBB keeps its accuracy at 90 % pruned."""
    corrected, study = _drops(accuracy, "corrected", "bbb"), _drops(accuracy, "study", "bbb")
    if corrected and max(corrected.values()) <= KEEPS:
        verdict = "holds"
    elif study and max(study.values()) <= KEEPS:
        verdict = "holds only under the study's code, where pruning never reaches the network"
    else:
        verdict = "does not hold"
    reported = {d: REPORTED[d]["bbb"][0] - REPORTED[d]["bbb"][3] for d in REPORTED}
    return {"claim": "BBB keeps its accuracy after 90 % of its weights are pruned",
            "study": f"accuracy lost at 90 %: {_fmt(reported, 4)}",
            "ours": f"lost, corrected: {_fmt(corrected)}; study protocol: {_fmt(study)}",
            "verdict": verdict, "see": ("pruning", "audit")}


def baselines_collapse(accuracy: pd.Series) -> dict[str, Any]:
    """Claim 1b: SGD and dropout networks collapse at 90 % pruned."""
    methods = [m for m in accuracy.index.get_level_values("method").unique() if m != "bbb"]
    drops = {m: _drops(accuracy, "corrected", m) for m in methods}
    collapsed = [m for m, d in drops.items() if d and min(d.values()) > COLLAPSES]
    verdict = (NOT_TESTED if not methods else
               "holds" if len(collapsed) == len(methods) else
               "does not hold" if not collapsed else
               f"holds for {', '.join(method_label(m) for m in collapsed)} only")
    lines = "; ".join(f"{method_label(m)}: {_fmt(d)}" for m, d in drops.items())
    return {"claim": "SGD and dropout networks collapse at 90 % pruned",
            "study": "lost at 90 %: " + "; ".join(
                f"{method_label(m)}: {_fmt({d: REPORTED[d][m][0] - REPORTED[d][m][3] for d in REPORTED}, 4)}"
                for m in REPORTED["mnist"] if m != "bbb"),
            "ours": f"lost at 90 %, corrected: {lines}", "verdict": verdict, "see": ("pruning",)}


def _best_reported(dataset: str) -> str:
    """The study's BBB and best baseline at 90 % pruned on one dataset."""
    table = REPORTED[dataset]
    best = max((m for m in table if m != "bbb"), key=lambda m: table[m][3])
    return f"{dataset}: BBB {table['bbb'][3]:.4f}, best baseline {method_label(best)} {table[best][3]:.4f}"


def bbb_prunes_best(accuracy: pd.Series) -> dict[str, Any]:
    """Claim 1c: at 90 % pruned BBB beats every baseline."""
    wins, lines = [], []
    for dataset in accuracy.index.get_level_values("dataset").unique():
        at = accuracy.xs(("corrected", 0.9), level=("protocol", "fraction")).get(dataset)
        if at is None or "bbb" not in at or len(at) < 2:
            continue
        best = at.drop("bbb").idxmax()
        wins.append(at["bbb"] > at[best])
        lines.append(f"{dataset}: BBB {at['bbb']:.3f}, best baseline {method_label(best)} {at[best]:.3f}")
    verdict = (NOT_TESTED if not wins else "holds" if all(wins) else "does not hold" if not any(wins)
               else "holds on some datasets")
    return {"claim": "At 90 % pruned, BBB is the most accurate model",
            "study": "; ".join(_best_reported(d) for d in REPORTED), "ours": "; ".join(lines) or "no runs",
            "verdict": verdict, "see": ("pruning",)}


def bbb_cost(history: pd.DataFrame, bench: list[dict[str, Any]]) -> dict[str, Any]:
    """Claim 2: BBB costs about 10x the wall time of SGD (ours against the study's implementation style)."""
    seconds = history[history["protocol"] == "corrected"].groupby("method")["seconds"].median()  # no paused epoch
    ratios = {}
    if {"bbb", "sgd"} <= set(seconds.index):
        ratios["this profile's epochs"] = seconds["bbb"] / seconds["sgd"]
    for report in bench:
        ratios[f"bench on {report['machine']}"] = report["bbb/sgd"]
    worst = max(ratios.values(), default=float("nan"))
    study_style = [f"{r['bbb-study/sgd']:.1f}x on {r['machine']}" for r in bench if "bbb-study/sgd" in r]
    verdict = ("holds" if worst >= 0.7 * STUDY_BBB_OVER_SGD else
               "holds only for the study's implementation" if worst <= 0.5 * STUDY_BBB_OVER_SGD else
               "partly: BBB is several times dearer, less than 10x")
    return {"claim": "BBB costs about 10x the training time of SGD",
            "study": "about 50 min against 5 min for 50 epochs (10x), RTX 3080",
            "ours": "BBB/SGD " + ", ".join(f"{k}: {v:.1f}x" for k, v in ratios.items())
                    + (f"; BBB written as the study writes it: {', '.join(study_style)}" if study_style else ""),
            "verdict": verdict, "see": ("compute", "training")}


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
            "ours": f"Spearman(std, accuracy kept at 90 %), corrected runs: {_fmt(rho, 2)}; "
                    f"SGD wider than every dropout model: {', '.join(f'{d} {w}' for d, w in wider.items())}",
            "verdict": verdict, "see": ("weights",)}


def underfitting(history: pd.DataFrame) -> dict[str, Any]:
    """Claim 4: every model still under-fits after 50 epochs."""
    rows = history[history["protocol"] == "corrected"]
    gains = {}
    for method, runs in rows.groupby("method"):
        per_run = []  # each run against its own last fifth: runs may stop at different epochs (early stopping)
        for _, run in runs.groupby([k for k in ("dataset", "seed", "variant") if k in runs]):
            curve = run.sort_values("epoch")["test_acc"].to_numpy()
            if len(curve) > 1:
                per_run.append(curve[-1] - curve[-1 - max(1, len(curve) // 5)])
        gains[method_label(method)] = sum(per_run) / len(per_run) if per_run else float("nan")
    epochs = int(rows["epoch"].max()) if len(rows) else 0
    rising = [m for m, g in gains.items() if g > STILL_LEARNING]
    verdict = ("holds" if rising and len(rising) == len(gains) else
               "does not hold" if not rising else f"holds for {', '.join(rising)}")
    return {"claim": f"All models still under-fit after 50 epochs (this profile: {epochs})",
            "study": "150 epochs helped only a little",
            "ours": "test accuracy gained over the last fifth of training: " + _fmt(gains),
            "verdict": verdict, "see": ("training",)}


def blundell_table2(accuracy: pd.Series) -> dict[str, Any]:
    """Claim B: Blundell et al.'s Table 2, MNIST test error of BBB barely rises when 95 % and 98 % of its
    weights are removed by signal-to-noise."""
    reported = {f: BLUNDELL_TABLE2[f] - BLUNDELL_TABLE2[0.0] for f in (0.95, 0.98)}
    try:
        error = {f: 100 * (1 - accuracy[("mnist", "corrected", "bbb", f)]) for f in (0.0, 0.95, 0.98)}
    except KeyError:
        error = {}
    if error:
        rise = {f: error[f] - error[0.0] for f in reported}
        verdict = "holds" if all(rise[f] <= reported[f] + TABLE2_SLACK for f in reported) else "does not hold"
        ours = (f"MNIST test error {error[0.0]:.2f} % unpruned, {error[0.95]:.2f} % at 95 % removed, "
                f"{error[0.98]:.2f} % at 98 %")
    else:
        verdict, ours = NOT_TESTED, "no MNIST BBB runs pruned at 95 % and 98 %"
    return {"claim": "Blundell et al.'s Table 2: removing 95 % or 98 % of BBB's weights by signal-to-noise "
                     "barely changes its MNIST test error",
            "study": (f"Blundell et al. (2 x 1200 units): {BLUNDELL_TABLE2[0.0]:.2f} % unpruned, "
                      f"{BLUNDELL_TABLE2[0.95]:.2f} % at 95 %, {BLUNDELL_TABLE2[0.98]:.2f} % at 98 %"),
            "ours": ours, "verdict": verdict, "see": ("operating_point",)}


def bbb_compresses_better(pruning: pd.DataFrame, finetuned: pd.DataFrame | None = None) -> dict[str, Any]:
    """Bayesian training compresses better: BBB's highest compression ratio within 0.5 points of its dense error
    against the non-Bayesian methods', each at its best schedule (with fine-tuning where the regime has it)."""
    ours, verdict = compression_verdict(as_points(pruning, finetuned))
    return {"claim": "Bayesian training (BBB) compresses better than a non-Bayesian method",
            "study": "BBB keeps its accuracy at 90 % pruned while SGD and dropout collapse (no fine-tuning)",
            "ours": ours + ("; each at its best schedule, fine-tuning included" if finetuned is not None
                            else "; pruned once, no fine-tuning"), "verdict": verdict,
            "see": ("frontier",)}


def claims_table(
    pruning: pd.DataFrame, history: pd.DataFrame, weights: pd.DataFrame, bench: list[dict[str, Any]],
    finetuned: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per claim: the study's evidence, ours, the verdict and the chapters behind it (finetuned: the
    regime's fine-tuned pruning sweeps, where it has them)."""
    accuracy = accuracy_table(pruning)
    rows = [bbb_keeps_accuracy(accuracy), baselines_collapse(accuracy), bbb_prunes_best(accuracy),
            bbb_cost(history, bench), spread_predicts_pruning(weights, pruning), underfitting(history),
            blundell_table2(accuracy), bbb_compresses_better(pruning, finetuned)]
    return pd.DataFrame(rows)


REGIME_TABLES = ("pruning", "history", "weights")


def regimes(
    results_dir: Path, converged_dir: Path, search_dir: Path, blundell_dir: Path, frontier_dir: Path | None = None
) -> dict[str, tuple]:
    """The regimes the claims are judged in, key -> (title, its pruning, history and weights tables, and the
    fine-tuned sweeps where it has them): the
    profile's runs (`recipe`; for the reference, the study's 50-epoch recipe; beside another profile's, the
    reference's as `reference`), every model at its operating
    point (`point`: the converged runs, the search's standing in where a model has none) and Blundell et
    al.'s protocol (`blundell`), each where it has run."""
    name, reference = Path(results_dir).name, Path(results_dir).parent / "paper"
    found = {"recipe": ("the study's recipe, 50 epochs" if name == "paper" else f"profile {name}",
                        tuple(load_table(results_dir, table) for table in REGIME_TABLES))}
    if name != "paper" and finished_runs(reference):
        found["reference"] = ("the study's recipe, 50 epochs (the reference runs)",
                              tuple(load_table(reference, table) for table in REGIME_TABLES))
    if finished_runs(converged_dir) or finished_runs(search_dir):
        point = operating_point_tables(converged_dir, search_dir, REGIME_TABLES)
        complete = len(point[0]["seed"].unique()) >= 3 and not point[0]["variant"].astype(bool).any()
        found["point"] = ("at the operating point" + ("" if complete else " (partial, see the claims chapter)"), point)
    if finished_runs(blundell_dir):
        found["blundell"] = ("Blundell et al.'s protocol (BBB only)",
                             tuple(load_table(blundell_dir, table) for table in REGIME_TABLES))
    if frontier_dir is not None and finished_runs(frontier_dir):
        tables = tuple(load_table(frontier_dir, table) for table in REGIME_TABLES)
        finetuned = load_finetuned(frontier_dir)
        found["frontier"] = ("LeNet-300-100 with fine-tuning (the frontier)",
                             (*tables, finetuned) if finetuned is not None else tables)
    return found


def claims_by_regime(
    regimes: dict[str, tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]], bench: list[dict[str, Any]]
) -> pd.DataFrame:
    """The claims judged once per regime (name -> its pruning, history and weights tables), side by side:
    the study's evidence once, then our numbers and the verdict of each regime."""
    frames = {name: claims_table(*tables[:3], bench, *tables[3:]) for name, tables in regimes.items()}
    first = next(iter(frames.values()))
    table = first[["claim", "study", "see"]].copy()
    for name, frame in frames.items():
        table[f"ours: {name}"] = frame["ours"]
        table[f"verdict: {name}"] = frame["verdict"]
    return table


def _mnist_first(datasets) -> list[str]:
    """The datasets present, MNIST first, as the report lists them."""
    return sorted(set(datasets), key=lambda d: (d != "mnist", d))


def headline_numbers(regimes: dict[str, pd.DataFrame]) -> dict[str, str]:
    """What the landing page quotes, as text, per regime key (regime key -> its pruning table): BBB's
    accuracy unpruned and at 90 % pruned, the best baseline's at 90 % (each by its own criterion, corrected
    runs, mean over seeds, MNIST and Fashion-MNIST), Blundell's Table 2 measure on MNIST, and a note that sets
    a smaller profile's numbers beside the reference's."""
    numbers = {}
    for key, pruning in regimes.items():
        accuracy = accuracy_table(pruning).xs("corrected", level="protocol")
        bbb, baseline = [], []
        for dataset in _mnist_first(accuracy.index.get_level_values("dataset")):
            at, label = accuracy[dataset], {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}.get(dataset, dataset)
            if "bbb" in at:
                bbb.append(f"{at[('bbb', 0.0)]:.3f} → {at[('bbb', 0.9)]:.3f} ({label})")
            others = at.xs(0.9, level="fraction").drop("bbb", errors="ignore")
            if len(others):
                baseline.append(f"{method_label(others.idxmax())} {others.max():.3f} ({label})")
        numbers[f"{key}_bbb"] = ", ".join(bbb) or "no BBB runs"
        numbers[f"{key}_baseline"] = ", ".join(baseline) or "no baselines"
        numbers[f"{key}_table2"] = blundell_table2(accuracy_table(pruning))["ours"]
    numbers["recipe_beside_reference"] = (
        f"(a smaller profile than the report's: the committed reference runs of the study's recipe give BBB "
        f"{numbers['reference_bbb']} and the best baseline {numbers['reference_baseline']})"
        if "reference_bbb" in numbers else "(the committed reference runs)")
    return numbers


def regime_comparison(found: dict[str, tuple]) -> pd.DataFrame:
    """What changes between regimes (found: key -> (title, tables) as `regimes` gives), per dataset: BBB's
    test accuracy unpruned and at 90 % and 98 % pruned by signal-to-noise and by |mu|, and the best
    baseline's at 90 % (corrected runs, mean over seeds)."""
    rows = []
    for title, (pruning, *_) in found.values():
        frame = pruning[pruning["protocol"] == "corrected"]
        bbb = frame[frame["method"] == "bbb"]
        accuracy = bbb.groupby(["dataset", "criterion", bbb["fraction"].round(6)])["accuracy_mean"].mean()
        own = accuracy_table(frame).xs(0.9, level="fraction")
        for dataset in _mnist_first(frame["dataset"]):
            row = {"regime": title, "dataset": dataset, "BBB unpruned": accuracy.get((dataset, "snr", 0.0))}
            for criterion, label in (("snr", "SNR"), ("magnitude", "|mu|")):
                for fraction in (0.9, 0.98):
                    row[f"BBB {100 * fraction:g} % {label}"] = accuracy.get((dataset, criterion, fraction))
            baselines = own[(own.index.get_level_values("dataset") == dataset)
                            & (own.index.get_level_values("method") != "bbb")].droplevel(["dataset", "protocol"])
            row["best baseline 90 %"] = (f"{method_label(baselines.idxmax())} {baselines.max():.3f}"
                                         if len(baselines) else "none")
            rows.append(row)
    return pd.DataFrame(rows).set_index(["regime", "dataset"])


def claims_html(table: pd.DataFrame, link_prefix: str = "") -> str:
    """The claims table as HTML, each row linking to the chapters behind it (their paths prefixed by
    link_prefix where the table is shown outside the chapters' folder); one verdict cell per regime, our
    numbers under it in small type."""
    regimes = [c.removeprefix("verdict: ") for c in table.columns if c.startswith("verdict: ")]
    if not regimes:
        table = table.rename(columns={"ours": "ours: this profile", "verdict": "verdict: this profile"})
        regimes = ["this profile"]
    body = []
    for _, row in table.iterrows():
        links = ", ".join(f'<a href="{link_prefix}{name}.html">{name}</a>' for name in row["see"])
        verdicts = [f"<b>{escape(row[f'verdict: {r}'])}</b><br><small>{escape(row[f'ours: {r}'])}</small>"
                    for r in regimes]
        cells = [escape(row["claim"]), escape(row["study"]), *verdicts, links]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{escape(h)}</th>" for h in ("claim", "the study's evidence", *regimes, "see"))
    return f'<table class="claims"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
