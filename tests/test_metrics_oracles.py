"""The uncertainty metrics agree with scikit-learn's and torchmetrics' on random and on tied inputs: accuracy, NLL,
Brier, ECE, AUROC and FPR at 95 % TPR."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics
from torchmetrics.functional.classification import multiclass_calibration_error

from bayesprune.evaluate.uncertainty import auroc, calibration, fpr_at_tpr


def _probabilities(n: int, classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    probs = torch.softmax(3 * torch.randn(n, classes, generator=generator, dtype=torch.float64), dim=1)
    return probs, torch.randint(0, classes, (n,), generator=generator)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_accuracy_nll_and_brier_agree_with_scikit_learn(seed):
    probs, y = _probabilities(500, 10, seed)
    found = calibration(probs, y)
    p, labels = probs.double().numpy(), y.numpy()
    assert found["accuracy"] == pytest.approx(metrics.accuracy_score(labels, p.argmax(1)), abs=1e-12)
    assert found["nll"] == pytest.approx(metrics.log_loss(labels, p, labels=range(10)), rel=1e-9)
    assert found["brier"] == pytest.approx(
        metrics.brier_score_loss(labels, p, labels=range(10), scale_by_half=False), rel=1e-9)


def test_ece_is_the_share_weighted_gap_of_fifteen_equal_bins():
    probs, y = _probabilities(2000, 10, 3)
    confidence, predicted = probs.double().max(1)
    edges = np.linspace(0, 1, 16)
    which = np.clip(np.digitize(confidence.numpy(), edges[1:-1], right=False), 0, 14)
    correct = (predicted == y).numpy()
    expected = sum(np.mean(which == b) * abs(correct[which == b].mean() - confidence.numpy()[which == b].mean())
                   for b in range(15) if np.any(which == b))
    assert calibration(probs, y)["ece"] == pytest.approx(expected, rel=1e-9)
    oracle = multiclass_calibration_error(probs.float(), y, num_classes=10, n_bins=15, norm="l1").item()
    assert calibration(probs, y)["ece"] == pytest.approx(oracle, abs=1e-5)  # torchmetrics computes in float32


@pytest.mark.parametrize("tied", [False, True])
def test_auroc_and_fpr_at_95_tpr_agree_with_scikit_learn(tied):
    generator = torch.Generator().manual_seed(4)
    inside, outside = torch.rand(700, generator=generator), torch.rand(300, generator=generator) + 0.3
    if tied:  # scores on a coarse grid: many ties inside, outside and across
        inside, outside = (inside * 8).floor() / 8, (outside * 8).floor() / 8
    scores = torch.cat([inside, outside]).numpy()
    positive = np.r_[np.zeros(700), np.ones(300)]
    assert auroc(inside, outside) == pytest.approx(metrics.roc_auc_score(positive, scores), abs=1e-12)
    fpr, tpr, thresholds = metrics.roc_curve(positive, scores)
    # the share of inside scores at or above the highest threshold that flags at least 95 % of the outside ones
    threshold = thresholds[np.argmax(tpr >= 0.95)]
    expected = float(np.mean(inside.numpy() >= threshold))
    if not tied:
        assert fpr_at_tpr(inside, outside) == pytest.approx(expected, abs=1 / 700)
    else:  # with ties the quantile lands on a grid value: the same threshold, the same share
        assert fpr_at_tpr(inside, outside) == pytest.approx(expected, abs=1e-12)
