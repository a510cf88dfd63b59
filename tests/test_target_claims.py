"""The claims judged at each target: the rival chosen on validation data, verdicts from intervals, one rule per cell,
and the runs of a seed profile read at the target their rule chose them for."""

import pandas as pd
import pytest

from bayesprune.config import RunConfig
from bayesprune.pipeline.manifest import write_manifest
from bayesprune.pipeline.results import run_keys
from bayesprune.pipeline.run_paths import run_id
from bayesprune.report.target_claims import (AS_TRAINED, CLAIMS, cell_verdicts, judged_accuracy, method_table, rival,
                                             target_reading, target_table, verdict_matrices)
from bayesprune.report.verdicts import FAILS, HOLDS, INCONCLUSIVE

CHOSEN_98 = "chosen for 98 %"


def _cell(method: str, dense: list[float], pruned: list[float], validation: float, rule: str = CHOSEN_98,
          target: float = 0.98, dataset: str = "mnist") -> list[dict]:
    """One method's seeds in a cell."""
    return [{"dataset": dataset, "rule": rule, "target": target, "method": method, "seed": seed + 1,
             "dense": d, "pruned": p, "validation": validation + 0.0001 * seed}
            for seed, (d, p) in enumerate(zip(dense, pruned))]


def _judged(**changes: list[dict]) -> pd.DataFrame:
    """A cell where BBB keeps its accuracy and beats every rival, with some methods replaced."""
    methods = {
        "bbb": _cell("bbb", [0.980, 0.981, 0.982], [0.975, 0.976, 0.977], 0.97),
        "sgd-mixture": _cell("sgd-mixture", [0.980, 0.981, 0.982], [0.950, 0.951, 0.953], 0.95),
        "sgd-l1": _cell("sgd-l1", [0.983, 0.984, 0.985], [0.960, 0.962, 0.961], 0.96),
        "sgd": _cell("sgd", [0.980, 0.982, 0.981], [0.500, 0.520, 0.510], 0.50),
    }
    methods.update(changes)
    return pd.DataFrame([row for rows in methods.values() for row in rows])


def test_the_rival_is_the_best_on_validation_even_where_test_would_choose_another():
    judged = _judged(sgd=_cell("sgd", [0.98] * 3, [0.970, 0.971, 0.972], 0.90))  # best on test, worst on validation
    assert rival(judged) == "sgd-l1"
    row = target_table(judged).iloc[0]
    assert row["best baseline"] == "SGD + L1"
    assert row["baseline accuracy"] == pytest.approx(0.961)


def test_each_claim_reads_its_interval_over_seeds():
    verdicts = cell_verdicts(_judged())
    assert verdicts == {"keeps": HOLDS, "most accurate": HOLDS, "posterior": HOLDS, "collapse": FAILS}
    losing = cell_verdicts(_judged(bbb=_cell("bbb", [0.980, 0.981, 0.982], [0.900, 0.910, 0.905], 0.97)))
    assert losing["keeps"] == FAILS and losing["most accurate"] == FAILS and losing["posterior"] == FAILS
    noisy = cell_verdicts(_judged(bbb=_cell("bbb", [0.98] * 3, [0.990, 0.930, 0.960], 0.97)))
    assert noisy["keeps"] == INCONCLUSIVE and noisy["posterior"] == INCONCLUSIVE


def test_baselines_collapse_only_where_every_one_does():
    l1_collapses = _cell("sgd-l1", [0.98] * 3, [0.50, 0.52, 0.51], 0.5)
    mixture_collapses = _cell("sgd-mixture", [0.98] * 3, [0.40, 0.42, 0.41], 0.4)
    assert cell_verdicts(_judged(**{"sgd-l1": l1_collapses, "sgd-mixture": mixture_collapses}))["collapse"] == HOLDS
    assert cell_verdicts(_judged(**{"sgd-l1": l1_collapses}))["collapse"] == FAILS


def test_every_table_reads_one_rule_and_a_target_s_runs_only_at_that_target():
    as_trained = pd.DataFrame([row for m in ("bbb", "sgd", "sgd-l1", "sgd-mixture")
                               for row in _cell(m, [0.98] * 3, [0.6, 0.61, 0.62], 0.98, rule=AS_TRAINED)])
    judged = pd.concat([_judged(), as_trained], ignore_index=True)
    table = target_table(judged)
    assert list(zip(table["rule"], table["seeds"])) == [(CHOSEN_98, 3), (AS_TRAINED, 3)]
    assert table.set_index("rule").loc[AS_TRAINED, "BBB"] == pytest.approx(0.61)
    matrices = verdict_matrices(table)
    assert list(matrices) == ["MNIST"] and list(matrices["MNIST"].columns) == ["98 %"]
    assert matrices["MNIST"].loc["BBB keeps its accuracy"].item() == HOLDS
    assert list(method_table(judged).columns) == [0.98]
    split = verdict_matrices(pd.concat([_judged(), _judged().assign(dataset="fashion-mnist")], ignore_index=True)
                             .pipe(target_table))
    assert list(split) == ["MNIST", "Fashion-MNIST"] and list(split["Fashion-MNIST"].columns) == ["98 %"]
    assert split["MNIST"].loc["BBB keeps its accuracy", "98 %"] == HOLDS
    assert "holds on MNIST at 98 %" in target_reading(table)
    more = pd.concat([_judged(), _judged().assign(target=0.95, rule="chosen for 95 %"),
                      _judged().assign(dataset="fashion-mnist")], ignore_index=True)
    assert "- BBB keeps its accuracy: holds on MNIST at 95 and 98 % and on Fashion-MNIST at 98 %;\n" in target_reading(
        target_table(more))  # each dataset named once
    single = target_table(more).assign(keeps=lambda t: [HOLDS + " (one seed)" if d == "fashion-mnist" else v
                                                         for d, v in zip(t["dataset"], t["keeps"])])
    assert ("- BBB keeps its accuracy: holds on MNIST at 95 and 98 %; holds, so far on one seed, on Fashion-MNIST at "
            "98 %;\n") in target_reading(single)  # a verdict on one seed is not counted with the decided ones


def test_a_cell_is_judged_only_on_the_seeds_every_method_of_its_dataset_shares():
    from bayesprune.report.target_claims import WAITING, formatted_target_table

    only_sgd = pd.DataFrame(_cell("sgd", [0.98] * 2, [0.97] * 2, 0.97, rule="chosen for 95 %", target=0.95))
    table = target_table(pd.concat([_judged(), only_sgd], ignore_index=True)).set_index("target")
    assert table.loc[0.95, "seeds"] == 0
    assert table.loc[0.95, list(CLAIMS)].tolist() == [WAITING] * 4  # never "BBB most accurate" with SGD alone
    assert table.loc[0.98, "keeps"] == HOLDS
    assert list(formatted_target_table(table.reset_index()).index.get_level_values("pruned")) == ["98 %"]
    assert target_reading(table.reset_index()).endswith(
        "\n\nNot judged yet, some methods still training: the cells on MNIST at 95 %.")
    third = _judged(**{"sgd-l1": _cell("sgd-l1", [0.983] * 3, [0.960, 0.962, 0.990], 0.96)})
    third = third[~((third["method"] == "bbb") & (third["seed"] == 3))]  # BBB's third seed still training
    row = target_table(third).iloc[0]
    assert row["seeds"] == 2 and row["baseline accuracy"] == pytest.approx(0.961)  # SGD + L1 on seeds 1 and 2
    assert method_table(third).loc[("mnist", "SGD + L1"), 0.98] == pytest.approx(0.961)


def _run(root, method: str, select: str, accuracies: dict[float, float]) -> None:
    """A finished run folder with a pruning table (own criterion and magnitude), kept by the rule `select`."""
    cfg = RunConfig(method=method, seed=1, variant=select, select=select, validation=100, targets=True)
    folder = root / "runs" / run_id(cfg)
    folder.mkdir(parents=True)
    keys = run_keys(cfg.to_dict())
    pd.DataFrame([{**keys, "criterion": criterion, "fraction": f, "accuracy_mean": a - (criterion != "snr"),
                   "val_accuracy_mean": a - 0.001} for f, a in accuracies.items()
                  for criterion in ("snr", "magnitude")]).to_csv(folder / "pruning.csv", index=False)
    write_manifest({"config": cfg.to_dict()}, folder)


def test_a_seed_profile_s_runs_are_read_at_their_own_target_and_as_trained_at_every_one(tmp_path):
    accuracies = {0.0: 0.98, 0.9: 0.97, 0.95: 0.96, 0.98: 0.95, 0.99: 0.90}
    _run(tmp_path, "bbb", "for98", accuracies)
    _run(tmp_path, "bbb", "val_acc", accuracies)
    _run(tmp_path, "bbb", "val_acc_pruned", accuracies)  # kept by the old pruned-90 rule: read under no target's rule
    judged = judged_accuracy(tmp_path, None)
    chosen = judged[judged["rule"] == CHOSEN_98]
    assert list(chosen["target"]) == [0.98] and chosen["pruned"].item() == 0.95
    assert chosen["validation"].item() == pytest.approx(0.949)  # pruned to the target it was chosen for
    trained = judged[judged["rule"] == AS_TRAINED]
    assert list(trained["target"]) == [0.9, 0.95, 0.98, 0.99]
    assert list(trained["validation"]) == pytest.approx([0.979] * 4)  # unpruned, as the rule chose it
    assert judged_accuracy(tmp_path / "missing").empty


def test_the_figure_draws_every_method_chosen_for_its_target_and_no_rule_beside_it():
    from bayesprune.report.plots import target_accuracy_figure

    as_trained = pd.DataFrame(_cell("sgd-l2", [0.98] * 3, [0.6] * 3, 0.9, rule=AS_TRAINED))
    figure = target_accuracy_figure(pd.concat([_judged(), as_trained], ignore_index=True))
    labels = figure.axes[0].get_legend_handles_labels()[1]
    assert labels == ["SGD", "SGD + L1", "MAP, BBB's prior", "BBB"]  # SGD + L2 ran as trained only
    wide = pd.DataFrame(_cell("sgd", [0.98] * 2, [0.05, 0.95], 0.5))  # two seeds far apart: t reaches past 0 and 1
    low, high = target_accuracy_figure(wide).axes[0].get_ylim()
    assert low >= -0.05 and high <= 1.05


def test_each_rule_s_kept_epochs_stand_against_the_cap_and_a_run_the_cap_stopped_is_counted(tmp_path):
    from bayesprune.report.target_claims import kept_against_cap

    dense = [0.90, 0.95, 0.97, 0.97, 0.965]
    for seed, pruned98, epochs in ((1, [0.5, 0.99, 0.6, 0.95, 0.7], 5), (2, [0.5, 0.6, 0.7, 0.8, 0.9], 5),
                                   (3, [0.5, 0.6, 0.7, 0.8, 0.9], 9)):
        cfg = RunConfig(method="sgd-l1", seed=seed, variant="for98", select="for98", validation=100, targets=True,
                        patience=3, epochs=epochs)
        folder = tmp_path / "runs" / run_id(cfg)
        folder.mkdir(parents=True)
        pd.DataFrame({**run_keys(cfg.to_dict()), "epoch": range(1, 6), "val_acc": dense,
                      "val_acc_pruned98": pruned98}).to_csv(folder / "history.csv", index=False)
        write_manifest({"config": cfg.to_dict()}, folder)
    row = kept_against_cap(tmp_path, None).loc[("MNIST", "SGD + L1", CHOSEN_98)]
    # seed 1 keeps epoch 4 (epoch 2 is half a point below the best dense), seed 2 the last of its cap of 5, seed 3
    # the same epoch, which its patience ended before its cap of 9
    assert row.to_dict() == {"seeds": 3, "epoch kept": "4–5", "most epochs trained": 5, "cap": "5–9",
                             "stopped by the cap": 2, "kept the cap's last epoch": 1}
    assert kept_against_cap(tmp_path / "missing").empty


def test_the_matrix_carries_the_cheap_posterior_claim_where_it_was_judged_and_a_dash_elsewhere():
    from bayesprune.report.target_claims import UNCERTAINTY_CLAIM

    table = target_table(pd.concat([_judged(), _judged().assign(rule="chosen for 95 %", target=0.95),
                                    _judged().assign(rule=AS_TRAINED)], ignore_index=True))
    claim = {"cells": [{"dataset": "mnist", "fraction": 0.98, "verdict": FAILS}], "verdict": FAILS}
    matrix = verdict_matrices(table, uncertainty=claim)["MNIST"]
    assert matrix.loc[UNCERTAINTY_CLAIM].to_dict() == {"95 %": "—", "98 %": FAILS}
    assert UNCERTAINTY_CLAIM not in verdict_matrices(table, rule_kind="as trained", uncertainty=claim)["MNIST"].index
    assert UNCERTAINTY_CLAIM not in verdict_matrices(table, uncertainty={"cells": [], "verdict": "not tested"})["MNIST"].index


def test_the_answer_s_sentence_beyond_ninety_percent_names_where_the_posterior_does_the_work():
    from bayesprune.report.target_claims import posterior_beyond_ninety

    assert posterior_beyond_ninety(target_table(_judged())) == (
        "Chosen for sparser targets, though, BBB keeps more than its own prior without a posterior on MNIST at 98 %: "
        "there its posterior does the work. On MNIST at 98 % it is the most accurate model of all.")
    l1 = _cell("sgd-l1", [0.983, 0.984, 0.985], [0.980, 0.981, 0.982], 0.96)  # L1 keeps more than BBB
    assert posterior_beyond_ninety(target_table(_judged(**{"sgd-l1": l1}))).endswith(
        "its posterior does the work. On MNIST at 98 %, SGD + L1, chosen on validation, keeps more still.")
    matched = _cell("sgd-mixture", [0.98] * 3, [0.975, 0.976, 0.977], 0.97)  # MAP keeps what BBB keeps
    assert posterior_beyond_ninety(target_table(_judged(**{"sgd-mixture": matched}))) == ""  # inconclusive: silent
    better = _cell("sgd-mixture", [0.98] * 3, [0.985, 0.986, 0.987], 0.97)
    assert posterior_beyond_ninety(target_table(_judged(**{"sgd-mixture": better}))).startswith("Chosen for 95 to 99 %")
    assert posterior_beyond_ninety(pd.DataFrame()) == ""


def test_a_profile_with_its_own_targets_is_judged_alone_and_never_mixed_with_the_seed_profiles(tmp_path):
    from bayesprune.report.target_claims import judged_folders

    for name, columns in (("smoke", "val_acc,val_acc_pruned98"), ("paper", "val_acc"), ("seeds", "val_acc,val_acc_pruned98")):
        (tmp_path / name / "runs" / "a-run").mkdir(parents=True)
        (tmp_path / name / "runs" / "a-run" / "history.csv").write_text(f"epoch,{columns}\n1,0.9\n")
    assert judged_folders(tmp_path / "smoke", tmp_path / "seeds") == [tmp_path / "smoke"]
    assert judged_folders(tmp_path / "paper", tmp_path / "seeds", tmp_path / "missing") == [tmp_path / "seeds"]
