"""Temperature scaling: fitted on validation logits only, it lowers the NLL of an over-confident model and leaves
its predictions alone."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bayesprune.evaluate.temperature import fit_temperature, scaled_probabilities


def _overconfident(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of a 10-class model right 80 % of the time but scaled five times too sharp."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=generator)
    guess = torch.where(torch.rand(n, generator=generator) < 0.8, y, torch.randint(0, 10, (n,), generator=generator))
    logits = torch.randn(n, 10, generator=generator) + 3.0 * F.one_hot(guess, 10)
    return 5.0 * logits, y


def test_the_fitted_temperature_undoes_over_confidence_and_keeps_the_argmax():
    val_logits, val_y = _overconfident(4000, seed=0)
    temperature = fit_temperature(val_logits, val_y)
    assert 3.0 < temperature < 7.0  # the sharpening put in, found back from validation data alone
    test_logits, test_y = _overconfident(4000, seed=1)
    before = F.nll_loss(torch.log_softmax(test_logits, -1), test_y).item()
    after = F.nll_loss(torch.log(scaled_probabilities(test_logits, temperature)), test_y).item()
    assert after < 0.5 * before
    assert torch.equal(scaled_probabilities(test_logits, temperature).argmax(-1), test_logits.argmax(-1))
    assert torch.allclose(scaled_probabilities(test_logits, temperature).sum(-1), torch.ones(len(test_y)))


def test_the_temperature_depends_on_the_validation_data_it_is_given():
    sharp, y = _overconfident(2000, seed=2)
    assert fit_temperature(sharp, y) > 2.0 * fit_temperature(sharp / 5.0, y)


def test_an_empty_validation_split_or_a_bad_temperature_is_a_clear_error():
    with pytest.raises(ValueError, match="validation split empty"):
        fit_temperature(torch.empty(0, 10), torch.empty(0, dtype=torch.long))
    with pytest.raises(ValueError, match="positive"):
        scaled_probabilities(torch.zeros(3, 10), 0.0)
