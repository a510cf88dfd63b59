"""Blundell et al.'s Table 1 at 400 units: the dense test error of their four models (SGD, dropout, BBB with a
Gaussian prior and with the scale mixture), each at the point chosen on validation data, over seeds."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from bayesprune.pipeline.profiles import Profile
from bayesprune.pipeline.results import load_search_table
from bayesprune.report.formatting import mean_sd, variant_label
from bayesprune.report.operating_point import best_validation
from bayesprune.report.reference import BLUNDELL_TABLE1, BLUNDELL_TABLE1_UNITS
from bayesprune.report.verdicts import difference, direction

MODELS = {"sgd": "SGD", "dropout0.5": "Dropout", "gaussian": "BBB, Gaussian prior", "mixture": "BBB, scale mixture"}
UNITS = 400  # the column of their table these runs fill


def table1_model(method: str, variant: str) -> str:
    """The row of Table 1 a run belongs to: BBB by its prior (its variant's first part), the others by method."""
    key = variant.split(".")[0] if method == "bbb" else method
    if key not in MODELS:
        raise ValueError(f"run {method!r} / {variant!r} is none of Table 1's models; valid: {', '.join(MODELS)}")
    return MODELS[key]


def _models(frame: pd.DataFrame) -> pd.Series:
    """Each row's Table 1 model."""
    return pd.Series([table1_model(m, v) for m, v in zip(frame["method"], frame["variant"])], index=frame.index)


def searched_history(*search_dirs: Path) -> pd.DataFrame:
    """The training history of every finished run of the searches given (the table1-search and the search one
    step past its edges), read as one search."""
    return load_search_table("history", *search_dirs)


def search_points(history: pd.DataFrame) -> pd.DataFrame:
    """Every point the search tried, per model: its best validation accuracy, the epoch of it, the epochs
    trained, and `chosen` (the highest validation accuracy of its model)."""
    frame = best_validation(history)
    frame["model"] = _models(frame)
    frame["chosen"] = frame["val_acc"] == frame.groupby("model")["val_acc"].transform("max")
    frame["point"] = [point_label(m, v) for m, v in zip(frame["method"], frame["variant"])]
    order = {model: k for k, model in enumerate(MODELS.values())}
    frame = frame.sort_values(["model", "variant"], key=lambda c: c.map(order) if c.name == "model" else c.map(_value))
    return frame.set_index(["model", "point"])[["variant", "val_acc", "best_epoch", "epochs", "chosen"]]


def point_label(method: str, variant: str) -> str:
    """A search point in words, without the prior its Table 1 model already names ('gaussian.s-1' -> 'log prior
    scale -1')."""
    return variant_label(variant.split(".", 1)[1] if method == "bbb" and "." in variant else variant)


def _value(variant: str) -> float:
    """The value a search point's code ends with, to order the points by: a rate, or the prior's log scale (for
    the mixture, log sigma1 = -N from its code 's1-N')."""
    mixture = re.search(r"s[12]-(-?\d+)$", variant)
    if mixture:
        return -float(mixture[1])
    found = re.search(r"(-?[0-9.]+(?:e-?[0-9]+)?)$", variant)
    return float(found[1]) if found else float("nan")


def search_edges(points: pd.DataFrame, validation_images: int = 10_000) -> str:
    """In words, the models whose chosen point is the first or last value their search tried (where a wider
    search could move the choice), each with its lead over the neighbouring point in validation images."""
    edges = []
    models = points.index.get_level_values("model").unique()
    for model in models:
        group = points.xs(model, level="model")
        chosen = [k for k, flag in enumerate(group["chosen"]) if flag]
        if len(group) < 2 or len(chosen) != 1 or chosen[0] not in (0, len(group) - 1):
            continue
        k = chosen[0]
        near = 1 if k == 0 else k - 1
        lead = round((group["val_acc"].iloc[k] - group["val_acc"].iloc[near]) * validation_images)
        of = f" validation images of {validation_images:,}".replace(",", " ") if not edges else ""
        edges.append(f"{model} at {group.index[k]} ({lead}{of} ahead of {group.index[near]})")
    if not edges:
        return "Every chosen point lies inside the values its search tried."
    return (f"{len(edges)} of the {len(models)} choices lie at the edge of the values tried, where a wider search "
            "could move them: " + "; ".join(edges) + ".")


def chosen_variants(history: pd.DataFrame) -> dict[str, str]:
    """Model -> the variant (search point) with its highest validation accuracy."""
    points = search_points(history)
    chosen = points[points["chosen"]].reset_index()
    return dict(zip(chosen["model"], chosen["variant"]))


def trained_points(profile: Profile) -> dict[str, dict[str, float]]:
    """Model -> the learning rate and prior scale the profile trains it at (one seed's config per model)."""
    points = {}
    for cfg in profile.runs(ablation=False):
        points[table1_model(cfg.method, cfg.variant)] = {"lr": cfg.lr, "prior_log_sigma1": cfg.prior_log_sigma1}
    return points


def dense_errors(pruning: pd.DataFrame) -> pd.DataFrame:
    """Per model and seed: the unpruned network's test error (%), BBB's posterior mean and ensemble apart."""
    dense = pruning[(pruning["fraction"] == 0.0) & (pruning["protocol"] == "corrected")]
    dense = dense.drop_duplicates(["method", "variant", "seed"]).assign(model=_models)
    return pd.DataFrame({"model": dense["model"], "seed": dense["seed"],
                         "error": 100 * (1 - dense["accuracy_mean"]),
                         "ensemble error": 100 * (1 - dense["accuracy_ensemble"].astype(float))})


def table1(pruning: pd.DataFrame) -> pd.DataFrame:
    """Table 1 head to head: per model, our dense test error (%) mean ± sd over seeds (BBB: posterior mean, and
    its Monte Carlo ensemble), beside Blundell et al.'s at 400 units."""
    errors = dense_errors(pruning)
    rows = []
    for model in [m for m in MODELS.values() if m in set(errors["model"])]:
        seeds = errors[errors["model"] == model]
        ensemble = seeds["ensemble error"].dropna()
        rows.append({"model": model, "ours": mean_sd(seeds["error"].mean(), seeds["error"].std(), len(seeds)),
                     "ours, ensemble": mean_sd(ensemble.mean(), ensemble.std(), len(ensemble)) if len(ensemble)
                     else "—", "seeds": len(seeds),
                     "Blundell et al.": theirs(model),
                     "mean": seeds["error"].mean(), "sd": seeds["error"].std()})
    return pd.DataFrame(rows).set_index("model")


def theirs(model: str) -> float:
    """Blundell et al.'s test error (%) for a model at UNITS units."""
    return BLUNDELL_TABLE1[model][BLUNDELL_TABLE1_UNITS.index(UNITS)]


COMPARISONS = (("BBB, scale mixture", "BBB, Gaussian prior"), ("BBB, scale mixture", "Dropout"),
               ("BBB, scale mixture", "SGD"))  # what their table shows: the mixture first, then dropout, then SGD


def table1_reading(pruning: pd.DataFrame) -> str:
    """Table 1 in words (Markdown): the orderings their table shows, one item each, as a difference in error with
    its 95 % Welch interval over seeds (lower, higher, or not clearly different) beside theirs."""
    errors = dense_errors(pruning)
    table = table1(pruning)
    seeds = int(table["seeds"].max())
    items = []
    for first, second in COMPARISONS:
        if first in table.index and second in table.index:
            gap = difference(errors.loc[errors["model"] == first, "error"], errors.loc[errors["model"] == second, "error"])
            items.append(f"- {first} against {second}: {gap.text(2)} points, {direction(gap)} "
                         f"(theirs {theirs(first) - theirs(second):+.2f})")
    return (f"The orderings of their table at {UNITS} units, as our difference in error over {seeds} "
            f"seed{'s' if seeds > 1 else ''}:\n\n" + "\n".join(items))
