"""Calibration and out-of-distribution detection: the metrics measure what they say, BBB's Monte Carlo average
never draws a pruned weight, and MC dropout is off for the deterministic numbers."""

from __future__ import annotations

import pytest
import torch

from bayesprune.compress.footprint import units_left
from bayesprune.compress.prune import global_prune
from bayesprune.data.splits import noise_images
from bayesprune.evaluate.uncertainty import (
    auroc, calibration, fpr_at_tpr, ood_score, probabilities,
)
from bayesprune.evaluate.scores import scored_sweep
from bayesprune.model.bayes import BayesianMLP
from bayesprune.model.models import MLP


def _predictions(confidence: torch.Tensor, accuracy: torch.Tensor, generator: torch.Generator):
    """Two-class probabilities with the given top confidence, right with probability `accuracy`."""
    correct = torch.rand(len(confidence), generator=generator) < accuracy
    y = torch.randint(0, 2, (len(confidence),), generator=generator)
    predicted = torch.where(correct, y, 1 - y)
    probs = torch.empty(len(y), 2)
    probs[torch.arange(len(y)), predicted] = confidence
    probs[torch.arange(len(y)), 1 - predicted] = 1 - confidence
    return probs, y


def test_ece_is_near_zero_when_confidence_equals_accuracy_and_large_when_over_confident():
    generator = torch.Generator().manual_seed(0)
    confidence = 0.5 + 0.5 * torch.rand(50_000, generator=generator)
    calibrated = calibration(*_predictions(confidence, confidence, generator))
    assert calibrated["ece"] < 0.01
    over = calibration(*_predictions(torch.full((50_000,), 0.99), torch.tensor(0.7), generator))
    assert over["ece"] == pytest.approx(0.29, abs=0.01)
    assert over["ece_max_gap"] == pytest.approx(0.29, abs=0.01)
    assert over["nll"] > calibrated["nll"]


def test_nll_and_brier_of_a_sure_right_and_a_sure_wrong_prediction():
    probs = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    right = calibration(probs, torch.tensor([0, 1]))
    assert right["nll"] == pytest.approx(0.0) and right["brier"] == pytest.approx(0.0) and right["accuracy"] == 1.0
    wrong = calibration(probs, torch.tensor([1, 0]))
    assert wrong["brier"] == pytest.approx(2.0) and wrong["accuracy"] == 0.0


def test_auroc_of_separable_scores_is_one_and_of_identical_distributions_one_half():
    generator = torch.Generator().manual_seed(1)
    inside = torch.rand(2000, generator=generator)
    assert auroc(inside, inside + 1.0) == 1.0
    assert auroc(inside + 1.0, inside) == 0.0
    assert fpr_at_tpr(inside, inside + 1.0) == 0.0
    same = auroc(torch.randn(5000, generator=generator), torch.randn(5000, generator=generator))
    assert same == pytest.approx(0.5, abs=0.02)  # sampling sd about 0.006
    assert auroc(torch.zeros(100), torch.zeros(50)) == 0.5  # ties count half
    assert fpr_at_tpr(inside, inside) == pytest.approx(0.95, abs=0.01)


def test_ood_scores_are_highest_for_a_uniform_prediction():
    probs = torch.tensor([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    for score in ("entropy", "maxprob"):
        values = ood_score(probs, score)
        assert values[1] > values[0] and values[0] == pytest.approx(0.0)


def test_bbb_monte_carlo_average_never_draws_a_pruned_weight(monkeypatch):
    torch.manual_seed(0)
    model = BayesianMLP([784, 20, 10], init_rho=(-1.0, -1.0))  # wide noise: an unmasked draw would show
    global_prune(model, 0.9, "snr")
    masks = [layer.weight_mu_mask for layer in model.layers]
    drawn = []
    for layer in model.layers:
        sample = layer.sample_weights

        def recording(sigmas=None, sample=sample):
            weight, bias = sample(sigmas)
            drawn.append(weight.detach().clone())
            return weight, bias

        monkeypatch.setattr(layer, "sample_weights", recording)
    probabilities(model, torch.rand(8, 784), "mc", samples=4)
    assert len(drawn) == 4 * len(masks)
    for index, weight in enumerate(drawn):
        mask = masks[index % len(masks)]
        assert torch.all(weight[mask == 0] == 0)
        assert torch.all(weight[mask == 1] != 0)
    assert not torch.equal(drawn[0], drawn[len(masks)])  # the kept weights are sampled


def test_mc_dropout_is_off_for_the_deterministic_prediction_and_on_for_mc():
    torch.manual_seed(0)
    model = MLP([784, 50, 10], dropout=0.5)
    x = torch.rand(16, 784)
    deterministic = probabilities(model, x, "deterministic", samples=5)
    assert torch.equal(deterministic, probabilities(model, x, "deterministic", samples=5))
    model.eval()
    assert torch.allclose(deterministic, torch.softmax(model(x), dim=1))
    torch.manual_seed(1)
    first = probabilities(model, x, "mc", samples=5)
    second = probabilities(model, x, "mc", samples=5)
    assert not torch.equal(first, second) and not torch.allclose(first, deterministic)
    assert not any(m.training for m in model.modules())  # left in evaluation mode
    with pytest.raises(ValueError, match="valid choices: deterministic$"):
        probabilities(MLP([784, 10]), x, "mc", samples=5)


def test_the_sweep_scores_each_fraction_and_prediction_against_each_shift():
    torch.manual_seed(0)
    model = MLP([784, 30, 10], dropout=0.5)
    x, y = torch.rand(200, 784), torch.randint(0, 10, (200,))
    sweep = scored_sweep(model, (x, y), [0.0, 0.9], samples=3, shifted={"noise": noise_images(100, 255.0)})
    rows, bins = sweep.uncertainty, sweep.bins
    assert [(r["fraction"], r["prediction"]) for r in rows] == [
        (0.0, "deterministic"), (0.0, "mc"), (0.9, "deterministic"), (0.9, "mc")]
    assert {"auroc_entropy_noise", "fpr95_maxprob_noise", "ece", "brier"} <= set(rows[0])
    assert rows[2]["achieved_sparsity"] == pytest.approx(0.9, abs=1e-3)
    first = [b for b in bins if b["fraction"] == 0.0 and b["prediction"] == "deterministic"]
    assert sum(b["share"] for b in first) == pytest.approx(1.0)
    gaps = sum(b["share"] * abs(b["bin_accuracy"] - b["confidence"]) for b in first)
    assert gaps == pytest.approx(rows[0]["ece"])  # the diagram's bins are the ECE's


def test_noise_images_are_seeded_and_scaled_as_the_data():
    first, second = noise_images(10, 255.0), noise_images(10, 255.0)
    assert torch.equal(first, second) and 0.0 <= first.min() and first.max() <= 1.0
    assert noise_images(10, 126.0).max() > 1.0


def test_units_left_counts_units_cut_off_by_pruning():
    first, second = torch.ones(4, 5), torch.ones(3, 4)
    assert units_left([first, second]) == [5, 4, 3]
    first[1] = 0  # hidden unit 1 has no incoming weight
    second[:, 2] = 0  # hidden unit 2 has no outgoing weight
    first[:, 0] = 0  # input 0 feeds nothing
    assert units_left([first, second]) == [4, 2, 3]


def test_active_units_count_hidden_units_with_an_outgoing_weight_above_0_db():
    from bayesprune.evaluate.diagnostics import active_units

    torch.manual_seed(0)
    model = BayesianMLP([784, 6, 4, 10], init_mu=0.0, init_rho=(0.0, 0.0))  # every SNR 0: no unit active
    assert active_units(model) == [0, 0]
    with torch.no_grad():
        model.layers[1].weight_mu[2, 3] = 5.0  # hidden unit 3 of the first layer feeds one unit loudly
        model.layers[2].weight_mu[:, 1] = 5.0
    assert active_units(model) == [1, 1]


def test_the_footprint_gives_each_layer_s_share_removed():
    from bayesprune.compress.footprint import compression_metrics

    first, second = torch.ones(4, 5), torch.ones(3, 4)
    first[:2] = 0
    metrics = compression_metrics([first, second], [torch.ones(4), torch.ones(3)])
    assert metrics["removed_layer1"] == 0.5 and metrics["removed_layer2"] == 0.0
    assert metrics["architecture"] == "5-2-3"
