"""Laplace approximations over a pruned point estimate, and the post-hoc rows: the mask held in every predictive,
proper probabilities, the prior precision chosen on validation data and never on test data, clear errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bayesprune.compress.prune import global_prune
from bayesprune.evaluate.laplace import STRUCTURES, fit_laplace, laplace_probabilities, plain_network
from bayesprune.evaluate.posthoc import judged_fractions, posthoc_rows
from bayesprune.model.models import MLP

FEATURES, CLASSES = 12, 3


def _split(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of a linear teacher's three classes."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, FEATURES, generator=generator)
    teacher = torch.randn(FEATURES, CLASSES, generator=torch.Generator().manual_seed(99))
    return x, (x @ teacher).argmax(1)


@pytest.fixture(scope="module")
def pruned() -> MLP:
    """A small MLP trained on the teacher's classes, then half its weights pruned by magnitude."""
    torch.manual_seed(0)
    model = MLP([FEATURES, 16, 16, CLASSES])
    x, y = _split(600, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    global_prune(model, 0.5, "magnitude")
    return model.eval()


@pytest.mark.parametrize("structure", list(STRUCTURES))
def test_a_removed_weight_stays_removed_and_the_predictive_is_a_distribution(pruned, structure):
    fitted = fit_laplace(pruned, structure, _split(600, 0), _split(300, 1))
    masks = plain_network(pruned)[1]
    kept = torch.cat([mask.reshape(-1) for mask in masks])[-fitted.approximation.n_params:]
    assert (~kept).any()  # the covered parameters include removed weights
    assert torch.all(fitted.approximation.posterior_variance[~kept] == 0)
    assert torch.all(fitted.approximation.posterior_variance[kept] > 0)
    samples = fitted.approximation.sample(50)
    assert torch.all(samples[:, ~kept] == 0)  # every sampled network keeps the pruned weights at exactly zero
    assert samples[:, kept].std(0).min() > 0
    probs = laplace_probabilities(fitted, _split(200, 2)[0])
    assert probs.shape == (200, CLASSES) and torch.all(probs >= 0)
    assert torch.allclose(probs.sum(1), torch.ones(200), atol=1e-5)


@pytest.mark.parametrize("structure", list(STRUCTURES))
def test_the_prior_precision_follows_the_validation_labels(pruned, structure):
    x = _split(300, 1)[0]
    with torch.no_grad():
        agreed = pruned(x).argmax(1)  # labels the network gets right: its posterior may be as tight as the grid goes
    shuffled = agreed[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))]
    tight = fit_laplace(pruned, structure, _split(600, 0), (x, agreed)).prior_precision
    wide = fit_laplace(pruned, structure, _split(600, 0), (x, shuffled)).prior_precision
    assert tight > 10 * wide  # labels the network gets wrong ask for a wider posterior


def test_the_last_layer_probit_from_the_diagonal_is_the_library_s_own(pruned, monkeypatch):
    """The fast probit predictive (the functional variance's diagonal only) gives the probabilities and the prior
    precision that laplace-torch's DiagLLLaplace gives through its full per-image covariance."""
    from laplace import DiagLLLaplace

    from bayesprune.evaluate import laplace

    x, validation = _split(200, 2)[0], _split(300, 1)
    fast = fit_laplace(pruned, "last_layer", _split(600, 0), validation)
    assert type(fast.approximation).__name__ == "DiagonalProbitLastLayer"
    monkeypatch.setattr(laplace, "_last_layer_class", lambda: DiagLLLaplace)
    library = fit_laplace(pruned, "last_layer", _split(600, 0), validation)
    assert type(library.approximation) is DiagLLLaplace
    assert fast.prior_precision == library.prior_precision
    assert torch.allclose(laplace_probabilities(fast, x), laplace_probabilities(library, x), atol=1e-6)
    # a predictive other than the probit goes through the library unchanged
    torch.manual_seed(0)
    sampled = fast.approximation(x, pred_type="glm", link_approx="mc", n_samples=5)
    torch.manual_seed(0)
    assert torch.equal(sampled, library.approximation(x, pred_type="glm", link_approx="mc", n_samples=5))


def test_no_choice_reads_the_test_images(pruned):
    train, validation, shifted = _split(600, 0), _split(300, 1), {"other": torch.randn(100, FEATURES)}
    one = posthoc_rows(pruned, [0.5], train, validation, _split(100, 2), shifted, samples=3)
    other = posthoc_rows(pruned, [0.5], train, validation, _split(100, 3), shifted, samples=3)
    for a, b in zip(one, other):
        assert (a["posthoc"], a["prediction"]) == (b["posthoc"], b["prediction"])
        assert a.get("temperature") == b.get("temperature")
        assert a.get("prior_precision") == b.get("prior_precision")
    assert {(row["posthoc"], row["prediction"]) for row in one} == {
        ("temperature", "deterministic"), ("laplace_last_layer", "laplace"), ("laplace_diagonal", "laplace")}
    assert all(row["fit_seconds"] > 0 and row["predict_seconds"] > 0 for row in one)
    assert all(0.0 <= row["auroc_entropy_other"] <= 1.0 for row in one)
    assert all(row["val_nll"] == other_row["val_nll"] for row, other_row in zip(one, other))
    assert all(row["val_nll"] > 0 for row in one)


def test_a_dropout_network_gets_its_monte_carlo_predictive_scaled_too():
    torch.manual_seed(0)
    model = MLP([FEATURES, 16, 16, CLASSES], dropout=0.5)
    rows = posthoc_rows(model, [0.0], _split(200, 0), _split(100, 1), _split(100, 2), {"other": torch.randn(50, FEATURES)},
                        samples=3)
    assert {row["prediction"] for row in rows if row["posthoc"] == "temperature"} == {"deterministic", "mc"}


def test_bad_input_is_a_clear_error(pruned):
    whole_layer = MLP([FEATURES, 16, 16, CLASSES])
    with torch.no_grad():
        whole_layer.net[2].weight.zero_()
    with pytest.raises(ValueError, match="every weight of layer 2"):
        fit_laplace(whole_layer, "diagonal", _split(100, 0), _split(100, 1))
    with pytest.warns(UserWarning, match="no last_layer Laplace approximation at this fraction"):
        rows = posthoc_rows(whole_layer, [0.0], _split(100, 0), _split(100, 1), _split(100, 2), {})
    assert [row["posthoc"] for row in rows] == ["temperature"]  # the run goes on: temperature scaling still applies
    empty = (torch.empty(0, FEATURES), torch.empty(0, dtype=torch.long))
    with pytest.raises(ValueError, match="empty split"):
        fit_laplace(pruned, "last_layer", _split(100, 0), empty)
    with pytest.raises(ValueError, match="validation split"):
        posthoc_rows(pruned, [0.5], _split(100, 0), None, _split(100, 2), {})
    with pytest.raises(ValueError, match="unknown Laplace structure"):
        fit_laplace(pruned, "kron", _split(100, 0), _split(100, 1))


def test_a_run_is_judged_after_training_only_where_its_epoch_was_chosen():
    assert judged_fractions("for98", [0.0, 0.9, 0.98]) == [0.98]
    assert judged_fractions("for95", [0.0, 0.9, 0.98]) == []
    assert judged_fractions("val_acc", [0.0, 0.9, 0.98]) == [0.0]
    assert judged_fractions("val_acc_pruned", [0.0, 0.9]) == [0.0, 0.9]
