"""Baselines under a prior (MAP): the penalty is the prior's negative log density, BBB's prior is the same object,
an L1 network removes what the data never reach, and the kept epoch follows the chosen validation score."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import distributions as D

from bayesprune.config import RunConfig, split_method
from bayesprune.data.splits import training_splits
from bayesprune.model.bayes import GaussianPrior, LaplacePrior, ScaleMixturePrior
from bayesprune.evaluate.diagnostics import dead_inputs
from bayesprune.evaluate.scores import pruned_accuracy
from bayesprune.model.models import MLP, build_prior, training_prior
from bayesprune.model.penalty import negative_log_prior
from bayesprune.training.train import best_epoch, train, training_done

from .conftest import small_config


def _reference(prior) -> D.Distribution:
    """The same prior as a torch.distributions object."""
    if isinstance(prior, GaussianPrior):
        return D.Normal(0.0, prior.sigma)
    if isinstance(prior, LaplacePrior):
        return D.Laplace(0.0, prior.scale)
    mixing = D.Categorical(torch.tensor([prior.pi, 1 - prior.pi], dtype=torch.float64))
    return D.MixtureSameFamily(mixing, D.Normal(torch.zeros(2, dtype=torch.float64),
                                                torch.tensor([prior.sigma1, prior.sigma2], dtype=torch.float64)))


@pytest.mark.parametrize("method, log_scale", [("sgd-l2", -2.0), ("sgd-l1", -1.0), ("dropout0.5-l1", 0.5),
                                               ("sgd-mixture", 0.0)])
def test_penalty_is_the_negative_log_density_of_its_prior(method, log_scale):
    cfg = RunConfig(method=method, prior_log_sigma1=log_scale, hidden=(16, 8))
    model = MLP([784, 16, 8, 10], cfg.dropout)
    torch.manual_seed(0)
    with torch.no_grad():
        for layer in (m for m in model.modules() if isinstance(m, torch.nn.Linear)):
            layer.weight.normal_(0, 0.05)
            layer.weight[0, :3] = torch.tensor([0.0, 1e-4, -2.0])
    prior = training_prior(cfg)
    reference = _reference(prior)
    weights = [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]
    expected = -sum(reference.log_prob(w.detach().double()).sum() for w in weights)
    cost = negative_log_prior(model, prior)
    assert cost.item() == pytest.approx(expected.item(), rel=1e-5)
    cost.backward()
    for w in weights:
        x = w.detach().double().requires_grad_()
        (-reference.log_prob(x).sum()).backward()
        nonzero = w.detach() != 0  # |w| has no derivative at 0; the penalty uses 0 there
        torch.testing.assert_close(w.grad.double()[nonzero], x.grad[nonzero], rtol=1e-4, atol=1e-6)


def test_the_method_name_sets_the_prior_and_its_scale_is_prior_log_sigma1():
    assert RunConfig(method="sgd-l2").prior == "gaussian"
    assert RunConfig(method="dropout0.5-l1").prior == "laplace"
    assert RunConfig(method="sgd-mixture", prior="gaussian").prior == "mixture"
    assert RunConfig(method="dropout0.5-l1").dropout == 0.5
    assert split_method("dropout0.75-l2") == ("dropout0.75", "l2")
    assert build_prior(RunConfig(method="sgd-l1", prior_log_sigma1=-2.0)).scale == pytest.approx(math.exp(-2.0))
    assert training_prior(RunConfig(method="sgd")) is None


@pytest.mark.parametrize("method", ["sgd-l3", "bbb-l2", "sparsevd-l1", "dropout1.5-l1", "sgd-"])
def test_unknown_penalised_methods_are_refused(method):
    with pytest.raises(ValueError, match="valid choices"):
        RunConfig(method=method)


def test_laplace_prior_is_refused_for_bbb_and_selection_needs_validation():
    with pytest.raises(ValueError, match="laplace"):
        RunConfig(method="bbb", prior="laplace")
    with pytest.raises(ValueError, match="validation"):
        RunConfig(select="val_acc_pruned")
    with pytest.raises(ValueError, match="select"):
        RunConfig(select="test_acc", validation=100)
    with pytest.raises(ValueError, match="select_fraction"):
        RunConfig(select_fraction=1.0)


def test_map_under_bbb_prior_uses_the_very_prior_bbb_trains_with():
    settings = dict(prior_pi=0.25, prior_log_sigma1=-1.0, prior_log_sigma2=-7.0)
    bbb, map_mixture = build_prior(RunConfig(method="bbb", **settings)), training_prior(
        RunConfig(method="sgd-mixture", **settings))
    assert type(map_mixture) is type(bbb) is ScaleMixturePrior
    assert (map_mixture.pi, map_mixture.sigma1, map_mixture.sigma2) == (bbb.pi, bbb.sigma1, bbb.sigma2)
    w = torch.linspace(-1, 1, 101)
    assert torch.equal(map_mixture.log_prob(w), bbb.log_prob(w))


def test_l1_drives_the_weights_of_always_zero_pixels_to_zero_and_a_plain_network_leaves_them(real_data_root):
    settings = dict(epochs=5, kl_weighting="uniform", prior_log_sigma1=1.0)
    plain = train(small_config(method="sgd", **settings), progress=False).model
    sparse = train(small_config(method="sgd-l1", **settings), progress=False).model
    (x_fit, _), _ = training_splits(small_config(), None, "cpu")
    dead = dead_inputs(x_fit)
    assert dead.sum() > 50  # MNIST's border pixels are zero in every training image
    torch.manual_seed(small_config().seed)
    initial = MLP([784, 64, 64, 10]).net[0].weight.detach()[:, dead].abs().mean().item()
    plain_dead = plain.net[0].weight.detach()[:, dead].abs().mean().item()
    sparse_dead = sparse.net[0].weight.detach()[:, dead].abs().mean().item()
    assert plain_dead == pytest.approx(initial, rel=1e-6)  # no gradient ever reaches them
    assert sparse_dead < 0.1 * plain_dead
    live = sparse.net[0].weight.detach()[:, ~dead].abs().mean().item()
    assert live > 3 * sparse_dead  # what the data use is kept


def test_every_epoch_records_pruned_validation_accuracy_and_select_keeps_its_best_epoch(real_data_root):
    cfg = small_config(method="sgd-l2", epochs=4, validation=500, patience=4, kl_weighting="uniform")
    by_dense = train(cfg, progress=False)
    history = by_dense.history
    assert all(0.0 <= record["val_acc_pruned"] <= 1.0 for record in history)
    by_pruned = train(dataclasses.replace(cfg, select="val_acc_pruned"), progress=False)
    assert [r["val_acc_pruned"] for r in by_pruned.history] == [r["val_acc_pruned"] for r in history]
    x_val, y_val = training_splits(cfg, None, "cpu")[1]
    kept = pruned_accuracy(by_pruned.model, x_val, y_val, cfg.select_fraction)
    assert kept == pytest.approx(max(r["val_acc_pruned"] for r in history))


def test_patience_waits_until_neither_validation_score_improves():
    cfg = small_config(validation=100, patience=2, epochs=10)
    rising_pruned = [{"val_acc": a, "val_acc_pruned": p} for a, p in [(0.9, 0.1), (0.8, 0.2), (0.8, 0.3)]]
    assert best_epoch(rising_pruned) == 1 and best_epoch(rising_pruned, "val_acc_pruned") == 3
    assert not training_done(cfg, rising_pruned)
    flat = rising_pruned + [{"val_acc": 0.8, "val_acc_pruned": 0.3}] * 2
    assert training_done(cfg, flat)
    assert training_done(cfg, [{"val_acc": a} for a in (0.9, 0.8, 0.8)])  # histories without the pruned score


def test_a_run_that_differs_only_in_its_selection_rule_reuses_the_training(real_data_root, tmp_path):
    import shutil

    from bayesprune.training.checkpoint import load_checkpoint
    from bayesprune.training.train import CHECKPOINT, trained_state

    cfg = small_config(method="sgd-l2", epochs=4, validation=500, patience=4, kl_weighting="uniform")
    first = train(cfg, out_dir=tmp_path / "dense", progress=False)
    other = dataclasses.replace(cfg, select="val_acc_pruned", variant="pruned90")
    assert other.trains_like(cfg) and not dataclasses.replace(cfg, lr=3e-3).trains_like(cfg)
    (tmp_path / "pruned").mkdir()
    shutil.copyfile(tmp_path / "dense" / CHECKPOINT, tmp_path / "pruned" / CHECKPOINT)
    reused = train(other, out_dir=tmp_path / "pruned", progress=False)
    assert reused.history == first.history  # nothing trained again
    state = load_checkpoint(tmp_path / "dense" / CHECKPOINT)
    kept = [e for e, r in enumerate(first.history, 1) if r["val_acc_pruned"] == max(h["val_acc_pruned"] for h in first.history)][0]
    assert set(state["best_models"]) == {"val_acc", "val_acc_pruned"}
    for name, tensor in reused.model.state_dict().items():
        assert torch.equal(tensor, trained_state(other, state)[name])
    x_val, y_val = training_splits(cfg, None, "cpu")[1]
    assert pruned_accuracy(reused.model, x_val, y_val, 0.9) == pytest.approx(first.history[kept - 1]["val_acc_pruned"])


def test_a_profile_variant_can_set_each_method_s_chosen_point(tmp_path):
    import yaml

    from bayesprune.pipeline.profiles import load_profiles

    entry = {"datasets": ["mnist"], "methods": ["sgd", "sgd-l1"], "seeds": [1], "fractions": [0.0, 0.9],
             "config": {"validation": 100, "patience": 8, "lr": 1e-4},
             "variants": {"as-trained": {"method_config": {"sgd-l1": {"lr": 1e-3, "prior_log_sigma1": -1.0}}},
                          "pruned90": {"select": "val_acc_pruned",
                                       "method_config": {"sgd-l1": {"lr": 3e-3, "prior_log_sigma1": -2.0}}}}}
    path = tmp_path / "profiles.yml"
    path.write_text(yaml.safe_dump({"two-rules": entry}))
    runs = {(c.variant, c.method): c for c in load_profiles(path)["two-rules"].runs()}
    assert runs[("as-trained", "sgd-l1")].lr == 1e-3 and runs[("pruned90", "sgd-l1")].prior_log_sigma1 == -2.0
    assert runs[("pruned90", "sgd")].lr == 1e-4 and runs[("pruned90", "sgd")].select == "val_acc_pruned"
    assert runs[("pruned90", "sgd")].trains_like(runs[("as-trained", "sgd")])  # one training serves both rules
    only = load_profiles(path)["two-rules"].runs(variants=["pruned90"])
    assert {(c.variant, c.method) for c in only} == {("pruned90", "sgd"), ("pruned90", "sgd-l1")}
    with pytest.raises(ValueError, match="variant \\['for98'\\] not in profile"):
        load_profiles(path)["two-rules"].runs(variants=["for98"])
    entry["variants"]["pruned90"]["method_config"] = {"bbb": {"lr": 1e-3}}
    path.write_text(yaml.safe_dump({"two-rules": entry}))
    with pytest.raises(ValueError, match="configures methods"):
        load_profiles(path)
