"""BC-GNJ (Louizos et al. 2017): its KL terms, unit removal, the bit precision its posterior allows, and that it
trains and prunes as a method of the grid."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from bayesprune.compress import precision as bits
from bayesprune.compress.prune import global_prune, own_criteria, sparsity
from bayesprune.model import group_nj, sparse_vd
from bayesprune.model.group_nj import GroupNJLinear, GroupNJMLP
from tests.conftest import small_config


def test_the_kl_is_the_scales_log_uniform_fit_plus_the_gaussian_kl_of_weights_and_biases():
    torch.manual_seed(0)
    layer = GroupNJLinear(5, 3)
    with torch.no_grad():
        layer.weight_log_var.uniform_(-4, 0)
        layer.bias_mu.normal_()
    assert group_nj.kl_approx is sparse_vd.kl_approx  # one implementation of the fit
    gaussian = sum(kl_divergence(Normal(mu, (0.5 * lv).exp()), Normal(0.0, 1.0)).sum()
                   for mu, lv in ((layer.weight_mu, layer.weight_log_var), (layer.bias_mu, layer.bias_log_var)))
    expected = sparse_vd.kl_approx(layer.unit_log_alpha).sum() + gaussian
    assert layer.kl().item() == pytest.approx(expected.item(), rel=1e-5)


def test_without_noise_training_and_evaluation_compute_the_posterior_mean_network():
    torch.manual_seed(0)
    layer = GroupNJLinear(6, 4)
    with torch.no_grad():
        layer.z_log_var.fill_(-40.0)
        layer.weight_log_var.fill_(-40.0)
        layer.bias_log_var.fill_(-40.0)
    x = torch.randn(8, 6)
    expected = x @ (layer.weight_mu * layer.z_mu).T + layer.bias_mu
    assert torch.allclose(layer.train()(x), expected, atol=1e-3)  # the sampling floor: sqrt(1e-8) per unit
    assert torch.allclose(layer.eval()(x), expected, atol=1e-6)


def test_a_noisy_unit_is_removed_with_its_outgoing_weights_and_a_dead_hidden_unit_with_its_incoming_ones():
    torch.manual_seed(0)
    model = GroupNJMLP([4, 3, 2])
    with torch.no_grad():
        model.layers[0].z_log_var[1] = 5.0  # input 1: log alpha about 5
        model.layers[1].z_log_var[2] = 5.0  # hidden unit 2
    assert model.remove_units(-3.0) == [3, 2, 2]
    first, second = (layer.deployed_weight() for layer in model.layers)
    assert (first[:, 1] == 0).all() and (first[2, :] == 0).all()  # input 1's weights; hidden 2's incoming weights
    assert (second[:, 2] == 0).all() and int((first != 0).sum()) == 2 * 3
    assert model.layers[0].posterior_variance()[2].abs().sum() == 0
    with pytest.raises(ValueError, match="2 thresholds needed"):
        model.remove_units([-3.0])


def test_the_first_layers_variances_are_clipped_as_the_authors_did():
    model = GroupNJMLP([4, 3, 2])
    with torch.no_grad():
        for layer in model.layers:
            layer.weight_log_var.fill_(0.0)
    model.clip_variances()
    assert model.layers[0].weight_log_var.max().item() == pytest.approx(math.log(group_nj.FIRST_LAYER_VARIANCE_CLIP))
    assert model.layers[1].weight_log_var.max().item() == 0.0


def test_bits_follow_the_posterior_variance():
    assert bits.weight_bits(torch.tensor([2.0 ** -6.5])).item() == 5  # 2^-t > 2 v = 2^-5.5 for t = 1..5
    assert bits.weight_bits(torch.tensor([1.0, 1e-30])).tolist() == [0, 23]  # none; float32's mantissa at most
    assert bits.layer_bits(torch.tensor([2.0 ** -6.5, 2.0 ** -7.5, 0.0])) == 6  # mean 5.5 rounded up; removed ignored
    assert bits.exponent_bits(4.0) == 3 and bits.exponent_bits(0.5) == 1
    assert bits.round_to_bits(torch.tensor([0.3, -0.3]), 2).tolist() == [0.25, -0.25]


def test_compression_counts_the_dense_blocks_left_and_their_bits():
    weights = [torch.ones(4, 6), torch.ones(2, 4)]
    variances = [torch.full((4, 6), 2.0 ** -6.5), torch.full((2, 4), 2.0 ** -6.5)]
    variances[0][:, :3] = 0  # three inputs removed
    variances[0][3, :] = 0  # one hidden unit removed ...
    variances[1][:, 3] = 0  # ... as the next layer's input too
    found = bits.precision_of(weights, variances)
    assert found.mantissa == (5, 5) and found.exponent == 1
    assert found.after_pruning == pytest.approx(32 / (3 * 3 + 2 * 3))
    assert found.after_precision == pytest.approx(32 * 32 / ((9 + 6) * (1 + 1 + 5)))


def test_bcgnj_trains_prunes_by_its_units_and_reports_its_precision(real_data_root):
    from bayesprune.evaluate.scores import UNIT_THRESHOLD_CRITERION, precision_rows, pruning_sweep
    from bayesprune.data.splits import scored_split
    from bayesprune.training.train import train

    cfg = small_config(method="bcgnj", epochs=3, kl_weighting="uniform")
    result = train(cfg, data_root=real_data_root, progress=False)
    assert result.history[-1]["test_acc"] > 0.7
    assert result.history[-1]["units_kept_0"] <= 784 and "units_kept_2" in result.history[-1]
    assert own_criteria("bcgnj") == ("unit_log_alpha",)
    model = result.model
    pruned = global_prune(__import__("copy").deepcopy(model), 0.5, "unit_log_alpha")
    assert pruned >= 0.5 - 1e-3  # and above: the units left without outgoing weights lose their incoming ones
    x, y = scored_split(cfg, real_data_root, "cpu")
    rows = pruning_sweep(model, x, y, [0.0, 0.9])
    assert {r["criterion"] for r in rows} == {"unit_log_alpha", "magnitude", UNIT_THRESHOLD_CRITERION}
    (row,) = precision_rows(model, x, y)
    assert row["compression_precision"] > row["compression_pruned"] >= 1.0
    assert abs(row["accuracy_reduced"] - row["accuracy_full"]) < 0.05
    assert sparsity(model) == 0.0  # the sweep pruned copies


def test_the_prune_step_writes_bcgnj_precision_table(real_data_root, tmp_path):
    import pandas as pd

    from bayesprune.pipeline.runs import prune_run, train_run

    cfg = small_config(method="bcgnj", epochs=1, kl_weighting="uniform")
    train_run(cfg, tmp_path, real_data_root, progress=False)
    prune_run(tmp_path, [0.0, 0.9], data_root=real_data_root)
    precision = pd.read_csv(tmp_path / "precision.csv")
    assert list(precision["threshold"]) == [group_nj.UNIT_THRESHOLD]
    assert {"bits_layer1", "bits_layer3", "compression_precision", "accuracy_reduced"} <= set(precision)
    assert precision.loc[0, "method"] == "bcgnj"  # the run's keys ride along
