"""Fine-tuning after pruning keeps the masks, draws no noise where BBB is pruned, and wins back accuracy."""

from __future__ import annotations

import pytest
import torch

from bayesprune.data.splits import scored_split, training_splits
from bayesprune.model.evaluate import accuracy, mean_logits
from bayesprune.model.prune import global_prune
from bayesprune.training.finetune import finetune
from bayesprune.training.train import train

from .conftest import small_config


@pytest.mark.parametrize(("method", "criterion"), [("sgd", "magnitude"), ("bbb", "snr")])
def test_fine_tuning_keeps_the_pruned_weights_at_zero_and_recovers_accuracy(real_data_root, method, criterion):
    cfg = small_config(method=method, kl_weighting="uniform", epochs=3)
    result = train(cfg, data_root=real_data_root, progress=False)
    (x_fit, y_fit), _ = training_splits(cfg, real_data_root, "cpu")
    x_test, y_test = scored_split(cfg, real_data_root, "cpu")
    model = result.model
    global_prune(model, 0.95, criterion)
    masks = {name: buffer.clone() for name, buffer in model.named_buffers() if name.endswith("_mask")}
    before = accuracy(mean_logits(model, x_test), y_test)
    finetune(model, cfg, x_fit, y_fit, epochs=2)
    after = accuracy(mean_logits(model, x_test), y_test)
    assert after > before + 0.02
    for name, mask in masks.items():
        assert torch.equal(dict(model.named_buffers())[name], mask)
        layer, parameter = name.rsplit(".", 1)
        weight = getattr(model.get_submodule(layer), parameter.removesuffix("_mask"))
        assert bool((weight[mask == 0] == 0).all())
    if method == "bbb":
        layer = model.layers[0]
        sampled, _ = layer._draw("weight", None)
        assert bool((sampled[layer.weight_mu_mask == 0] == 0).all())  # no noise where pruned


def test_fine_tuning_rejects_a_negative_number_of_epochs():
    cfg = small_config()
    with pytest.raises(ValueError, match="fine-tuning epochs must be an integer >= 0"):
        finetune(torch.nn.Linear(2, 2), cfg, torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), -1)
