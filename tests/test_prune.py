"""Pruning reaches the forward pass, hits the requested fraction and ranks by the right score."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from bayesprune.model import bayes
from bayesprune.model.bayes import BayesianMLP
from bayesprune.model.models import MLP
from bayesprune.compress.prune import global_prune, magnitude_prune, prunable, snr_prune, sparsity
from bayesprune.model.sparse_vd import SparseVDMLP


def _bbb() -> BayesianMLP:
    torch.manual_seed(0)
    model = BayesianMLP([20, 30, 30, 5])
    with torch.no_grad():
        for layer in model.layers:
            layer.weight_rho.uniform_(-6.0, 0.0)
    return model


def _mlp() -> MLP:
    torch.manual_seed(0)
    return MLP([20, 30, 30, 5])


def _recorded_weights(model, monkeypatch, **kwargs) -> list[torch.Tensor]:
    """The weight matrices F.linear actually receives during one forward pass."""
    seen: list[torch.Tensor] = []
    real_linear = F.linear

    def recording_linear(x, weight, bias=None):
        seen.append(weight.detach().clone())
        return real_linear(x, weight, bias)

    monkeypatch.setattr(bayes.F, "linear", recording_linear)
    model(torch.randn(3, 20), **kwargs)
    monkeypatch.undo()
    return seen


@pytest.mark.parametrize("criterion", ["snr", "magnitude"])
@pytest.mark.parametrize("sample", [True, False])
def test_pruned_bbb_weights_are_zero_in_every_forward_pass(monkeypatch, criterion, sample):
    model = _bbb()
    global_prune(model, 0.9, criterion)
    masks = [layer.weight_mu_mask for layer in model.layers]
    for _ in range(3):
        used = _recorded_weights(model, monkeypatch, sample=sample)
        for weight, mask in zip(used, masks):
            assert torch.all(weight[mask == 0] == 0)
            if sample:
                assert torch.all(weight[mask == 1] != 0)


def test_pruning_changes_the_logits_but_keeps_rho():
    x = torch.randn(16, 20)
    for model, prune_fn in ((_bbb(), snr_prune), (_mlp(), magnitude_prune)):
        kwargs = {"sample": False} if isinstance(model, BayesianMLP) else {}
        before = model(x, **kwargs)
        rhos = [p.clone() for n, p in model.named_parameters() if "rho" in n]
        prune_fn(model, 0.75)
        assert not torch.allclose(before, model(x, **kwargs))
        assert all(torch.equal(a, b) for a, b in zip(rhos, [p for n, p in model.named_parameters() if "rho" in n]))


@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.75, 0.9, 0.95, 0.98, 0.99])
@pytest.mark.parametrize("include_bias", [False, True])
def test_achieved_sparsity_equals_the_request(fraction, include_bias):
    for model, criterion in ((_mlp(), "magnitude"), (_bbb(), "snr"), (_bbb(), "magnitude")):
        total = sum(getattr(m, n).numel() for m, n in prunable(model, include_bias))
        achieved = global_prune(model, fraction, criterion, include_bias)
        assert achieved == round(fraction * total) / total
        assert sparsity(model, include_bias) == achieved


def test_ties_are_broken_deterministically():
    model = _mlp()
    with torch.no_grad():
        for layer in (m for m, _ in prunable(model)):
            layer.weight.fill_(0.5)
    a, b = copy.deepcopy(model), copy.deepcopy(model)
    assert magnitude_prune(a, 0.5) == magnitude_prune(b, 0.5) == 0.5
    for (ma, _), (mb, _) in zip(prunable(a), prunable(b)):
        assert torch.equal(ma.weight_mask, mb.weight_mask)


def test_snr_keeps_the_highest_signal_to_noise_weights():
    model = _bbb()
    scores = torch.cat([(layer.weight_mu.abs() / F.softplus(layer.weight_rho)).flatten() for layer in model.layers]).detach()
    snr_prune(model, 0.6)
    kept = torch.cat([layer.weight_mu_mask.flatten() for layer in model.layers]).bool()
    assert scores[kept].min() >= scores[~kept].max()
    magnitudes = torch.cat([layer.weight_mu_orig.abs().flatten() for layer in model.layers]).detach()
    assert not torch.equal(kept, magnitudes >= magnitudes.kthvalue(int(0.6 * len(magnitudes)) + 1).values)


def test_magnitude_keeps_the_largest_weights_globally():
    model = _mlp()
    magnitudes = torch.cat([m.weight.detach().abs().flatten() for m, _ in prunable(model)])
    magnitude_prune(model, 0.8)
    kept = torch.cat([m.weight_mask.flatten() for m, _ in prunable(model)]).bool()
    assert magnitudes[kept].min() >= magnitudes[~kept].max()


def test_biases_are_pruned_only_when_asked():
    model = _mlp()
    magnitude_prune(model, 0.9)
    assert not any(hasattr(m, "bias_mask") for m, _ in prunable(model))
    model = _mlp()
    magnitude_prune(model, 0.9, include_bias=True)
    assert all(hasattr(m, "bias_mask") for m, _ in prunable(model))


@pytest.mark.parametrize("fraction", [1.0, -0.1, 1.5])
def test_fraction_outside_unit_interval_is_rejected(fraction):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        magnitude_prune(_mlp(), fraction)


def test_snr_does_not_apply_to_deterministic_models():
    with pytest.raises(ValueError, match="valid choices: magnitude"):
        global_prune(_mlp(), 0.5, "snr")


@pytest.mark.parametrize("criterion", ["magnitude", "snr"])
def test_iterative_pruning_reaches_each_absolute_fraction_and_keeps_what_it_removed(criterion):
    model = _bbb() if criterion == "snr" else _mlp()
    earlier = None
    for fraction in (0.5, 0.8, 0.95):
        achieved = global_prune(model, fraction, criterion)
        assert achieved == pytest.approx(fraction, abs=2e-3)
        zeros = torch.cat([(getattr(m, n) == 0).flatten() for m, n in prunable(model)])
        if earlier is not None:
            assert bool(zeros[earlier].all())  # nothing removed comes back
        earlier = zeros
    with pytest.raises(ValueError, match="earlier pruning already removed"):
        global_prune(model, 0.9, criterion)


def test_log_alpha_pruning_removes_the_noisiest_weights_and_reaches_the_forward_pass():
    torch.manual_seed(0)
    model = SparseVDMLP([20, 30, 5])
    with torch.no_grad():
        for layer in model.layers:
            layer.log_sigma2.uniform_(-12.0, 0.0)
    alphas = torch.cat([layer.log_alpha.flatten() for layer in model.layers])
    achieved = global_prune(model, 0.6, "log_alpha")
    assert achieved == pytest.approx(0.6, abs=2e-3)
    kept = torch.cat([layer.theta_mask.flatten() for layer in model.layers]).bool()
    assert alphas[~kept].min() >= alphas[kept].max()  # every removed weight is noisier than every kept one
    model.eval()
    assert torch.equal(model.layers[0].deployed_weight(), model.layers[0].theta)  # the mask decides, not log alpha > 3
    assert sparsity(model) == pytest.approx(achieved)
    with pytest.raises(ValueError, match="ranks weights only"):
        global_prune(SparseVDMLP([4, 3]), 0.5, "log_alpha", include_bias=True)


def test_unit_criteria_remove_whole_input_units_first_the_weakest_first():
    from bayesprune.compress.prune import structured_criteria
    from bayesprune.model.bayes import BayesianMLP
    from bayesprune.model.models import MLP

    torch.manual_seed(0)
    mlp = MLP([6, 4, 2])
    with torch.no_grad():
        first = mlp.net[0].weight
        first[:, 2] *= 0.01  # input 2: the weakest unit, though not every one of its weights is the smallest
        first[0, 5] = 1e-4  # a single tiny weight of a strong unit
    assert structured_criteria(mlp) == ("unit_norm",)
    global_prune(mlp, 4 / (6 * 4 + 4 * 2), "unit_norm")  # as many weights as input 2 has
    assert (mlp.net[0].weight[:, 2] == 0).all() and mlp.net[0].weight[0, 5] != 0
    bbb = BayesianMLP([6, 4, 2])
    with torch.no_grad():
        bbb.layers[0].weight_rho[:, 3] = 3.0  # input 3: wide posteriors, the lowest group SNR
    assert structured_criteria(bbb) == ("unit_snr",)
    global_prune(bbb, 4 / (6 * 4 + 4 * 2), "unit_snr")
    assert (bbb.layers[0].weight_mu[:, 3] == 0).all() and int((bbb.layers[0].weight_mu == 0).sum()) == 4


def test_a_unit_criterion_removes_a_unit_left_without_outgoing_weights_with_its_incoming_ones_down_the_layers():
    torch.manual_seed(0)
    mlp = MLP([6, 5, 4, 2])
    (first, _), (middle, _), (last, _) = [(m, m.weight) for m, _ in prunable(mlp)]
    with torch.no_grad():
        last.weight[:, 3] *= 1e-3  # hidden unit 3 of layer 2: the weakest, removed by its outgoing weights
        middle.weight[:3, 0] = 0  # hidden unit 0 of layer 1 feeds only unit 3 of layer 2
    x = torch.randn(16, 6)
    expected = copy.deepcopy(mlp)
    with torch.no_grad():
        [m for m, _ in prunable(expected)][-1].weight[:, 3] = 0  # the unit removed by its outgoing weights alone
    achieved = global_prune(mlp, 2 / 58, "unit_norm")
    assert (last.weight[:, 3] == 0).all() and (middle.weight[3] == 0).all()  # its incoming weights went with it
    assert (middle.weight[:, 0] == 0).all() and (first.weight[0] == 0).all()  # and so did unit 0 below it
    assert achieved == pytest.approx((2 + 3 + 5 + 6) / 58)
    assert torch.equal(mlp.eval()(x), expected.eval()(x))  # the network computes what it computed


def test_the_prune_step_scores_the_own_criterion_on_validation_images_too(real_data_root, tmp_path):
    import pandas as pd

    from bayesprune.data.splits import training_splits
    from bayesprune.evaluate.scores import pruning_sweep
    from bayesprune.pipeline.runs import load_trained, prune_run, train_run
    from tests.conftest import small_config

    cfg = small_config(method="bbb", epochs=1, validation=500)
    train_run(cfg, tmp_path, real_data_root, progress=False)
    prune_run(tmp_path, [0.0, 0.9], data_root=real_data_root)
    table = pd.read_csv(tmp_path / "pruning.csv").set_index(["criterion", "fraction"])
    assert table.loc[("magnitude", 0.9), "val_accuracy_mean"] != table.loc[("magnitude", 0.9), "val_accuracy_mean"]  # NaN
    _, model = load_trained(tmp_path)
    _, (x_val, y_val) = training_splits(cfg, real_data_root, "cpu")
    expected = {row["fraction"]: row["accuracy_mean"] for row in pruning_sweep(model, x_val, y_val, [0.0, 0.9], primary_only=True)}
    assert len(y_val) == 500 and table.loc[("snr", 0.9), "val_accuracy_mean"] == pytest.approx(expected[0.9])
    assert table.loc[("snr", 0.0), "val_accuracy_mean"] == pytest.approx(expected[0.0])
    assert table.loc[("snr", 0.9), "val_accuracy_mean"] != table.loc[("snr", 0.9), "accuracy_mean"]  # not the test score


def test_without_a_validation_split_the_sweep_has_no_validation_scores(real_data_root, tmp_path):
    import pandas as pd

    from bayesprune.pipeline.runs import prune_run, train_run
    from tests.conftest import small_config

    train_run(small_config(epochs=1, validation=0), tmp_path, real_data_root, progress=False)
    prune_run(tmp_path, [0.5], data_root=real_data_root)
    assert "val_accuracy_mean" not in pd.read_csv(tmp_path / "pruning.csv")
