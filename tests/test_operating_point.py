"""The regime study's and the learning-rate search's bookkeeping, on hand-made tidy rows."""

from __future__ import annotations

import pandas as pd
import pytest

from bayesprune.pipeline.profiles import load_profiles
from bayesprune.report.operating_point import (best_validation, chosen_rates, learning_rate_choice, profile_points,
                                                profile_rates)


def _history(method: str, lr_variant: str, dataset: str, val: list[float]) -> list[dict]:
    return [{"dataset": dataset, "method": method, "seed": 0, "protocol": "corrected", "variant": lr_variant,
             "epoch": e + 1, "val_acc": v} for e, v in enumerate(val)]


def test_best_validation_takes_the_earliest_best_epoch():
    frame = best_validation(pd.DataFrame(_history("sgd", "a", "mnist", [0.9, 0.95, 0.95, 0.94])))
    assert frame.loc[0, "best_epoch"] == 2 and frame.loc[0, "val_acc"] == 0.95 and frame.loc[0, "epochs"] == 4


def test_the_rate_with_the_best_mean_validation_accuracy_over_datasets_is_chosen():
    rows = [{"method": "sgd", "lr": lr, "dataset": d, "val_acc": acc, "best_epoch": 3}
            for lr, d, acc in ((1e-3, "mnist", 0.98), (1e-3, "fashion-mnist", 0.88),
                               (3e-4, "mnist", 0.985), (3e-4, "fashion-mnist", 0.86))]
    choice = learning_rate_choice(pd.DataFrame(rows))
    assert choice.loc[("sgd", 1e-3), "mean"] == pytest.approx(0.93)
    assert chosen_rates(choice) == {"sgd": 1e-3}  # best on average, though not on MNIST
    partial = learning_rate_choice(pd.DataFrame(rows + [{"method": "sgd", "lr": 3e-3, "dataset": "mnist",
                                                         "val_acc": 0.99, "best_epoch": 2}]))
    assert chosen_rates(partial) == {"sgd": 1e-3}  # a rate tried on one dataset only is not chosen


def test_profile_rates_reads_one_rate_per_method_and_refuses_several(tmp_path):
    path = tmp_path / "profiles.yml"
    path.write_text("one:\n  datasets: [mnist]\n  methods: [sgd, bbb]\n  seeds: [0]\n  fractions: [0.5]\n"
                    "  config: {lr: 0.001}\n  method_config: {bbb: {lr: 0.003}}\n"
                    "two:\n  datasets: [mnist]\n  methods: [sgd]\n  seeds: [0]\n  fractions: [0.5]\n"
                    "  variants: {a: {lr: 0.1}, b: {lr: 0.2}}\n")
    profiles = load_profiles(path)
    assert profile_rates(profiles["one"]) == {"sgd": 0.001, "bbb": 0.003}
    with pytest.raises(ValueError, match="several learning rates"):
        profile_rates(profiles["two"])


def test_variants_copy_the_grid_under_their_own_run_names(tmp_path):
    from bayesprune.pipeline.run_paths import run_id

    path = tmp_path / "profiles.yml"
    path.write_text("p:\n  datasets: [mnist]\n  methods: [sgd, bbb]\n  seeds: [0]\n  fractions: [0.5]\n"
                    "  config: {lr: 0.001, kl_weighting: blundell}\n  method_config: {bbb: {kl_weighting: uniform}}\n"
                    "  variants: {slow: {lr: 0.0001}, fast: {lr: 0.003}}\n")
    runs = load_profiles(path)["p"].runs()
    assert [run_id(c) for c in runs] == ["mnist-sgd-corrected-slow-s0", "mnist-bbb-corrected-slow-s0",
                                         "mnist-sgd-corrected-fast-s0", "mnist-bbb-corrected-fast-s0"]
    assert [c.lr for c in runs] == [0.0001, 0.0001, 0.003, 0.003]  # a variant overrides the shared config
    assert [c.kl_weighting for c in runs] == ["blundell", "uniform"] * 2  # per-method settings apply in each


def test_table2_sets_our_error_by_fraction_removed_beside_blundell_s(tmp_path):
    from bayesprune.config import RunConfig
    from bayesprune.pipeline.manifest import write_manifest
    from bayesprune.report.operating_point import table2

    rows = [{"dataset": "mnist", "method": "bbb", "seed": seed, "protocol": "corrected", "variant": "",
             "criterion": criterion, "fraction": f, "achieved_sparsity": f, "accuracy_mean": acc - 0.001 * seed,
             "accuracy_ensemble": acc}
            for seed in (0, 1) for criterion in ("snr", "magnitude") for f, acc in ((0.0, 0.99), (0.95, 0.985), (0.995, 0.9))]
    for seed in (0, 1):
        run = tmp_path / "runs" / f"mnist-bbb-corrected-s{seed}"
        run.mkdir(parents=True)
        pd.DataFrame([r for r in rows if r["seed"] == seed]).to_csv(run / "pruning.csv", index=False)
        write_manifest({"config": RunConfig(method="bbb", seed=seed).to_dict()}, run)
    table = table2(tmp_path)
    assert list(table.index) == ["0 %", "95 %", "99.5 %"]
    assert table.loc["0 %", "mean"] == pytest.approx(1.05) and table.loc["0 %", "seeds"] == 2
    assert table.loc["95 %", "ours"] == "1.55 ± 0.07" and table.loc["95 %", "Blundell et al."] == 1.29
    assert pd.isna(table.loc["99.5 %", "Blundell et al."])


def test_the_decayed_rate_is_read_against_the_constant_one_seed_by_seed(tmp_path):
    from bayesprune.config import RunConfig
    from bayesprune.pipeline.manifest import write_manifest
    from bayesprune.report.operating_point import decay_reading

    # unpruned and 98 %-pruned errors (%) per seed: the decay lowers the level and raises the rise
    profiles = {"constant": {1: (2.3, 2.5), 2: (2.2, 2.4), 3: (2.4, 2.7)},
                "decayed": {1: (1.7, 5.0), 2: (1.65, 7.0), 3: (1.72, 6.5)}}
    for name, seeds in profiles.items():
        for seed, errors in seeds.items():
            run = tmp_path / name / "runs" / f"mnist-bbb-corrected-s{seed}"
            run.mkdir(parents=True)
            keys = {"dataset": "mnist", "method": "bbb", "seed": seed, "protocol": "corrected", "variant": ""}
            pd.DataFrame([{**keys, "criterion": c, "fraction": f, "achieved_sparsity": f,
                           "accuracy_mean": 1 - e / 100 - 0.1 * (c != "snr")}  # |mu| 10 points worse
                          for c in ("snr", "magnitude") for f, e in zip((0.0, 0.98), errors)]).to_csv(run / "pruning.csv", index=False)
            write_manifest({"config": RunConfig(method="bbb", seed=seed).to_dict()}, run)
    text = decay_reading(tmp_path / "constant", tmp_path / "decayed")
    assert "unpruned error by -0.61 [" in text and "(lower: 1.69 % against 2.30 %)" in text
    assert "rise at 98 % removed by 4.24 [" in text and "(higher: +4.48 against +0.23)" in text
    assert "over 3 and 3 seeds" in text
    assert text.endswith("Removing the same 98 % by |μ| instead leaves 16.17 % error with the "
                         "decaying rate and 12.53 % with the constant one.")
    same = decay_reading(tmp_path / "constant", tmp_path / "constant")
    assert "by 0.00 [0.00, 0.00] points" not in same and same.count("not clearly different") == 2


def test_table2_in_words_gives_both_rises_and_the_validation_optimum(tmp_path):
    from bayesprune.config import RunConfig
    from bayesprune.pipeline.manifest import write_manifest
    from bayesprune.report.operating_point import table2_reading

    run = tmp_path / "runs" / "mnist-bbb-corrected-s1"
    run.mkdir(parents=True)
    keys = {"dataset": "mnist", "method": "bbb", "seed": 1, "protocol": "corrected", "variant": ""}
    pd.DataFrame([{**keys, "criterion": "snr", "fraction": f, "achieved_sparsity": f, "accuracy_mean": acc,
                   "accuracy_ensemble": acc} for f, acc in ((0.0, 0.98), (0.95, 0.975), (0.98, 0.97))]
                 ).to_csv(run / "pruning.csv", index=False)
    pd.DataFrame([{**keys, "epoch": e, "val_nll": nll, "test_acc": acc}
                  for e, nll, acc in ((1, 0.3, 0.95), (2, 0.1, 0.985), (3, 0.2, 0.98))]).to_csv(run / "history.csv", index=False)
    write_manifest({"config": RunConfig(method="bbb", seed=1).to_dict()}, run)
    text = table2_reading(tmp_path)
    assert "raises our error by 1.00 points (mean over 1 seed), against Blundell et al.'s 0.15" in text
    assert "at 95 % the rise is 0.50 against their 0.05" in text
    assert "our unpruned error is 2.00 %, theirs 1.24 %" in text
    assert "lowest at epochs 2 of 3;" in text
    assert "0.50 (one seed) points of error above the optimum's: training on past the optimum" in text
    assert "raises the error" in text


@pytest.mark.parametrize(("last_errors", "said"), [
    ((2.0, 2.1, 2.2), "raises the error rather than lowering it"),
    ((1.2, 1.9, 2.4), "not clearly different from no change"),
    ((1.0, 1.1, 1.2), "lowered the error, so more epochs may narrow the gap"),
])
def test_table2_in_words_judges_the_epochs_after_the_optimum_over_seeds(tmp_path, last_errors, said):
    from bayesprune.config import RunConfig
    from bayesprune.pipeline.manifest import write_manifest
    from bayesprune.report.operating_point import table2_reading

    for seed, last in zip((1, 2, 3), last_errors):  # every seed's optimum (epoch 2) at 1.50 % error
        run = tmp_path / "runs" / f"mnist-bbb-corrected-s{seed}"
        run.mkdir(parents=True)
        keys = {"dataset": "mnist", "method": "bbb", "seed": seed, "protocol": "corrected", "variant": ""}
        pd.DataFrame([{**keys, "criterion": "snr", "fraction": f, "achieved_sparsity": f, "accuracy_mean": 0.98,
                       "accuracy_ensemble": 0.98} for f in (0.0, 0.95, 0.98)]).to_csv(run / "pruning.csv", index=False)
        pd.DataFrame([{**keys, "epoch": e, "val_nll": nll, "test_acc": acc} for e, nll, acc in
                      ((3, 0.2, 1 - last / 100), (1, 0.3, 0.95), (2, 0.1, 0.985))]).to_csv(run / "history.csv", index=False)
        write_manifest({"config": RunConfig(method="bbb", seed=seed).to_dict()}, run)
    text = table2_reading(tmp_path)
    assert "lowest at epochs 2, 2, 2 of 3" in text
    assert said in text


@pytest.mark.parametrize("frontier, searches", [
    ("frontier", ("frontier-search",)),
    ("frontier-fashion", ("frontier-search-fashion", "frontier-search-fashion-edges")),
])
def test_the_frontier_trains_its_baselines_at_the_points_its_search_chose_by_the_pruned_rule(frontier, searches):
    from bayesprune.pipeline.profiles import PROJECT_ROOT, get_profile
    from bayesprune.report.fairness import choices, search_points

    # the search (with the one past its edges), re-run from a clean tree
    points = search_points(*(PROJECT_ROOT / "results" / search for search in searches))
    assert set(points["dataset"]) == set(get_profile(frontier).datasets)
    chosen = choices(points).xs("pruned 90 %", level="rule")
    trained = profile_points(get_profile(frontier)).xs("pruned 90 %", level="rule")
    assert set(chosen.index) == {"sgd", "dropout0.5", "sgd-l2"}
    assert set(profile_points(get_profile(frontier)).index.get_level_values("rule")) == {"pruned 90 %"}
    assert {m: trained.loc[m].to_dict() for m in chosen.index} == \
        {m: chosen.loc[m, ["lr", "prior scale"]].to_dict() for m in chosen.index}

def test_the_decay_length_is_chosen_on_the_kept_epoch_s_validation_nll(tmp_path):
    from bayesprune.config import RunConfig
    from bayesprune.pipeline.manifest import write_manifest
    from bayesprune.report.operating_point import schedule_choice, schedule_rules_reading

    nll = {"linear25": [0.3, 0.08, 0.09], "linear50": [0.3, 0.07, 0.085, 0.1]}  # 50: lowest on the way, not at the end
    for variant, values in nll.items():
        run = tmp_path / "runs" / f"mnist-bbb-corrected-{variant}-s0"
        run.mkdir(parents=True)
        keys = {"dataset": "mnist", "method": "bbb", "seed": 0, "protocol": "corrected", "variant": variant}
        pd.DataFrame([{**keys, "epoch": e, "val_nll": v, "val_acc": 0.98, "sigma_moved": e / 10, "sigma_q50": e / 100}
                      for e, v in enumerate(values, start=1)]).to_csv(run / "history.csv", index=False)
        write_manifest({"config": RunConfig(method="bbb", variant=variant).to_dict()}, run)
    table = schedule_choice(tmp_path)
    assert list(table.index) == ["rate falling linearly to 0 over 25 epochs", "rate falling linearly to 0 over 50 epochs"]
    assert table["chosen"].tolist() == [True, False]
    assert table.loc["rate falling linearly to 0 over 50 epochs", "at epoch"] == 2
    assert table["share of σ moved, last epoch"].tolist() == [0.3, 0.4]  # the kept epoch's posterior
    assert table["median σ, last epoch"].tolist() == [0.03, 0.04]
    assert not any(column.startswith(("test error", "validation error")) for column in table.columns)  # not pruned
    assert "chosen, pruned" not in table

    def prune(validation: dict[str, float] | None) -> pd.DataFrame:
        for variant, accuracy in (("linear25", (0.983, 0.941)), ("linear50", (0.983, 0.979))):  # shown beside
            keys = {"dataset": "mnist", "method": "bbb", "seed": 0, "protocol": "corrected", "variant": variant}
            rows = [{**keys, "criterion": c, "fraction": f, "achieved_sparsity": f, "accuracy_mean": a - (c != "snr")}
                    for c in ("snr", "magnitude") for f, a in zip((0.0, 0.98), accuracy)]
            if validation is not None:  # the own criterion's validation score, as prune_run writes it
                rows = [{**row, "val_accuracy_mean": validation[variant] - row["fraction"] / 100 if row["criterion"] == "snr"
                         else float("nan")} for row in rows]
            pd.DataFrame(rows).to_csv(tmp_path / "runs" / f"mnist-bbb-corrected-{variant}-s0" / "pruning.csv", index=False)
            write_manifest({"config": RunConfig(method="bbb", variant=variant).to_dict()},
                           tmp_path / "runs" / f"mnist-bbb-corrected-{variant}-s0")
        return schedule_choice(tmp_path)

    table = prune(None)  # swept before validation images were scored: test columns only, no second choice
    assert table["test error %, 98 % removed"].round(2).tolist() == [5.9, 2.1]
    assert table["test error %, 0 % removed"].round(2).tolist() == [1.7, 1.7]
    assert table["chosen"].tolist() == [True, False]  # the test errors take no part in the choice
    assert "chosen, pruned" not in table

    assert schedule_rules_reading(tmp_path).endswith("were not scored pruned on validation images. The choice is the "
                                                     "shortest length tried; no shorter one was run.")
    table = prune({"linear25": 0.96, "linear50": 0.97})  # validation prunes 50 best; test would agree
    assert table["validation error %, 98 % removed"].round(2).tolist() == [4.98, 3.98]
    assert table["chosen, pruned"].tolist() == [False, True] and table["chosen"].tolist() == [True, False]
    assert schedule_rules_reading(tmp_path) == (
        "Validation NLL chooses the rate falling linearly to 0 over 25 epochs; the validation error with 98 % of the "
        "weights removed by signal-to-noise (in the table above) chooses the rate falling linearly to 0 over "
        "50 epochs: the two rules disagree. Both choices lie at an end of the lengths tried (the shortest and the "
        "longest); no length past them was run.")
    table = prune({"linear25": 0.99, "linear50": 0.97})  # validation prunes 25 best, whatever the test says
    assert table["chosen, pruned"].tolist() == [True, False]
    assert schedule_rules_reading(tmp_path).endswith("over 25 epochs: the two rules agree. The choice is the shortest "
                                                     "length tried; no shorter one was run.")


def test_the_regime_summary_reads_snr_and_magnitude_once_each_whatever_else_the_sweep_records():
    from bayesprune.report.chapters import RESULTS
    from bayesprune.report.operating_point import regime_summary

    summary = regime_summary(RESULTS / "regime")  # its runs also record the unit-level criterion
    assert summary.columns.is_unique
    assert {"SNR 90%", "|mu| 90%", "SNR 99%"} <= set(summary.columns)
    assert summary["chosen"].any() and len(summary) == 10


def test_the_decay_search_past_its_end_is_read_as_part_of_the_search(tmp_path):
    from bayesprune.config import RunConfig
    from bayesprune.pipeline.manifest import write_manifest
    from bayesprune.report.operating_point import schedule_choice, schedule_rules_reading

    for folder, variant, nll in (("search", "linear25", 0.08), ("search", "linear50", 0.09), ("edges", "linear12", 0.07)):
        run = tmp_path / folder / "runs" / f"mnist-bbb-corrected-{variant}-s0"
        run.mkdir(parents=True)
        epochs = int(variant.removeprefix("linear"))
        keys = {"dataset": "mnist", "method": "bbb", "seed": 0, "protocol": "corrected", "variant": variant}
        pd.DataFrame([{**keys, "epoch": e, "val_nll": nll + (epochs - e) / 100, "val_acc": 0.98}
                      for e in range(1, epochs + 1)]).to_csv(run / "history.csv", index=False)
        write_manifest({"config": RunConfig(method="bbb", variant=variant, epochs=epochs).to_dict()}, run)
    alone = schedule_choice(tmp_path / "search", tmp_path / "not-run")
    assert alone["epochs"].tolist() == [25, 50] and alone["chosen"].tolist() == [True, False]
    both = schedule_choice(tmp_path / "search", tmp_path / "edges")
    assert both["epochs"].tolist() == [12, 25, 50] and both["chosen"].tolist() == [True, False, False]
    assert schedule_rules_reading(tmp_path / "search", tmp_path / "edges").startswith(
        "Validation NLL chooses the rate falling linearly to 0 over 12 epochs")


@pytest.mark.parametrize(("profile", "rule"), [("blundell-schedule", "chosen"), ("blundell-schedule-pruned", "chosen, pruned")])
def test_each_decayed_table2_trains_the_length_its_rule_chose_and_otherwise_the_search_s_run(profile, rule):
    from bayesprune.pipeline.profiles import get_profile
    from bayesprune.pipeline.results import finished_runs
    from bayesprune.report.chapters import RESULTS
    from bayesprune.report.operating_point import schedule_choice

    search, edges = RESULTS / "blundell-schedule-search", RESULTS / "blundell-schedule-search-edges"
    if not finished_runs(search):
        pytest.skip("blundell-schedule-search has not run")
    table = schedule_choice(search, edges)
    tried = get_profile("blundell-schedule-search").runs() + (
        get_profile("blundell-schedule-search-edges").runs() if finished_runs(edges) else [])
    assert len(table) == len(tried), "the search is not whole"
    epochs = int(table.loc[table[rule], "epochs"].iloc[0])
    searched = next(cfg for cfg in tried if cfg.epochs == epochs)
    for cfg in get_profile(profile).runs():
        differ = {k for k, v in cfg.to_dict().items() if searched.to_dict()[k] != v}
        assert differ == {"seed", "variant"}, differ
        assert cfg.seed != 0
