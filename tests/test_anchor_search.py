"""The frontier's points chosen at its anchors: on validation accuracy after one-shot fine-tuning at the first
fraction that reaches each ratio, never on test accuracy, and a choice at an end of the grid said so."""

import pandas as pd
import pytest

from bayesprune.report.anchor_search import anchor_choices, chosen_points


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


def test_the_better_fine_tuning_rate_stands_for_each_point():
    rows = pd.DataFrame(_rows("sgd", 0.0, {0.93: 0.90, 0.99: 0.80}, lr=1e-3)
                        + _rows("sgd", 0.0, {0.93: 0.95, 0.99: 0.70}, lr=1e-3, rate=0.1)
                        + _rows("sgd", 0.0, {0.93: 0.94, 0.99: 0.79}, lr=3e-4))
    choices = anchor_choices(rows).set_index(["anchor", "lr"])
    assert choices.loc[(12.0, 1e-3), ["finetune_rate", "validation accuracy"]].tolist() == [0.1, 0.95]
    assert choices.loc[(68.0, 1e-3), "validation accuracy"] == pytest.approx(0.80)
    points = chosen_points(choices.reset_index()).set_index("anchor")
    assert points["lr"].to_dict() == {12.0: 1e-3, 68.0: 1e-3}
    assert points.loc[12.0, "at an end"]  # the fastest rate tried


def test_a_point_that_never_reaches_an_anchor_is_not_compared_there():
    rows = pd.DataFrame(_rows("bbb", 3.0, {0.93: 0.97}) + _rows("bbb", 4.0, {0.93: 0.96, 0.99: 0.5}))
    choices = anchor_choices(rows)
    assert choices[choices["anchor"] == 68.0]["prior_log_sigma1"].tolist() == [4.0]
