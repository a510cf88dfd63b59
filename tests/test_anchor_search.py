"""The frontier's points chosen at its anchors: on validation accuracy after one-shot fine-tuning at the first
fraction that reaches each ratio, never on test accuracy, and a choice at an end of the grid said so."""

import pandas as pd
import pytest

from bayesprune.pipeline.profiles import Profile
from bayesprune.report.anchor_search import anchor_choices, anchor_table, anchor_variants, chosen_points


def _rows(method: str, scale: float, validation: dict[float, float], test: float = 0.9, lr: float = 1e-3,
          schedule: str = "one-shot", rate: float = 1.0) -> list[dict]:
    """One point's fine-tuned networks: per fraction its compression ratio (1 / kept share) and accuracies."""
    return [{"dataset": "mnist", "method": method, "lr": lr, "prior_log_sigma1": scale, "schedule": schedule,
             "finetune_rate": rate, "fraction": f, "compression": 1 / (1 - f), "val_accuracy": v,
             "accuracy_mean": test} for f, v in validation.items()]


def test_each_anchor_is_read_at_the_first_fraction_reaching_it_and_chosen_on_validation():
    rows = pd.DataFrame(
        _rows("sgd-l1", 1.0, {0.9: 0.99, 0.93: 0.95, 0.99: 0.60}, test=0.99)  # best on test, worse on validation
        + _rows("sgd-l1", -1.0, {0.9: 0.97, 0.93: 0.97, 0.99: 0.90}, test=0.50)
        + _rows("sgd-l1", -2.0, {0.9: 0.96, 0.93: 0.96, 0.99: 0.95})
        + _rows("sgd-l1", 1.0, {0.93: 0.999, 0.99: 0.999}, schedule="iterative"))  # never read
    choices = anchor_choices(rows)
    assert choices.groupby("anchor")["fraction"].first().to_dict() == {12.0: 0.93, 68.0: 0.99}
    chosen = choices[choices["chosen"]].set_index("anchor")["prior_log_sigma1"].to_dict()
    assert chosen == {12.0: -1.0, 68.0: -2.0}
    points = chosen_points(choices).set_index("anchor")
    assert not points.loc[12.0, "at an end"] and points.loc[68.0, "at an end"]  # -2 is the strongest tried


def test_an_end_that_leads_by_no_more_than_the_noise_is_flat_and_closes_the_search():
    rows = pd.DataFrame(_rows("bbb", 6.0, {0.93: 0.9810, 0.99: 0.90}) + _rows("bbb", 5.0, {0.93: 0.9797, 0.99: 0.80})
                        + _rows("bbb", 4.0, {0.93: 0.9802, 0.99: 0.70}))
    points = chosen_points(anchor_choices(rows)).set_index("anchor")
    assert points.loc[:, "prior_log_sigma1"].tolist() == [6.0, 6.0]
    assert not points.loc[12.0, "at an end"]  # 0.0008 ahead of e^4: within the 0.0019 noise of 10 000 images
    assert points.loc[68.0, "at an end"]  # 0.10 ahead: the search goes on past e^6


def test_the_better_fine_tuning_rate_stands_for_each_point():
    rows = pd.DataFrame(_rows("sgd", 0.0, {0.93: 0.90, 0.99: 0.80}, lr=1e-3)
                        + _rows("sgd", 0.0, {0.93: 0.95, 0.99: 0.70}, lr=1e-3, rate=0.1)
                        + _rows("sgd", 0.0, {0.93: 0.94, 0.99: 0.79}, lr=3e-4))
    choices = anchor_choices(rows).set_index(["anchor", "lr"])
    assert choices.loc[(12.0, 1e-3), ["finetune_rate", "validation accuracy"]].tolist() == [0.1, 0.95]
    assert choices.loc[(68.0, 1e-3), "validation accuracy"] == pytest.approx(0.80)
    points = chosen_points(choices.reset_index()).set_index("anchor")
    assert points["lr"].to_dict() == {12.0: 1e-3, 68.0: 1e-3} and points["prior_log_sigma1"].isna().all()
    assert points.loc[12.0, "at an end"]  # the fastest rate tried


def _write_search_run(folder, scale: float, validation: dict[float, float], train_seconds: float = 60.0) -> None:
    """One finished L1 run of a search at prior scale e^scale: its fine-tuned table and its manifest."""
    from bayesprune.config import RunConfig
    from bayesprune.pipeline.manifest import write_manifest
    from bayesprune.pipeline.results import run_keys
    from bayesprune.pipeline.run_paths import run_id

    cfg = RunConfig(method="sgd-l1", seed=0, variant=f"s{scale:g}", lr=1e-3, prior_log_sigma1=scale, validation=100)
    run = folder / "runs" / run_id(cfg)
    run.mkdir(parents=True)
    pd.DataFrame([{**run_keys(cfg.to_dict()), "schedule": "one-shot", "finetune_rate": 1.0, "criterion": "magnitude",
                   "fraction": f, "achieved_sparsity": f, "accuracy_mean": 0.5, "compression": 1 / (1 - f),
                   "val_accuracy": v} for f, v in validation.items()]).to_csv(run / "finetuned.csv", index=False)
    write_manifest({"config": cfg.to_dict(), "run": run_id(cfg), "train_seconds": train_seconds,
                    "notebook_seconds": {"train": 1.0, "prune": 60.0}}, run)  # resumed: train counts every epoch


def test_every_point_tried_is_shown_with_its_scores_the_anchors_that_chose_it_and_its_cost(tmp_path):
    from bayesprune.report.anchor_search import anchor_grid, anchor_search_rows

    _write_search_run(tmp_path, 1.0, {0.93: 0.97, 0.99: 0.80}, train_seconds=240.0)
    _write_search_run(tmp_path, -1.0, {0.93: 0.96, 0.99: 0.90}, train_seconds=120.0)
    grid = anchor_grid(anchor_choices(anchor_search_rows(tmp_path))).droplevel(["dataset", "method"])
    assert grid.index.tolist() == ["Adam 1e-3, prior e^1", "Adam 1e-3, prior e^-1"]  # weakest prior first
    assert grid["chosen at"].tolist() == ["12x", "68x"]
    assert grid["validation % at 68x"].tolist() == [80.0, 90.0]
    assert grid["minutes"].tolist() == [5, 3]  # training's 4 and 2 minutes, and a minute of pruning each


def test_a_point_that_never_reaches_an_anchor_is_not_compared_there():
    rows = pd.DataFrame(_rows("bbb", 3.0, {0.93: 0.97}) + _rows("bbb", 4.0, {0.93: 0.96, 0.99: 0.5}))
    choices = anchor_choices(rows)
    assert choices[choices["anchor"] == 68.0]["prior_log_sigma1"].tolist() == [4.0]


def test_the_search_s_runs_are_read_with_their_points_and_a_missing_search_says_so(tmp_path):
    from bayesprune.report.anchor_search import anchor_search_rows

    for scale, validation in ((1.0, 0.90), (-1.0, 0.95)):
        _write_search_run(tmp_path, scale, {0.93: validation, 0.99: validation})
    rows = anchor_search_rows(tmp_path, None)
    assert sorted(rows["prior_log_sigma1"].unique()) == [-1.0, 1.0] and len(rows) == 4
    assert chosen_points(anchor_choices(rows))["prior_log_sigma1"].tolist() == [-1.0, -1.0]
    with pytest.raises(FileNotFoundError, match="no anchor search"):
        anchor_search_rows(tmp_path / "missing")


def test_the_anchor_seed_profile_trains_each_method_at_the_point_each_anchor_chose():
    rows = pd.DataFrame(_rows("sgd-l1", 1.0, {0.93: 0.97, 0.99: 0.60}) + _rows("sgd-l1", -2.0, {0.93: 0.96, 0.99: 0.95})
                        + _rows("sgd", 0.0, {0.93: 0.95, 0.99: 0.50}, lr=3e-4)
                        + _rows("sgd", 0.0, {0.93: 0.94, 0.99: 0.70}, lr=1e-3))
    variants = anchor_variants(chosen_points(anchor_choices(rows)), "mnist")
    assert variants == {"at12x": {"method_config": {"sgd": {"lr": 3e-4}, "sgd-l1": {"lr": 1e-3, "prior_log_sigma1": 1.0}}},
                        "at68x": {"method_config": {"sgd": {"lr": 1e-3},
                                                    "sgd-l1": {"lr": 1e-3, "prior_log_sigma1": -2.0}}}}
    assert anchor_variants(chosen_points(anchor_choices(rows)), "fashion-mnist") == {}
    frontier = Profile(name="frontier", datasets=("mnist",), methods=("sgd",), seeds=(1, 2), fractions=(0.0,),
                       config=(("lr", 1e-3),))
    assert anchor_variants(chosen_points(anchor_choices(rows)), "mnist", frontier) == {  # SGD at 68x: the frontier's
        "at12x": variants["at12x"], "at68x": {"method_config": {"sgd-l1": {"lr": 1e-3, "prior_log_sigma1": -2.0}}}}


def test_the_book_s_anchor_table_gives_each_method_s_point_per_anchor_and_marks_an_end():
    rows = pd.DataFrame(_rows("sgd-l1", 1.0, {0.93: 0.97, 0.99: 0.60}) + _rows("sgd-l1", -2.0, {0.93: 0.96, 0.99: 0.95})
                        + _rows("sgd", 0.0, {0.93: 0.95, 0.99: 0.50}, lr=3e-4)
                        + _rows("sgd", 0.0, {0.93: 0.94, 0.99: 0.70}, lr=1e-3))
    table = anchor_table(chosen_points(anchor_choices(rows)))
    assert table.index.tolist() == [("MNIST", "SGD"), ("MNIST", "SGD + L1")]
    assert table.loc[("MNIST", "SGD + L1"), "point at 68x"] == "Adam 1e-3, prior e^-2 (an end)"
    assert table.loc[("MNIST", "SGD"), "point at 12x"] == "Adam 3e-4 (an end)"
    assert table.loc[("MNIST", "SGD + L1"), "validation % at 12x"] == 97.0


def test_a_search_read_before_its_grid_has_finished_is_called_provisional(tmp_path):
    from bayesprune.report.anchor_search import search_progress

    folder = tmp_path / "frontier-anchor-search"
    (folder / "runs" / "one").mkdir(parents=True)
    (folder / "runs" / "one" / "manifest.json").write_text("{}")
    assert search_progress(folder) == ("*The search is still running (frontier-anchor-search 1 of its 41 runs): the "
                                       "choices below are provisional.*")


@pytest.mark.parametrize("searches, seeds, frontier", [
    (("frontier-anchor-search",), "frontier-anchor-seeds", "frontier"),
    (("frontier-anchor-search-fashion", "frontier-anchor-search-fashion-edges"), "frontier-anchor-seeds-fashion",
     "frontier-fashion")])
def test_each_anchor_seed_profile_holds_to_the_search_it_continues(searches, seeds, frontier):
    from bayesprune.pipeline.profiles import get_profile
    from bayesprune.report.anchor_search import anchor_search_rows
    from bayesprune.report.chapters import RESULTS

    points = chosen_points(anchor_choices(anchor_search_rows(*(RESULTS / search for search in searches))))
    assert not points["at an end"].any()  # the search is closed, past its edges included
    profile, searched = get_profile(seeds), get_profile(searches[0])
    (dataset,) = profile.datasets
    variants = anchor_variants(points, dataset, get_profile(frontier))
    assert profile.seeds == get_profile(frontier).seeds and profile.fractions == searched.fractions
    assert dict(profile.config) == dict(searched.config)
    assert all(getattr(profile, key) == getattr(searched, key)
               for key in ("finetune_epochs", "finetune_patience", "finetune_rates"))
    assert {variant: {method: dict(point) for method, point in methods}
            for variant, methods in profile.variant_method_config} == {
        name: body["method_config"] for name, body in variants.items()}


@pytest.mark.parametrize("source, longer, controls", [
    ("frontier-anchor-search", "frontier-anchor-search-longer", {("sgd", 0, "lr1e-3")}),
    ("frontier-anchor-search-fashion", "frontier-anchor-search-fashion-longer", set()),
    ("frontier-anchor-seeds", "frontier-anchor-seeds-longer", set())])
def test_each_longer_profile_retrains_every_run_its_source_s_cap_stopped_and_changes_nothing_else(
        source, longer, controls):
    from bayesprune.pipeline.profiles import get_profile
    from bayesprune.report.chapters import RESULTS
    from bayesprune.report.targets import run_epochs

    runs = run_epochs(RESULTS / source)
    capped = {(r.method, r.seed, r.variant) for r in runs.itertuples() if r.trained >= r.cap}
    retrained = {(cfg.method, cfg.seed, cfg.variant): cfg for cfg in get_profile(longer).runs()}
    assert capped and set(retrained) == capped | controls
    stopped = {(r.method, r.seed, r.variant) for r in runs.itertuples() if r.trained < r.cap}
    assert controls <= stopped  # a control stopped by its own rule at the lower cap
    twins = {(cfg.method, cfg.seed, cfg.variant): cfg for cfg in get_profile(source).runs()}
    for key, cfg in retrained.items():
        assert cfg.epochs > twins[key].epochs
        assert cfg.to_dict() | {"epochs": 0} == twins[key].to_dict() | {"epochs": 0}


@pytest.mark.parametrize("source, longer", [
    ("frontier-anchor-search", "frontier-anchor-search-longer"),
    ("frontier-anchor-search-fashion", "frontier-anchor-search-fashion-longer"),
    ("frontier-anchor-seeds", "frontier-anchor-seeds-longer")])
def test_a_run_trained_again_under_a_higher_cap_repeats_every_epoch_of_its_capped_twin(source, longer):
    from bayesprune.pipeline.results import finished_runs, load_table
    from bayesprune.report.chapters import RESULTS
    from bayesprune.report.targets import run_epochs

    if not finished_runs(RESULTS / longer):
        pytest.skip(f"{longer} has not run here")
    twin, again = (load_table(RESULTS / name, "history").drop(columns="seconds") for name in (source, longer))
    keys = ["method", "seed", "variant", "epoch"]
    joined = again.merge(twin, on=["dataset", "protocol", *keys], suffixes=("", " capped"))
    assert len(joined) == len(twin.merge(again[keys].drop_duplicates(keys[:3]), on=keys[:3]))  # every capped epoch
    for column in ("loss", "val_acc", "val_acc_pruned", "test_acc"):
        assert (joined[column] == joined[f"{column} capped"]).all(), column
    runs = run_epochs(RESULTS / source).set_index(keys[:3])
    trained = again.groupby(keys[:3])["epoch"].max()
    stopped = runs.loc[trained.index, "trained"] < runs.loc[trained.index, "cap"]
    assert (trained[stopped] == runs.loc[trained.index, "trained"][stopped]).all()  # a control ends where it did


def test_every_anchor_run_stands_against_its_cap_the_search_apart_from_each_anchor_s_seeds(tmp_path):
    from bayesprune.config import RunConfig
    from bayesprune.pipeline.manifest import write_manifest
    from bayesprune.pipeline.results import run_keys
    from bayesprune.pipeline.run_paths import run_id
    from bayesprune.report.anchor_search import anchor_runs_against_cap

    runs = (("search", 0, "s1", [0.5, 0.9, 0.8, 0.7], 8),  # patience ended it at 4 of 8: kept epoch 2
            ("seeds", 1, "at12x", [0.5, 0.6, 0.7, 0.8], 4),  # still improving at its cap of 4
            ("seeds", 2, "at12x", [0.9, 0.8, 0.7, 0.6], 4),  # kept its first, then ran into the cap
            ("seeds", 1, "at68x", [0.5, 0.9, 0.8, 0.7], 8))
    for folder, seed, variant, pruned, cap in runs:
        cfg = RunConfig(method="sgd-l2", seed=seed, variant=variant, select="val_acc_pruned", validation=100,
                        patience=2, epochs=cap)
        run = tmp_path / folder / "runs" / run_id(cfg)
        run.mkdir(parents=True)
        pd.DataFrame({**run_keys(cfg.to_dict()), "epoch": range(1, 5), "val_acc": [0.9] * 4,
                      "val_acc_pruned": pruned}).to_csv(run / "history.csv", index=False)
        write_manifest({"config": cfg.to_dict()}, run)
    table = anchor_runs_against_cap(tmp_path / "search", tmp_path / "seeds", None).droplevel(["dataset", "method"])
    assert table.index.tolist() == ["search", "chosen for 12x", "chosen for 68x"]
    assert table["epoch kept"].tolist() == ["2", "1–4", "2"]
    assert table["stopped by the cap"].tolist() == [0, 2, 0]
    assert table["kept the cap's last epoch"].tolist() == [0, 1, 0]
    assert table["trained"].tolist() == [1, 2, 1]
    assert anchor_runs_against_cap(tmp_path / "missing").empty

    # seed 1 at 12x trained again under a cap of 8: patience ends it at 6, and it stands in place of its capped twin
    cfg = RunConfig(method="sgd-l2", seed=1, variant="at12x", select="val_acc_pruned", validation=100, patience=2,
                    epochs=8)
    run = tmp_path / "longer" / "runs" / run_id(cfg)
    run.mkdir(parents=True)
    pd.DataFrame({**run_keys(cfg.to_dict()), "epoch": range(1, 7), "val_acc": [0.9] * 6,
                  "val_acc_pruned": [0.5, 0.6, 0.7, 0.8, 0.75, 0.7]}).to_csv(run / "history.csv", index=False)
    write_manifest({"config": cfg.to_dict()}, run)
    table = anchor_runs_against_cap(tmp_path / "search", tmp_path / "seeds", tmp_path / "longer")
    chosen = table.droplevel(["dataset", "method"]).loc["chosen for 12x"]
    assert (chosen["trained"], chosen["epoch kept"], chosen["cap"]) == (2, "1–4", "4–8")
    assert (chosen["stopped by the cap"], chosen["kept the cap's last epoch"]) == (1, 0)  # seed 2 alone, still capped
