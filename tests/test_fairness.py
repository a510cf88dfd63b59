"""The fair comparison's search: each rule picks, per method, the point with the best validation score averaged
over the datasets; the grid says where its choice lies; the converged profile trains what the search chose."""

from __future__ import annotations

import pandas as pd
import pytest

from bayesprune.pipeline.profiles import PROJECT_ROOT, get_profile, load_profiles
from bayesprune.report.fairness import bracketed, choices, choose, profile_points, search_points


def _points(rows) -> pd.DataFrame:
    return pd.DataFrame([{"dataset": d, "method": m, "lr": lr, "prior scale": s, "val_acc": a, "val_acc_pruned": p}
                         for d, m, lr, s, a, p in rows])


def test_each_rule_picks_the_best_mean_over_datasets_and_skips_points_not_tried_on_both():
    points = _points([
        ("mnist", "sgd-l1", 1e-3, 0.0, 0.980, 0.970), ("fashion-mnist", "sgd-l1", 1e-3, 0.0, 0.880, 0.860),
        ("mnist", "sgd-l1", 1e-3, -2.0, 0.970, 0.975), ("fashion-mnist", "sgd-l1", 1e-3, -2.0, 0.870, 0.870),
        ("mnist", "sgd-l1", 3e-3, -2.0, 0.999, 0.999),  # tried on one dataset only: never chosen
    ])
    chosen = choices(points)
    assert chosen.loc[("sgd-l1", "as trained"), "prior scale"] == 0.0
    assert chosen.loc[("sgd-l1", "pruned 90 %"), "prior scale"] == -2.0
    assert chosen.loc[("sgd-l1", "pruned 90 %"), "validation"] == pytest.approx((0.975 + 0.870) / 2)
    with pytest.raises(ValueError, match="unknown rule"):
        choose(points, "test_acc")


def test_a_choice_at_the_end_of_the_grid_is_named():
    points = _points([(d, "sgd-l2", 1e-3, s, a, a) for d in ("mnist", "fashion-mnist")
                      for s, a in ((1.0, 0.97), (0.0, 0.98), (-1.0, 0.96))]
                     + [(d, "sgd-l1", 1e-3, s, a, a) for d in ("mnist", "fashion-mnist")
                        for s, a in ((1.0, 0.99), (0.0, 0.98), (-1.0, 0.96))])
    where = bracketed(points)["where"]
    assert set(where.xs("sgd-l2", level="method")) == {"inside"}
    assert set(where.xs("sgd-l1", level="method")) == {"weak end"}


def test_profile_points_read_each_rule_and_refuse_two_points_under_one(tmp_path):
    path = tmp_path / "profiles.yml"
    path.write_text("""
two:
  datasets: [mnist]
  methods: [sgd, sgd-l1]
  seeds: [1]
  fractions: [0.0, 0.9]
  config: {validation: 1000, patience: 2}
  variants:
    as-trained: {method_config: {sgd: {lr: 0.0001}, sgd-l1: {lr: 0.001, prior_log_sigma1: 1.0}}}
    pruned90: {select: val_acc_pruned, methods: [sgd-l1], method_config: {sgd-l1: {lr: 0.003, prior_log_sigma1: -1.0}}}
clash:
  datasets: [mnist]
  methods: [sgd]
  seeds: [1]
  fractions: [0.0, 0.9]
  variants:
    a: {lr: 0.001}
    b: {lr: 0.003}
""")
    profiles = load_profiles(path)
    points = profile_points(profiles["two"])
    assert points.loc[("sgd", "as trained")].to_dict() == {"lr": 1e-4, "prior scale": "—"}
    assert points.loc[("sgd-l1", "pruned 90 %")].to_dict() == {"lr": 3e-3, "prior scale": -1.0}
    with pytest.raises(ValueError, match="several points"):
        profile_points(profiles["clash"])


def test_converged_trains_each_method_at_the_point_the_fair_search_chose():
    chosen = choices(search_points(PROJECT_ROOT / "results" / "fair-search"))
    trained = profile_points(get_profile("converged"))
    compared = chosen.index.intersection(trained.index)
    assert len(compared) == len(chosen)  # every choice of the search is trained
    differ = {key: (trained.loc[key].to_dict(), chosen.loc[key, ["lr", "prior scale"]].to_dict())
              for key in compared if trained.loc[key].to_dict() != chosen.loc[key, ["lr", "prior scale"]].to_dict()}
    assert differ == {}


def test_the_strength_grid_is_read_at_its_own_rate_not_at_the_rates_tried_around_a_choice():
    from bayesprune.report.fairness import strength_curves

    rows = [(d, "sgd-l2", 1e-3, s, a, a) for d in ("mnist", "fashion-mnist")
            for s, a in ((1.0, 0.97), (0.0, 0.98), (-1.0, 0.96))]
    rows += [(d, "sgd-l2", 3e-3, 0.0, 0.99, 0.99) for d in ("mnist", "fashion-mnist")]  # a rate tried at the choice
    points = _points(rows)
    assert set(strength_curves(points)["lr"]) == {1e-3}
    assert set(bracketed(points).index.get_level_values("lr")) == {1e-3}
    assert choices(points).loc[("sgd-l2", "as trained"), "lr"] == 3e-3  # the rate still takes part in the choice


def test_a_search_past_the_edges_is_read_with_its_search_and_can_move_the_choice(tmp_path):
    from bayesprune.config import RunConfig
    from bayesprune.pipeline.manifest import write_manifest

    def search(name: str, scores: dict[str, float]) -> None:
        for variant, pruned in scores.items():
            lr = {"lr3e-5": 3e-5, "lr1e-4": 1e-4, "lr1e-3": 1e-3}[variant]
            run = tmp_path / name / "runs" / f"fashion-mnist-sgd-corrected-{variant}-s0"
            run.mkdir(parents=True)
            keys = {"dataset": "fashion-mnist", "method": "sgd", "seed": 0, "protocol": "corrected", "variant": variant}
            pd.DataFrame([{**keys, "epoch": e, "val_acc": 0.88, "val_acc_pruned": pruned - (2 - e) / 100,
                           "seconds": 1.0} for e in (1, 2)]).to_csv(run / "history.csv", index=False)
            write_manifest({"config": RunConfig(dataset="fashion-mnist", method="sgd", variant=variant, lr=lr,
                                                validation=1000).to_dict()}, run)

    search("search", {"lr1e-4": 0.70, "lr1e-3": 0.60})
    search("edges", {"lr3e-5": 0.75})
    alone = choices(search_points(tmp_path / "search")).loc[("sgd", "pruned 90 %")]
    both = search_points(tmp_path / "search", tmp_path / "edges", tmp_path / "absent")
    assert alone["lr"] == 1e-4
    assert sorted(both["lr"]) == [3e-5, 1e-4, 1e-3]
    assert choices(both).loc[("sgd", "pruned 90 %"), "lr"] == 3e-5
    assert choices(both).loc[("sgd", "pruned 90 %"), "validation"] == pytest.approx(0.75)
    with pytest.raises(FileNotFoundError, match="no search"):
        search_points(tmp_path / "absent")
