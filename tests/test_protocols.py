"""The study's code paths, each a switch: they do what the audit says, alone or all together."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from bayesprune.config import DEVIATIONS, RunConfig
from bayesprune.data.augment import affine, fixed_test_images, random_affine
from bayesprune.model import bayes
from bayesprune.model.bayes import BayesianMLP, ScaleMixturePrior
from bayesprune.model.elbo import elbo_terms, kl_weights
from bayesprune.evaluate.scores import evaluate, pruning_sweep, study_scores
from bayesprune.model.models import MLP, build_model
from bayesprune.compress.prune import give_pruned_noise, global_prune
from bayesprune.training.fused import fused_elbo_terms


def _bbb() -> BayesianMLP:
    torch.manual_seed(0)
    model = BayesianMLP([20, 30, 30, 5])
    with torch.no_grad():
        for layer in model.layers:
            layer.weight_rho.uniform_(-6.0, -1.0)
    return model


def test_protocols_resolve_to_their_deviations():
    assert RunConfig().deviations == ()
    study = RunConfig(protocol="study", method="sgd")
    assert study.deviations == tuple(DEVIATIONS)
    assert study.kl_weighting == "study" and study.dropout == 0.01 and study.input_dropout == 0.01
    assert RunConfig(protocol="study", method="dropout0.9").input_dropout == 0.9
    one = RunConfig(protocol="custom", deviations=("entropy_detached",))
    assert one.deviations == ("entropy_detached",) and one.kl_weighting == "blundell"
    with pytest.raises(ValueError, match="use protocol 'custom'"):
        RunConfig(deviations=("kl_doubling",))
    with pytest.raises(ValueError, match="needs at least one deviation"):
        RunConfig(protocol="custom")
    assert RunConfig.from_dict(study.to_dict()) == study


def test_study_baselines_drop_inputs_and_sgd_has_dropout():
    layers = list(build_model(RunConfig(protocol="study", method="sgd", hidden=(8,))).net)
    assert isinstance(layers[0], torch.nn.Dropout) and layers[0].p == 0.01
    assert [m.p for m in layers if isinstance(m, torch.nn.Dropout)] == [0.01, 0.01]
    plain = build_model(RunConfig(method="sgd", hidden=(8,)))
    assert not any(isinstance(m, torch.nn.Dropout) for m in plain.modules())


def test_study_kl_weights_double_the_first_batches():
    weights = kl_weights("study", 600)
    assert weights[:3].tolist() == [2.0, 1.0, 0.5]
    assert weights.sum().item() == pytest.approx(4.0)


@pytest.mark.parametrize("terms", [elbo_terms, fused_elbo_terms])
def test_detached_entropy_leaves_only_the_prior_and_likelihood_on_sigma(terms):
    model = _bbb().double()
    prior = ScaleMixturePrior(0.5, 1.0, math.exp(-6))
    x, y = torch.rand(8, 20, dtype=torch.float64), torch.randint(0, 5, (8,))

    def rho_grad(entropy_gradient: bool) -> torch.Tensor:
        torch.manual_seed(3)
        model.zero_grad()
        nll, complexity, _ = terms(model, x, y, prior, 2, entropy_gradient)
        (nll + complexity).backward()
        return model.layers[0].weight_rho.grad.clone()

    rho = model.layers[0].weight_rho.detach()
    entropy_part = -2 * torch.sigmoid(rho) / F.softplus(rho) / 2  # d(-mean_s log sigma)/d rho, 2 samples averaged
    assert torch.allclose(rho_grad(True) - rho_grad(False), entropy_part, rtol=1e-8, atol=1e-10)


def test_study_snr_prunes_the_largest_means_first():
    model = _bbb()
    global_prune(model, 0.5, "snr_rho", include_bias=True)
    layer = model.layers[1]
    kept = layer.weight_mu_mask.bool()
    score = layer.weight_mu_orig.abs() / layer.weight_rho
    assert score[~kept].max() <= score[kept].min()
    assert layer.weight_mu_orig.abs()[~kept].mean() > layer.weight_mu_orig.abs()[kept].mean()
    negative_biases = layer.bias_mu_orig < 0  # mu / rho > 0 there: the highest scores, never pruned first
    assert layer.bias_mu_mask[negative_biases].all()


def test_pruned_rho_zero_gives_pruned_weights_noise_of_sigma_softplus_zero(monkeypatch):
    model = _bbb()
    global_prune(model, 0.9, "snr")
    give_pruned_noise(model)
    seen = []
    real_linear = F.linear
    monkeypatch.setattr(bayes.F, "linear", lambda x, w, b=None: seen.append(w.detach()) or real_linear(x, w, b))
    model(torch.randn(2, 20), sample=True)
    model(torch.randn(2, 20), sample=False)
    monkeypatch.undo()
    pruned = model.layers[0].weight_mu_mask == 0
    assert seen[0][pruned].std().item() == pytest.approx(math.log(2), rel=0.05)
    assert torch.all(seen[3][pruned] == 0)  # the posterior-mean pass still sees zeros


def test_detached_pruning_leaves_every_fraction_at_the_unpruned_accuracy():
    from bayesprune.evaluate.scores import mean_logits

    model = _bbb()
    x = torch.randn(256, 20)
    y = mean_logits(model, x).argmax(dim=1)  # labels the unpruned network gets all right
    rows = pruning_sweep(model, x, y, [0.0, 0.5, 0.9, 0.99], samples=2, deviations=("pruning_detached",))
    assert {r["accuracy_mean"] for r in rows} == {1.0}
    honest = pruning_sweep(model, x, y, [0.0, 0.99], samples=2)
    assert honest[0]["accuracy_mean"] == 1.0 and honest[1]["accuracy_mean"] < 0.8  # real pruning changes answers
    assert [r["achieved_sparsity"] for r in rows[:4]] == pytest.approx([0.0, 0.5, 0.9, 0.99], abs=1e-3)


def test_mixed_metric_is_the_mean_log_softmax_of_samples_and_mean_network():
    model = _bbb()
    x, y = torch.randn(32, 20), torch.randint(0, 5, (32,))
    torch.manual_seed(5)
    scores = study_scores(model, x, 3)
    torch.manual_seed(5)
    manual = torch.log_softmax(model(x, sample=False), 1) + sum(torch.log_softmax(model(x), 1) for _ in range(3))
    assert torch.allclose(scores, manual / 4, atol=1e-6)
    torch.manual_seed(5)
    assert evaluate(model, x, y, 3, mixed_metric=True)["accuracy_ensemble"] == (scores.argmax(1) == y).float().mean().item()
    assert evaluate(MLP([20, 5]), x, y, 3, mixed_metric=True)["accuracy_ensemble"] is None


def test_pruning_ablation_fixes_each_pruning_time_deviation_alone():
    from bayesprune.pipeline.runs import pruning_ablation

    model = _bbb()
    x, y = torch.randn(64, 20), torch.randint(0, 5, (64,))
    cfg = RunConfig(protocol="study", method="bbb", hidden=(30, 30), eval_samples=2)
    rows = pruning_ablation(model, x, y, [0.0, 0.9], False, cfg)
    assert [r["fixed"] for r in rows[::2]] == ["none", "pruning_detached", "snr_over_rho", "pruned_rho_zero", "mixed_metric"]
    by_fixed = {r["fixed"]: r for r in rows if r["fraction"] == 0.9}
    assert by_fixed["none"]["accuracy_mean"] == rows[0]["accuracy_mean"]  # detached: 90 % equals unpruned
    assert by_fixed["pruning_detached"]["criterion"] == "snr_rho"
    assert by_fixed["snr_over_rho"]["criterion"] == "snr"


def test_affine_is_exact_at_identity_and_quarter_turns():
    images = torch.rand(3, 784)
    ones = torch.ones(3)
    assert torch.equal(affine(images, torch.zeros(3), ones), images)
    turned = affine(images, torch.full((3,), 90.0), ones).view(3, 28, 28)
    square = images.view(3, 28, 28)
    assert torch.equal(turned, torch.rot90(square, 1, (1, 2))) or torch.equal(turned, torch.rot90(square, -1, (1, 2)))


def test_random_affine_rotates_and_shrinks_with_zero_fill():
    torch.manual_seed(0)
    images = torch.ones(200, 784)
    out = random_affine(images)
    assert out.shape == images.shape and set(out.unique().tolist()) <= {0.0, 1.0}
    kept = out.mean(dim=1)
    assert kept.min() < 0.8 and kept.max() == 1.0  # shrunk ones lose their corners, enlarged ones fill the frame


def test_augmentation_touches_fashion_mnist_only_and_fixes_the_test_set():
    x = torch.rand(50, 784)
    study_mnist = RunConfig(protocol="study", dataset="mnist", method="bbb")
    assert fixed_test_images(study_mnist, x) is x
    study_fashion = RunConfig(protocol="study", dataset="fashion-mnist", method="bbb")
    first, again = fixed_test_images(study_fashion, x), fixed_test_images(study_fashion, x)
    assert torch.equal(first, again) and not torch.equal(first, x)
    assert fixed_test_images(RunConfig(dataset="fashion-mnist"), x) is x


def test_long_baselines_double_fashion_mnist_baseline_epochs_only():
    def epochs(**kw):
        return RunConfig(protocol="study", epochs=50, **kw).train_epochs
    assert epochs(dataset="fashion-mnist", method="dropout0.5") == 100
    assert epochs(dataset="fashion-mnist", method="bbb") == 50
    assert epochs(dataset="mnist", method="sgd") == 50
    assert RunConfig(dataset="fashion-mnist", epochs=50).train_epochs == 50
    study = RunConfig(protocol="study", dataset="fashion-mnist", method="sgd")
    assert RunConfig.from_dict(study.to_dict()) == study


def test_profile_ablation_retrains_each_training_time_deviation_alone():
    from bayesprune.pipeline.profiles import Profile
    from bayesprune.pipeline.run_paths import run_id

    profile = Profile("p", ("fashion-mnist",), ("sgd", "bbb"), (0, 1), (0.9,), ("corrected", "study"),
                      ablation=("bbb",), config=(("epochs", 3),))
    extra = [cfg for cfg in profile.runs() if cfg.protocol == "custom"]
    assert [run_id(cfg) for cfg in extra] == [
        "fashion-mnist-bbb-study-without-entropy_detached-s0",
        "fashion-mnist-bbb-study-without-kl_doubling-s0",
        "fashion-mnist-bbb-study-without-augmentation-s0",
    ]
    assert extra[1].kl_weighting == "blundell" and extra[0].kl_weighting == "study"
    assert all(cfg.epochs == 3 for cfg in extra)
    assert len(profile.runs(protocols=["corrected"])) == 4
