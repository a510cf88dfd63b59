"""The frontier's points chosen where its verdicts are read: per method, the point (rate, prior scale) whose
network, pruned to an anchor's compression ratio (12x, 68x on LeNet-300-100) and fine-tuned, keeps the highest
validation accuracy (`frontier-anchor-search`, seed 0). The choice reads one-shot fine-tuning only: a one-shot
network at a fraction is the frontier's own, where an iterative one depends on the fractions pruned before it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bayesprune.config import RunConfig
from bayesprune.pipeline.manifest import training_seconds
from bayesprune.pipeline.profiles import Profile, get_profile
from bayesprune.pipeline.results import RUN_KEYS, finished_runs, load_manifests, load_table
from bayesprune.report.formatting import DATASET_LABELS, mnist_first, rate_text
from bayesprune.report.frontier import ANCHOR_RATIOS, ANCHOR_SCHEDULE, as_points, variant_anchor
from bayesprune.report.reference import method_label
from bayesprune.report.tables import method_order
from bayesprune.report.targets import against_cap, edge_tolerance, point_config, run_epochs, under_highest_cap

POINT = ["lr", "prior_log_sigma1"]


def _searched_runs(folder: Path) -> pd.DataFrame:
    """Per finished run of a search: its keys, its point and its minutes, training (every epoch, a run resumed from
    a checkpoint included) and then the pruning notebook, fine-tuning included."""
    rows = []
    for manifest in load_manifests(folder):
        cfg, seconds = RunConfig.from_dict(manifest["config"]), training_seconds(manifest, folder / "runs")
        rows.append({**{key: getattr(cfg, key) for key in RUN_KEYS}, **{key: getattr(cfg, key) for key in POINT},
                     "cap": cfg.epochs, "minutes": (seconds + manifest["notebook_seconds"]["prune"]) / 60})
    return pd.DataFrame(rows)


def anchor_search_rows(*search_dirs: Path | None) -> pd.DataFrame:
    """Every fine-tuned network of the searches given (a search, any past its edges and any that trains some of its
    points again under a higher cap, read as one, `targets.under_highest_cap`), with its run's point (rate, prior
    scale), cap and minutes and its compression ratio."""
    frames = []
    for folder in (Path(d) for d in search_dirs if d is not None and finished_runs(d)):
        finetuned = load_table(folder, "finetuned")
        frames.append(as_points(finetuned.iloc[:0], finetuned).merge(_searched_runs(folder), on=RUN_KEYS))
    if not frames:
        raise FileNotFoundError(f"no anchor search under {', '.join(map(str, search_dirs))} has a finished run")
    return under_highest_cap(pd.concat(frames, ignore_index=True))


def anchor_choices(rows: pd.DataFrame, ratios: tuple[float, ...] = ANCHOR_RATIOS) -> pd.DataFrame:
    """Per dataset, method, anchor ratio and point tried: the first fraction whose achieved ratio reaches the anchor,
    the validation accuracy there after one-shot fine-tuning at the better of the rates tried, the point's run
    minutes (NaN where unknown), and `chosen` on each method's best point (test accuracy never read)."""
    one_shot = rows[rows["schedule"] == ANCHOR_SCHEDULE]
    found = []
    for ratio in ratios:
        for (dataset, method, *point), run in one_shot.groupby(["dataset", "method", *POINT], dropna=False):
            reached = run[run["compression"] >= ratio]
            if reached.empty:
                continue
            fraction = reached["fraction"].min()
            at = reached[reached["fraction"] == fraction]
            best = at.loc[at["val_accuracy"].idxmax()]
            found.append({"dataset": dataset, "method": method, "anchor": ratio, **dict(zip(POINT, point)),
                          "fraction": fraction, "finetune_rate": best["finetune_rate"],
                          "validation accuracy": best["val_accuracy"], "minutes": best.get("minutes", float("nan"))})
    table = pd.DataFrame(found, columns=["dataset", "method", "anchor", *POINT, "fraction", "finetune_rate",
                                         "validation accuracy", "minutes"])
    table["chosen"] = (table.groupby(["dataset", "method", "anchor"])["validation accuracy"].transform("max")
                       == table["validation accuracy"])
    return table


def chosen_points(choices: pd.DataFrame) -> pd.DataFrame:
    """The point each method chose per dataset and anchor (`anchor_choices`), its prior scale only where the search
    varied it, and whether it lies at an end of the values tried that asks for the search to go on: an end that
    beats every other value by no more than `targets.edge_tolerance` is flat, as in the target search."""
    rows = []
    for (dataset, method, anchor), tried in choices.groupby(["dataset", "method", "anchor"], sort=False):
        best = tried[tried["chosen"]].iloc[0]
        searched = "prior_log_sigma1" if tried["prior_log_sigma1"].nunique() > 1 else "lr"
        values, accuracy = tried[searched], best["validation accuracy"]
        others = tried.loc[values != best[searched], "validation accuracy"].max()
        rising = pd.isna(others) or accuracy - others > edge_tolerance((accuracy + others) / 2)
        rows.append({"dataset": dataset, "method": method, "anchor": anchor, "lr": best["lr"],
                     "prior_log_sigma1": best["prior_log_sigma1"] if searched == "prior_log_sigma1" else float("nan"),
                     "validation accuracy": accuracy,
                     "at an end": best[searched] in (values.min(), values.max()) and values.nunique() > 1 and rising})
    return pd.DataFrame(rows)


def anchor_variants(points: pd.DataFrame, dataset: str, frontier: Profile | None = None) -> dict[str, dict]:
    """The variants of a profile that trains one dataset's anchor choices (`chosen_points`) on further seeds, as
    profiles.yml writes them: per anchor ("at12x", "at68x") each method's point (`method_config`), less any point
    the `frontier` profile already trains that method at (its own seeds are then the anchor's, `frontier.for_anchor`);
    a point both anchors chose trains once per seed (`runner.trained_sibling`)."""
    trained = {}
    if frontier is not None and dataset in frontier.datasets:
        trained = {cfg.method: cfg for cfg in frontier.runs(datasets=[dataset], seeds=frontier.seeds[:1])}
    variants = {}
    for anchor, rows in points[points["dataset"] == dataset].groupby("anchor", sort=True):
        config = {row["method"]: point_config(row["lr"], row["prior_log_sigma1"]) for _, row in rows.iterrows()}
        config = {method: point for method, point in config.items()
                  if method not in trained or any(getattr(trained[method], key) != value for key, value in point.items())}
        if config:
            variants[f"at{anchor:g}x"] = {"method_config": config}
    return variants


def point_text(lr: float, prior_log_sigma1: float) -> str:
    """A search point in words: 'Adam 1e-3', with ', prior e^-2' where the method has a prior scale."""
    return f"Adam {rate_text(lr)}" + ("" if pd.isna(prior_log_sigma1) else f", prior e^{prior_log_sigma1:g}")


def anchor_table(points: pd.DataFrame) -> pd.DataFrame:
    """The anchor choices for the book (`chosen_points`): per dataset and method, each anchor's point ('at an end'
    marked) and its validation accuracy in percent after one-shot fine-tuning."""
    datasets, methods = mnist_first(points["dataset"]), method_order(points["method"])
    rows = []
    for (dataset, method), chosen in points.groupby(["dataset", "method"], sort=False):
        row = {"dataset": DATASET_LABELS.get(dataset, dataset), "method": method_label(method),
               "order": (datasets.index(dataset), methods.index(method))}
        for _, at in chosen.sort_values("anchor").iterrows():
            end = " (an end)" if at["at an end"] else ""
            row[f"point at {at['anchor']:g}x"] = point_text(at["lr"], at["prior_log_sigma1"]) + end
            row[f"validation % at {at['anchor']:g}x"] = round(100 * at["validation accuracy"], 2)
        rows.append(row)
    return pd.DataFrame(rows).sort_values("order").drop(columns="order").set_index(["dataset", "method"])


def anchor_grid(table: pd.DataFrame) -> pd.DataFrame:
    """Every point the anchor search tried (`anchor_choices`), for the reader who wants to redo a choice: per dataset,
    method and point, its validation accuracy (%) after one-shot fine-tuning at each anchor, the anchors that chose
    it and the minutes its run took."""
    datasets, methods = mnist_first(table["dataset"]), method_order(table["method"])
    rows = []
    for (dataset, method), tried in table.groupby(["dataset", "method"], sort=False):
        varied = tried["prior_log_sigma1"].nunique() > 1
        for (lr, scale), at in tried.groupby(POINT, sort=False):
            row = {"dataset": DATASET_LABELS.get(dataset, dataset), "method": method_label(method),
                   "point": point_text(lr, scale if varied else float("nan")),
                   "order": (datasets.index(dataset), methods.index(method), -scale if varied else lr)}
            for _, anchor in at.sort_values("anchor").iterrows():
                row[f"validation % at {anchor['anchor']:g}x"] = round(100 * anchor["validation accuracy"], 2)
            row["chosen at"] = ", ".join(f"{a:g}x" for a in at.loc[at["chosen"], "anchor"].sort_values()) or "—"
            row["minutes"] = round(at["minutes"].iloc[0]) if at["minutes"].notna().any() else float("nan")
            rows.append(row)
    frame = pd.DataFrame(rows).sort_values("order").drop(columns="order")
    return frame.set_index(["dataset", "method", "point"])


def search_progress(*search_dirs: Path) -> str:
    """'' where every search given has finished its profile's grid (the folder's name), else a sentence saying how
    far each has come, so that a choice read from part of a grid is marked provisional."""
    unfinished = []
    for folder in map(Path, search_dirs):
        done, grid = len(finished_runs(folder)), len(get_profile(folder.name).runs())
        if done < grid:
            unfinished.append(f"{folder.name} {done} of its {grid} runs")
    return (f"*The search is still running ({', '.join(unfinished)}): the choices below are provisional.*"
            if unfinished else "")


def anchor_runs_against_cap(*results_dirs: Path | None) -> pd.DataFrame:
    """Every anchor run's kept epoch against its cap (`targets.against_cap`, less its seed count; a run trained again
    under a higher cap in place of its capped twin, `targets.under_highest_cap`), per dataset, method and the runs:
    the search's points on seed 0, and each anchor's chosen point on its further seeds (variants 'at12x', 'at68x'),
    with the runs trained."""
    frames = [run_epochs(d) for d in results_dirs if d is not None and finished_runs(d)]
    if not frames:
        return pd.DataFrame()
    runs = under_highest_cap(pd.concat(frames, ignore_index=True))
    anchor = variant_anchor(runs["variant"])
    runs["runs"] = ("chosen for " + anchor.map("{:g}".format) + "x").where(anchor.notna(), "search")
    datasets, methods = mnist_first(runs["dataset"]), method_order(runs["method"])
    rows = [{"dataset": DATASET_LABELS.get(dataset, dataset), "method": method_label(method), "runs": which,
             "order": (datasets.index(dataset), methods.index(method), which != "search", which),
             "trained": len(part), **against_cap(part)}
            for (dataset, method, which), part in runs.groupby(["dataset", "method", "runs"])]
    table = pd.DataFrame(rows).sort_values("order").drop(columns=["order", "seeds"])  # seed 0 searched, 1-3 chosen
    return table.set_index(["dataset", "method", "runs"])
