"""BBB's operating point: the regime study (one factor at a time) and the recipes chosen on validation data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bayesprune.config import RunConfig
from bayesprune.pipeline.profiles import Profile, get_profile
from bayesprune.pipeline.results import RUN_KEYS, finished_runs, load_manifests, load_search_table, load_table
from bayesprune.report.formatting import mean_sd, variant_label
from bayesprune.report.reference import BLUNDELL_TABLE2
from bayesprune.report.verdicts import HOLDS, difference, direction, interval

RECIPE_FIELDS = ("optimizer", "lr", "momentum", "kl_weighting", "init_rho", "init_mu")
PRIOR_FIELDS = ("lr", "prior_pi", "prior_log_sigma1", "prior_log_sigma2")  # what the blundell search varies
SHOWN_FRACTIONS = (0.9, 0.95, 0.98, 0.99)
RULES = {"val_acc": "as trained", "val_acc_pruned": "pruned 90 %"}  # the two selection rules, by their score
SIGMA_COLUMNS = {"sigma_moved": "share of σ moved, last epoch", "sigma_q50": "median σ, last epoch"}  # has it learned?
PRUNED_CHOICE_FRACTION = 0.98  # the decay length's second rule: validation error with this share removed by SNR
PRUNED_CHOICE_COLUMN = f"validation error %, {100 * PRUNED_CHOICE_FRACTION:g} % removed"  # what that rule reads


def recipes(results_dir: Path, fields: tuple[str, ...] = RECIPE_FIELDS) -> pd.DataFrame:
    """Per run: its keys and the recipe fields that distinguish its profile's variants."""
    rows = []
    for manifest in load_manifests(results_dir):
        cfg = RunConfig.from_dict(manifest["config"])
        rows.append({**{k: getattr(cfg, k) for k in RUN_KEYS}, "protocol": cfg.protocol_label,
                     **{f: str(getattr(cfg, f)) if f == "init_rho" else getattr(cfg, f) for f in fields}})
    return pd.DataFrame(rows)


def best_validation(history: pd.DataFrame) -> pd.DataFrame:
    """Per run: the epoch of its best validation accuracy, that accuracy, the lowest validation NLL (where
    recorded) and the epochs trained."""
    rows = []
    for keys, run in history.groupby(RUN_KEYS, sort=False):
        best = run.loc[run["val_acc"].idxmax()]
        rows.append({**dict(zip(RUN_KEYS, keys)), "best_epoch": int(best["epoch"]), "val_acc": best["val_acc"],
                     "val_nll": run["val_nll"].min() if "val_nll" in run else float("nan"),
                     "epochs": int(run["epoch"].max())})
    return pd.DataFrame(rows)


def regime_summary(results_dir: Path, fields: tuple[str, ...] = RECIPE_FIELDS) -> pd.DataFrame:
    """One row per variant of a BBB study (the regime study's steps, or the blundell search's prior grid with
    fields=PRIOR_FIELDS): recipe, validation accuracy and NLL (`chosen`: the lowest NLL, the recipe carried
    forward), how far the posterior moved, the dead-input weights against their KL optimum, and test accuracy
    pruned by SNR and by |mu|."""
    history = load_table(results_dir, "history")
    last = history.sort_values("epoch").groupby(RUN_KEYS).last().reset_index()
    frame = recipes(results_dir, fields).merge(best_validation(history), on=RUN_KEYS)
    frame = frame.merge(last[RUN_KEYS + ["sigma_moved", "sigma_q50"]], on=RUN_KEYS)
    dead = load_table(results_dir, "dead_inputs")
    dead = dead[dead["inputs"] == "dead"].assign(
        dead_mu=lambda d: d["mu_abs_mean"], dead_sigma_over_optimum=lambda d: d["sigma_median"] / d["sigma_kl_optimum"])
    frame = frame.merge(dead[RUN_KEYS + ["dead_mu", "dead_sigma_over_optimum"]], on=RUN_KEYS)
    pruning = load_table(results_dir, "pruning")
    shown = pruning["fraction"].round(6).isin(SHOWN_FRACTIONS) & pruning["criterion"].isin(["snr", "magnitude"])
    pruned = pruning[shown].pivot_table(
        index=RUN_KEYS, columns=["criterion", "fraction"], values="accuracy_mean")
    pruned.columns = [f"{'SNR' if c == 'snr' else '|mu|'} {f:.0%}" for c, f in pruned.columns]
    frame = frame.merge(pruned.reset_index(), on=RUN_KEYS).set_index("variant")
    frame.insert(frame.columns.get_loc("val_nll") + 1, "chosen", frame["val_nll"] == frame["val_nll"].min())
    return frame


def choose_learning_rates(results_dir: Path) -> pd.DataFrame:
    """The learning-rate choice of a search profile's runs (see `learning_rate_choice`)."""
    return learning_rate_choice(recipes(results_dir).merge(best_validation(load_table(results_dir, "history")), on=RUN_KEYS))


def learning_rate_choice(frame: pd.DataFrame) -> pd.DataFrame:
    """Every (method, learning rate) tried with its best validation accuracy per dataset and their mean; the
    `chosen` column marks, per method, the rate with the highest mean (test images play no part)."""
    table = frame.pivot_table(index=["method", "lr"], columns="dataset", values="val_acc")
    table["mean"] = table.mean(axis=1, skipna=False)  # a rate not yet tried on every dataset is not compared
    table["chosen"] = table.groupby(level="method")["mean"].transform("max") == table["mean"]
    epochs = frame.pivot_table(index=["method", "lr"], columns="dataset", values="best_epoch")
    return table.join(epochs.add_prefix("best epoch, "))


def chosen_rates(choice: pd.DataFrame) -> dict[str, float]:
    """method -> learning rate marked chosen."""
    return {method: lr for method, lr in choice.index[choice["chosen"]]}


def profile_rates(profile: Profile) -> dict[str, float]:
    """method -> the learning rate a profile trains it with (one per method, else ValueError)."""
    rates: dict[str, set[float]] = {}
    for cfg in profile.runs(ablation=False):
        rates.setdefault(cfg.method, set()).add(cfg.lr)
    if any(len(r) > 1 for r in rates.values()):
        raise ValueError(f"profile {profile.name!r} trains a method at several learning rates: {rates}")
    return {method: r.pop() for method, r in rates.items()}


def profile_points(profile: Profile) -> pd.DataFrame:
    """Per method and rule (the score its runs keep their epoch by): the rate and prior scale (log, where the
    penalty's strength is searched) a profile trains it with; ValueError where one rule trains a method at
    several points."""
    rows = {}
    for cfg in profile.runs(ablation=False):
        scale = cfg.prior_log_sigma1 if cfg.penalty in ("l1", "l2") else "—"
        key, point = (cfg.method, RULES[cfg.select]), {"lr": cfg.lr, "prior scale": scale}
        if rows.setdefault(key, point) != point:
            raise ValueError(f"profile {profile.name!r} trains {key[0]} under the rule '{key[1]}' at several points: "
                             f"{rows[key]} and {point}")
    frame = pd.DataFrame([{"method": m, "rule": r, **p} for (m, r), p in rows.items()])
    return frame.set_index(["method", "rule"]).sort_index()


REGIME_GROUPS = {  # the regime study's steps, grouped so that no panel holds more than six lines
    "KL weighting x optimizer": ["study", "uniform", "lr1e-3", "lr1e-3.uniform", "sgd", "sgd.uniform"],
    "from Adam 1e-3, uniform weights: rate, initialisation, length": [
        "lr1e-3.uniform", "lr3e-3.uniform", "lr1e-3.uniform.rho-3", "lr1e-3.uniform.mu0.05", "lr1e-3.uniform.60ep"],
}


def regime_groups(variants) -> dict[str, list[str]]:
    """REGIME_GROUPS restricted to the steps that ran."""
    present = set(variants)
    groups = {title: [v for v in steps if v in present] for title, steps in REGIME_GROUPS.items()}
    return {title: steps for title, steps in groups.items() if steps}


def operating_point_tables(converged_dir: Path, search_dir: Path, names: tuple[str, ...],
                           rule: str = "as trained") -> tuple[pd.DataFrame, ...]:
    """The named tables of every model at its operating point under a selection rule (`RULES`): a method's
    converged runs kept by that rule where it has any, else the search's run (seed 0) at the rate the converged
    profile trains it with under that rule."""
    score = {label: score for score, label in RULES.items()}[rule]
    points = profile_points(get_profile("converged"))
    rates = {m: row["lr"] for (m, r), row in points.iterrows() if r == rule}
    kept = set()
    if list(Path(converged_dir).glob("runs/*/manifest.json")):
        runs = recipes(converged_dir, ("select",))
        kept = {tuple(k) for k in runs.loc[runs["select"] == score, list(RUN_KEYS)].itertuples(index=False)}
    done = {k[RUN_KEYS.index("method")] for k in kept}
    runs = recipes(search_dir)
    stand_in = {(m, v) for m, v, lr in zip(runs["method"], runs["variant"], runs["lr"])
                if m not in done and rates.get(m) == lr}
    tables = []
    for name in names:
        parts = []
        if kept:
            table = load_table(converged_dir, name)
            parts.append(table[[tuple(k) in kept for k in table[list(RUN_KEYS)].itertuples(index=False)]])
        searched = load_table(search_dir, name)
        parts.append(searched[[(m, v) in stand_in for m, v in zip(searched["method"], searched["variant"])]])
        tables.append(pd.concat(parts, ignore_index=True))
    return tuple(tables)


def converged_by_rule(converged_dir: Path) -> dict[str, pd.DataFrame]:
    """The converged runs' pruning rows per selection rule (`RULES`) that has runs, as trained first."""
    if not list(Path(converged_dir).glob("runs/*/manifest.json")):
        return {}
    runs = recipes(converged_dir, ("select",))
    pruning = load_table(converged_dir, "pruning").merge(runs[[*RUN_KEYS, "select"]], on=RUN_KEYS)
    return {label: rows.drop(columns="select") for score, label in RULES.items()
            if len(rows := pruning[pruning["select"] == score])}


def stopped_early(search_dir: Path) -> pd.DataFrame:
    """The search's BBB runs: where early stopping ended them, how far the complexity cost had come down
    (per weight, from its first epoch) and how much it was still falling per epoch at the end, beside
    their test accuracy at 90 % pruned by SNR."""
    history = load_table(search_dir, "history")
    history = history[history["method"] == "bbb"].sort_values("epoch")
    pruning = load_table(search_dir, "pruning")
    at_90 = pruning[(pruning["method"] == "bbb") & (pruning["criterion"] == "snr") & (pruning["fraction"].round(6) == 0.9)]
    rows = []
    for (dataset, variant), run in history.groupby(["dataset", "variant"]):
        cost = run["complexity_per_weight"].to_numpy()
        hit = at_90[(at_90["dataset"] == dataset) & (at_90["variant"] == variant)]
        rows.append({"dataset": dataset, "rate": variant_label(variant), "epochs": len(run), "best epoch": int(run.loc[run["val_acc"].idxmax(), "epoch"]),
                     "complexity per weight, first epoch": cost[0], "at the end": cost[-1],
                     "fall in the last epoch": cost[-2] - cost[-1] if len(cost) > 1 else float("nan"),
                     "SNR-pruned 90 %, test": hit["accuracy_mean"].iloc[0] if len(hit) else float("nan")})
    return pd.DataFrame(rows).set_index(["dataset", "rate"])


def table2(blundell_dir: Path) -> pd.DataFrame:
    """Blundell et al.'s Table 2 head to head: MNIST test error (%) of the blundell profile's BBB (posterior
    mean) against the fraction of weights removed by signal-to-noise, mean and sd over its seeds, beside
    theirs."""
    errors = pruned_errors(blundell_dir)
    table = errors.groupby(errors["fraction"].rename("removed"))["error"].agg(["mean", "std", "count"])
    table = table.rename(columns={"count": "seeds"})
    table["ours"] = [mean_sd(m, sd, n) for m, sd, n in zip(table["mean"], table["std"], table["seeds"])]
    table["Blundell et al."] = [BLUNDELL_TABLE2.get(f, float("nan")) for f in table.index]
    table.index = pd.Index([f"{100 * f:g} %" for f in table.index], name="removed")
    return table[["ours", "seeds", "Blundell et al.", "mean", "std"]]


def table2_reading(blundell_dir: Path) -> str:
    """Table 2 in words: our error's rise with pruning against Blundell et al.'s, its level, and where
    validation NLL put the best epoch (what the level owes to training length)."""
    table = table2(blundell_dir)
    error = {f: table.loc[f"{100 * f:g} %", "mean"] for f in (0.0, 0.95, 0.98)}
    history = load_table(blundell_dir, "history").sort_values("epoch")
    best = history.loc[history.groupby("seed")["val_nll"].idxmin()].set_index("seed")
    last = history.groupby("seed").last()
    seeds = int(table["seeds"].max())
    rise = {f: error[f] - error[0.0] for f in (0.95, 0.98)}
    theirs = {f: BLUNDELL_TABLE2[f] - BLUNDELL_TABLE2[0.0] for f in (0.95, 0.98)}
    return (
        f"Removing 98 % of the weights by signal-to-noise raises our error by {rise[0.98]:.2f} points (mean over "
        f"{seeds} seed{'s' if seeds > 1 else ''}), against Blundell et al.'s {theirs[0.98]:.2f}; at 95 % the rise is "
        f"{rise[0.95]:.2f} against their {theirs[0.95]:.2f}.\n\nThe level is another matter: our unpruned error is "
        f"{error[0.0]:.2f} %, theirs {BLUNDELL_TABLE2[0.0]:.2f} %.\n\nValidation NLL is lowest at epochs "
        f"{', '.join(str(int(e)) for e in best['epoch'])} of {int(history['epoch'].max())}; "
        + _training_on(100 * (best["test_acc"] - last.loc[best.index, "test_acc"]))
    )


def _training_on(rise: pd.Series) -> str:
    """What the epochs after the validation optimum did to the unpruned test error (points per seed, last epoch
    minus the optimum's), with its 95 % interval over seeds."""
    gap = interval(rise.to_numpy())
    said = f"the runs keep their last epoch, {gap.text(2)} points of error above the optimum's"
    if gap.mean > 0 and gap.above(0.0).startswith(HOLDS):
        return (f"{said}: training on past the optimum at a constant rate raises the error rather than lowering "
                "it, so the gap in level to Blundell et al.'s is not one of too few epochs at this rate.")
    if gap.mean < 0 and gap.below(0.0).startswith(HOLDS):
        return f"{said}: training on past the optimum lowered the error, so more epochs may narrow the gap in level."
    return (f"{said}, not clearly different from no change: training on past the optimum at a constant rate "
            "brings no clear gain, so more epochs at this rate are not what the gap in level lacks.")


def decay_reading(constant_dir: Path, decayed_dir: Path, deepest: float = 0.98) -> str:
    """Table 2 under a decaying rate against the constant rate's, over seeds: the unpruned error and the rise
    at the deepest fraction, each as the decayed minus the constant with its 95 % Welch interval, and the error
    with the same share removed by |mu| instead."""
    def per_seed(results_dir: Path, criterion: str = "snr") -> pd.DataFrame:
        errors = pruned_errors(results_dir, criterion=criterion)
        return errors.pivot_table(index="seed", columns="fraction", values="error")

    constant, decayed = per_seed(constant_dir), per_seed(decayed_dir)
    by_magnitude = [per_seed(d, "magnitude")[deepest].mean() for d in (constant_dir, decayed_dir)]
    level = difference(decayed[0.0], constant[0.0])
    rise = difference(decayed[deepest] - decayed[0.0], constant[deepest] - constant[0.0])
    return (f"Against the constant rate, over {len(decayed)} and {len(constant)} seeds, the decaying rate moves the "
            f"unpruned error by {level.text(2)} points ({direction(level)}: {decayed[0.0].mean():.2f} % against "
            f"{constant[0.0].mean():.2f} %).\n\nIt moves the rise at {100 * deepest:g} % removed by {rise.text(2)} "
            f"points ({direction(rise)}: {(decayed[deepest] - decayed[0.0]).mean():+.2f} against "
            f"{(constant[deepest] - constant[0.0]).mean():+.2f}).\n\nRemoving the same {100 * deepest:g} % by |μ| "
            f"instead leaves {by_magnitude[1]:.2f} % error with the decaying rate and {by_magnitude[0]:.2f} % with the "
            f"constant one.")


def schedule_choice(search_dir: Path, *edges: Path) -> pd.DataFrame:
    """Per length of a decaying rate tried (the blundell-schedule-search's variants, and those of the searches
    past its ends in `edges` that have run, read as one search): the epochs trained, the
    validation NLL and accuracy of the kept (last) epoch, the lowest validation NLL on the way and its epoch,
    how far sigma has moved by the last epoch (where recorded), `chosen` (the lowest validation NLL at the last
    epoch), and, where the runs were pruned, the validation and test error (%) with each share of weights removed
    by signal-to-noise, and `chosen, pruned` (the lowest validation error with PRUNED_CHOICE_FRACTION removed;
    the test errors take no part in either choice)."""
    dirs = [search_dir, *(edge for edge in edges if finished_runs(edge))]
    history = load_search_table("history", *dirs).sort_values("epoch")
    rows = []
    for variant, run in history.groupby("variant", sort=False):
        last, best = run.iloc[-1], run.loc[run["val_nll"].idxmin()]
        posterior = {label: last[column] for column, label in SIGMA_COLUMNS.items() if column in run}
        rows.append({"variant": variant, "schedule": variant_label(variant), "epochs": int(last["epoch"]),
                     "validation NLL, last epoch": last["val_nll"], "validation accuracy, last epoch": last["val_acc"],
                     "lowest validation NLL": best["val_nll"], "at epoch": int(best["epoch"]), **posterior})
    table = pd.DataFrame(rows).sort_values("epochs")
    table["chosen"] = table["validation NLL, last epoch"] == table["validation NLL, last epoch"].min()
    for split, score in (("validation", "val_accuracy_mean"), ("test", "accuracy_mean")):
        errors = pd.concat([pruned_errors(d, score) for d in dirs], ignore_index=True)
        errors = errors.groupby(["variant", "fraction"])["error"].mean().unstack("fraction")  # mean over seeds
        for fraction in errors.columns:
            table[f"{split} error %, {100 * fraction:g} % removed"] = table["variant"].map(errors[fraction])
    if PRUNED_CHOICE_COLUMN in table:
        table["chosen, pruned"] = table[PRUNED_CHOICE_COLUMN] == table[PRUNED_CHOICE_COLUMN].min()
    return table.drop(columns="variant").set_index("schedule")


def schedule_rules_reading(search_dir: Path, *edges: Path) -> str:
    """Which length each of the decay search's two rules chose (the search and its edges read as one), whether
    they agree, and which choice lies at an end of the lengths tried (where a longer or shorter decay might score
    better still)."""
    table = schedule_choice(search_dir, *edges)
    by_nll = table.index[table["chosen"]][0]
    if "chosen, pruned" not in table:
        return (f"Validation NLL chooses the {by_nll}; the search's networks were not scored pruned on validation "
                f"images.") + _grid_ends(table, [by_nll])
    by_pruned = table.index[table["chosen, pruned"]][0]
    said = (f"Validation NLL chooses the {by_nll}; the validation error with {100 * PRUNED_CHOICE_FRACTION:g} % of "
            f"the weights removed by signal-to-noise (in the table above) chooses the {by_pruned}")
    return said + (": the two rules agree." if by_nll == by_pruned else ": the two rules disagree.") + _grid_ends(
        table, [by_nll, by_pruned])


def _grid_ends(table: pd.DataFrame, chosen: list[str]) -> str:
    """A sentence on the chosen lengths that are the shortest or the longest tried (the table is in order of
    length); '' where none is."""
    chosen = list(dict.fromkeys(chosen))
    ends = {length: "shortest" if length == table.index[0] else "longest"
            for length in chosen if length in (table.index[0], table.index[-1])}
    if not ends:
        return ""
    if len(ends) == 2:
        return (" Both choices lie at an end of the lengths tried (the shortest and the longest); no length past "
                "them was run.")
    end = next(iter(ends.values()))
    which = "The choice" if len(chosen) == 1 else "One choice"
    return f" {which} is the {end} length tried; no {'shorter' if end == 'shortest' else 'longer'} one was run."


def pruned_errors(results_dir: Path, score: str = "accuracy_mean", criterion: str = "snr") -> pd.DataFrame:
    """Per run (variant, seed) and share of weights removed by `criterion` (signal-to-noise unless said): the
    error (%) by `score` (accuracy_mean: test images; val_accuracy_mean: validation images, where the sweep scored
    them); empty before any run is pruned or has that score."""
    columns = ["variant", "seed", "fraction", "error"]
    try:
        pruning = load_table(results_dir, "pruning")
    except FileNotFoundError:
        return pd.DataFrame(columns=columns)
    if score not in pruning:  # swept before validation images were scored
        return pd.DataFrame(columns=columns)
    rows = pruning[(pruning["criterion"] == criterion) & pruning[score].notna()]
    return rows.assign(fraction=rows["fraction"].round(6), error=100 * (1 - rows[score]))[columns].reset_index(drop=True)

