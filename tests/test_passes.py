"""The scoring passes compute what each network's own forward computes: the same logits, the same Monte Carlo
draws, whatever the pruning left; and a sweep scores each pruned network once and its rows read the same."""

from __future__ import annotations

import copy

import pytest
import torch

from bayesprune.compress.prune import global_prune
from bayesprune.data.splits import noise_images
from bayesprune.evaluate.passes import (CSR_DENSITY, ensemble_probabilities, linear, mc_dropout_probabilities, mean_logits,
                                        network)
from bayesprune.evaluate.scores import accuracy, scored_sweep
from bayesprune.evaluate.uncertainty import calibration
from bayesprune.model.bayes import BayesianMLP
from bayesprune.model.models import MLP


def _own_mc(model: torch.nn.Module, x: torch.Tensor, samples: int) -> torch.Tensor:
    """The Monte Carlo predictive through the model's own forward: the reference the passes must match."""
    model.eval()
    if isinstance(model, BayesianMLP):
        return torch.stack([torch.softmax(model(x, sample=True), dim=1) for _ in range(samples)]).mean(0)
    for layer in model.modules():
        if isinstance(layer, torch.nn.Dropout):
            layer.train()
    try:
        return torch.stack([torch.softmax(model(x), dim=1) for _ in range(samples)]).mean(0)
    finally:
        model.eval()


@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.9, 0.995])
@pytest.mark.parametrize("criterion", ["magnitude", "unit_norm"])
def test_deterministic_and_mc_dropout_passes_match_the_model_s_own_forward(fraction, criterion):
    torch.manual_seed(0)
    model = MLP([784, 64, 32, 10], dropout=0.5)
    x = torch.rand(300, 784)
    x[:, :100] = 0  # pixels that carry nothing, as MNIST's border
    global_prune(model, fraction, criterion)
    model.eval()
    assert torch.allclose(mean_logits(model, x), model(x), atol=1e-5)
    torch.manual_seed(3)
    fast = mc_dropout_probabilities(model, x, 4)
    torch.manual_seed(3)
    assert torch.allclose(fast, _own_mc(model, x, 4), atol=1e-6)  # the same masks, drawn in the same order


def test_mc_dropout_masks_the_units_the_network_s_own_forward_masks_when_a_layer_multiplies_in_csr():
    torch.manual_seed(0)
    model = MLP([784, 200, 60, 10], dropout=0.5)
    with torch.no_grad():  # 2 % of the first layer's weights left, strong enough that the network stays informative
        weight = model.net[0].weight
        weight.mul_((torch.rand_like(weight) < CSR_DENSITY * 2 / 3).float() * 10)
        model.net[3].weight.mul_(3)
    x = torch.rand(90, 784)
    assert not linear(x, model.net[0].weight, model.net[0].bias).is_contiguous()  # CSR leaves it column by column
    torch.manual_seed(3)
    fast = mc_dropout_probabilities(model, x, 4)
    torch.manual_seed(3)
    own = _own_mc(model, x, 4)
    assert own.std(dim=0).max() > 0.01  # the network tells images apart: which units a mask drops matters
    assert torch.allclose(fast, own, atol=1e-6)


@pytest.mark.parametrize("fraction", [0.0, 0.9, 0.995])
def test_bbb_passes_draw_the_same_networks_as_the_model_s_own_sampled_forward(fraction):
    torch.manual_seed(0)
    model = BayesianMLP([784, 40, 30, 10], init_rho=(-3.0, -2.0))
    x = torch.rand(200, 784)
    global_prune(model, fraction, "snr")
    assert torch.allclose(mean_logits(model, x), model(x, sample=False), atol=1e-5)
    torch.manual_seed(5)
    fast = ensemble_probabilities(model, x, 6)
    torch.manual_seed(5)
    assert torch.allclose(fast, _own_mc(model, x, 6), atol=1e-6)


def test_a_layer_sparse_enough_multiplies_in_csr_and_gives_the_dense_product():
    torch.manual_seed(0)
    weights = [torch.randn(50, 784) * (torch.rand(50, 784) < CSR_DENSITY / 2), torch.randn(10, 50)]
    biases = [torch.randn(50), torch.randn(10)]
    weights[1][:, :7] = 0  # hidden units nobody reads: not computed
    x = torch.rand(64, 784)
    dense = torch.relu(x @ weights[0].T + biases[0]) @ weights[1].T + biases[1]
    assert torch.allclose(network(x, weights, biases), dense, atol=1e-5)


def test_a_sweep_scores_each_pruned_network_once_and_reads_as_the_network_s_own_scores(monkeypatch):
    import bayesprune.evaluate.scores as scores

    calls = []
    draw = scores.mc_probabilities
    monkeypatch.setattr(scores, "mc_probabilities", lambda *args: calls.append(len(args[1])) or draw(*args))
    torch.manual_seed(0)
    model = BayesianMLP([784, 30, 10], init_rho=(-3.0, -2.0))
    x, y = torch.rand(120, 784), torch.randint(0, 10, (120,))
    val = (torch.rand(50, 784), torch.randint(0, 10, (50,)))
    noise = {"noise": noise_images(80, 255.0)}
    sweep = scored_sweep(model, (x, y), [0.0, 0.9], samples=3, seed=7, validation=val, shifted=noise)
    for row in sweep.rows:
        pruned = copy.deepcopy(model)
        global_prune(pruned, row["fraction"], row["criterion"])
        assert row["accuracy_mean"] == accuracy(pruned(x, sample=False), y)
        torch.manual_seed(7)
        assert row["accuracy_ensemble"] == accuracy(_own_mc(pruned, x, 3), y)
        own = row["criterion"] == "snr"
        assert (row["val_accuracy_mean"] == accuracy(pruned(val[0], sample=False), val[1])) if own else \
            row["val_accuracy_mean"] != row["val_accuracy_mean"]  # NaN for a criterion that is not the model's own
    mc = [r for r in sweep.uncertainty if r["prediction"] == "mc" and r["fraction"] == 0.9 and r["criterion"] == "snr"][0]
    pruned = copy.deepcopy(model)
    global_prune(pruned, 0.9, "snr")
    torch.manual_seed(7)
    assert mc["nll"] == pytest.approx(calibration(_own_mc(pruned, x, 3), y)["nll"], rel=1e-5)
    # Monte Carlo passes: the unpruned network once for its three criteria (test and noise images), SNR at 90 %
    # (test and noise), magnitude and unit SNR at 90 % (test only: uncertainty is scored by the own criterion)
    assert sorted(calls) == sorted([120, 80] * 2 + [120] * 2)
    assert {r["criterion"] for r in sweep.uncertainty} == {"snr"}


def test_the_scored_sweep_times_its_parts():
    model = MLP([784, 20, 10], dropout=0.5)
    x, y = torch.rand(50, 784), torch.randint(0, 10, (50,))
    sweep = scored_sweep(model, (x, y), [0.0, 0.5], samples=2, shifted={"noise": noise_images(30, 255.0)})
    assert {"masks", "deterministic passes", "Monte Carlo passes", "metrics"} <= set(sweep.parts.seconds)


def test_a_sweep_draws_mc_dropout_s_masks_once_and_every_pruned_network_scores_as_if_it_drew_its_own(monkeypatch):
    import bayesprune.evaluate.scores as scores

    torch.manual_seed(0)
    model = MLP([784, 200, 60, 10], dropout=0.5)
    with torch.no_grad():  # the hidden layers keep weights at 98 %, the first sparse enough for CSR
        model.net[0].weight.mul_(6)
        model.net[3].weight.mul_(3)
    x, y = torch.rand(90, 784), torch.randint(0, 10, (90,))
    shifted = {"noise": noise_images(70, 255.0), "other": torch.rand(90, 784)}
    fractions = [0.0, 0.9, 0.98]
    sparse = copy.deepcopy(model)
    global_prune(sparse, 0.98, "magnitude")
    assert not linear(x, sparse.net[0].weight, sparse.net[0].bias).is_contiguous()  # CSR leaves it column by column
    draws = []
    noise = scores.dropout_noise
    monkeypatch.setattr(scores, "dropout_noise", lambda *args: draws.append(len(args[1])) or noise(*args))
    shared = scored_sweep(model, (x, y), fractions, samples=3, seed=4, shifted=shifted)
    assert draws == [90, 70, 90]  # each image set's masks once, for every pruned network
    monkeypatch.setattr(scores, "SHARED_NOISE_BYTES", 0)
    own = scored_sweep(model, (x, y), fractions, samples=3, seed=4, shifted=shifted)
    assert draws == [90, 70, 90]
    assert shared.uncertainty == own.uncertainty and shared.bins == own.bins  # exactly the same scores
    for row in [r for r in shared.uncertainty if r["prediction"] == "mc"]:
        pruned = copy.deepcopy(model)
        global_prune(pruned, row["fraction"], "magnitude")
        torch.manual_seed(4)
        assert row["nll"] == pytest.approx(calibration(_own_mc(pruned, x, 3), y)["nll"], rel=1e-5)


def test_mc_dropout_and_the_deterministic_pass_share_the_first_layer_and_score_as_if_each_computed_its_own(monkeypatch):
    import bayesprune.evaluate.scores as scores

    torch.manual_seed(0)
    model = MLP([784, 120, 60, 10], dropout=0.5)
    x, y = torch.rand(80, 784), torch.randint(0, 10, (80,))
    shifted = {"noise": noise_images(50, 255.0)}
    fractions = [0.0, 0.9, 0.99]
    computed = []
    first = scores.first_activation
    monkeypatch.setattr(scores, "first_activation", lambda *args: computed.append(len(args[1])) or first(*args))
    shared = scored_sweep(model, (x, y), fractions, samples=3, seed=2, shifted=shifted)
    assert sorted(computed) == sorted([80, 50] * len(fractions))  # once per network and Monte Carlo set
    monkeypatch.setattr(scores, "shares_first_layer", lambda network: False)
    own = scored_sweep(model, (x, y), fractions, samples=3, seed=2, shifted=shifted)
    assert len(computed) == 2 * len(fractions)
    assert shared.rows == own.rows and shared.uncertainty == own.uncertainty and shared.bins == own.bins
