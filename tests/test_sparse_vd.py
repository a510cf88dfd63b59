"""Sparse variational dropout: the KL fit against Monte Carlo, and sparsity where the irrelevant inputs are known."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bayesprune.evaluate.scores import THRESHOLD_CRITERION, pruning_sweep
from bayesprune.compress.prune import sparsity
from bayesprune.model.sparse_vd import LOG_ALPHA_THRESHOLD, SparseVDLinear, SparseVDMLP, kl_approx, kl_monte_carlo
from bayesprune.training.train import train

from .conftest import small_config


def test_the_kl_fit_matches_a_monte_carlo_estimate_over_its_range():
    log_alpha = torch.linspace(-6.0, 8.0, 29)
    estimate = kl_monte_carlo(log_alpha, samples=400_000, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(kl_approx(log_alpha).double(), estimate, atol=0.012)  # the fit's error is below 0.01


def test_the_kl_vanishes_for_large_alpha_and_grows_as_alpha_shrinks():
    kl = kl_approx(torch.tensor([-8.0, -4.0, 0.0, 4.0, 10.0]))
    assert kl[-1] == pytest.approx(0.0, abs=1e-3) and bool((kl[:-1] > kl[1:]).all())


def test_weights_from_inputs_that_carry_no_signal_are_removed_and_the_others_kept():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 20, generator=generator)
    y = (x[:, :4] @ torch.tensor([2.0, -2.0, 1.5, -1.5]) > 0).long()  # only the first 4 inputs decide the class
    torch.manual_seed(0)
    layer = SparseVDLinear(20, 2)
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.05)
    for _ in range(1500):
        optimizer.zero_grad()
        loss = F.cross_entropy(layer(x), y) + layer.kl() / len(x)
        loss.backward()
        optimizer.step()
    removed = layer.log_alpha > LOG_ALPHA_THRESHOLD
    assert removed[:, 4:].float().mean() > 0.9  # the 16 noise inputs
    assert not removed[:, :4].any()  # the 4 that decide the class
    layer.eval()
    assert (layer(x).argmax(1) == y).float().mean() > 0.95  # the sparse mean network still classifies


def test_training_samples_and_evaluation_is_the_masked_mean_network():
    torch.manual_seed(0)
    model = SparseVDMLP([6, 5, 3])
    x = torch.randn(4, 6)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    with torch.no_grad():
        model.layers[0].log_sigma2[0, 0] = 20.0  # log alpha far above the threshold: that weight is off
    kept = model.layers[0].kept()
    assert not kept[0, 0] and kept.sum() == kept.numel() - 1
    assert torch.equal(model(x), model(x))
    assert sparsity(model) == pytest.approx(1 / (6 * 5 + 5 * 3))


def test_the_complexity_cost_can_wait_before_it_warms_up_as_molchanov_et_al_scheduled_it():
    from bayesprune.config import RunConfig

    delayed = RunConfig(method="sparsevd", kl_delay=5, kl_warmup=15, epochs=200)
    assert [delayed.kl_ramp(e) for e in (0, 4, 5, 12, 19, 20, 199)] == [0.0, 0.0, 1 / 15, 8 / 15, 1.0, 1.0, 1.0]
    assert RunConfig(kl_delay=3).kl_ramp(3) == 1.0  # no warm-up: full weight once the delay is over
    with pytest.raises(ValueError, match="kl_delay must be an integer >= 0"):
        RunConfig(kl_delay=-1)


def test_sparse_vd_trains_as_a_method_of_the_grid_and_sparsifies_as_its_kl_warms_up(real_data_root):
    cfg = small_config(method="sparsevd", kl_weighting="uniform", kl_warmup=4, epochs=4, train_subset=5000)
    assert [cfg.kl_ramp(epoch) for epoch in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    result = train(cfg, data_root=real_data_root, progress=False)
    history = result.history
    assert isinstance(result.model, SparseVDMLP)
    assert history[-1]["test_acc"] > max(0.6, history[0]["test_acc"])  # the thresholded mean network learns
    sparsity = [record["sparsity"] for record in history]
    assert sparsity == sorted(sparsity) and sparsity[-1] > 0.9  # ever more weights cross log alpha = 3


def test_the_pruning_sweep_reports_sparse_vd_as_trained_and_ranked_by_log_alpha():
    torch.manual_seed(0)
    model = SparseVDMLP([12, 8, 3])
    with torch.no_grad():
        model.layers[0].log_sigma2[:, :6] = 10.0  # half the first layer's weights far above the threshold
    x, y = torch.randn(50, 12), torch.randint(0, 3, (50,))
    rows = pruning_sweep(model, x, y, [0.0, 0.5])
    assert [(r["criterion"], round(r["fraction"], 4)) for r in rows] == [
        (THRESHOLD_CRITERION, round(48 / 120, 4)), ("log_alpha", 0.0), ("log_alpha", 0.5),
        ("magnitude", 0.0), ("magnitude", 0.5)]
    threshold, dense = rows[0], rows[1]
    assert threshold["nonzero"] == 48 + 24 and dense["nonzero"] == 120  # the biases start at zero
    assert threshold["parameters"] == 120 + 11 and threshold["compression"] == pytest.approx(131 / 72)


def test_the_fast_softplus_equals_torch_s_and_has_its_gradient():
    from bayesprune.model.softplus import softplus

    x = torch.cat([torch.linspace(-60, 60, 20001), torch.tensor([0.0])]).requires_grad_()
    fast = softplus(x)
    assert (fast.detach().double() - torch.nn.functional.softplus(x.detach().double())).abs().max() < 1e-6
    fast.sum().backward()
    assert torch.allclose(x.grad, torch.sigmoid(x.detach()), rtol=0, atol=0)
