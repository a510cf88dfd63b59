"""Fine-tuning after pruning keeps the masks, draws no noise where BBB is pruned, and wins back accuracy."""

from __future__ import annotations

import copy

import pytest
import torch

from bayesprune.data.splits import scored_split, training_splits
from bayesprune.evaluate.scores import accuracy, mean_logits, scored_row
from bayesprune.model.models import build_model
from bayesprune.compress.prune import global_prune
from bayesprune.training.finetune import SCHEDULES, finetune, finetuned_sweep
from bayesprune.training.train import train

from .conftest import small_config


@pytest.mark.parametrize(("method", "criterion"), [("sgd", "magnitude"), ("bbb", "snr"), ("sparsevd", "log_alpha")])
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
    if method != "sparsevd":  # on 2000 images sparse VD's KL outweighs the data; the frontier profile measures it
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
    if method == "sparsevd":
        layer = model.layers[0].train()
        outputs = []
        for log_sigma2 in (None, 20.0):
            if log_sigma2 is not None:
                with torch.no_grad():
                    layer.log_sigma2[layer.theta_mask == 0] = log_sigma2  # pruned weights' variance: masked out
            torch.manual_seed(0)
            outputs.append(layer(x_test[:5]))
        assert torch.equal(*outputs)


@pytest.mark.parametrize(("method", "criterion", "patience"), [("bbb", "snr", 0), ("bbb", "snr", 3), ("sgd", "magnitude", 0)])
def test_the_network_scored_after_fine_tuning_is_the_one_fine_tuning_left(method, criterion, patience):
    """BBB's fused step never calls forward, so the pruning hook never refreshed its masked means: the scoring passes
    read the means from before fine-tuning beside the biases after it (and a baseline's weights one step behind)."""
    torch.manual_seed(0)
    cfg = small_config(method=method, kl_weighting="uniform", hidden=(32,), train_subset=0)
    model = build_model(cfg)
    x, y = torch.rand(300, 784), torch.randint(0, 10, (300,))
    global_prune(model, 0.9, criterion)
    finetune(model, cfg, x, y, epochs=2, validation=(x[:100], y[:100]) if patience else None, patience=patience)
    for module in model.modules():
        for name, _ in list(module.named_buffers(recurse=False)):
            pruned = name.removesuffix("_mask")
            expected = getattr(module, f"{pruned}_orig") * getattr(module, name)
            assert torch.equal(getattr(module, pruned), expected), f"{pruned} is stale"
    model.eval()
    with torch.no_grad():
        hooked = model(x, sample=False) if method == "bbb" else model(x)  # the forward runs the pruning hook
    torch.testing.assert_close(mean_logits(model, x), hooked)


def test_fine_tuning_rejects_a_negative_number_of_epochs():
    cfg = small_config()
    with pytest.raises(ValueError, match="fine-tuning epochs must be an integer >= 0"):
        finetune(torch.nn.Linear(2, 2), cfg, torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), -1)


def test_the_fine_tuned_sweep_prunes_one_shot_and_iteratively_to_each_fraction():
    torch.manual_seed(0)
    cfg = small_config(hidden=(16,), batch_size=50)
    model = build_model(cfg)
    x, y = torch.rand(200, 784), torch.randint(0, 10, (200,))
    rows = finetuned_sweep(model, cfg, (x, y), (x[:100], y[:100]), [0.0, 0.5, 0.9], epochs=1)
    assert [(r["schedule"], r["fraction"]) for r in rows] == [(s, f) for s in SCHEDULES for f in (0.5, 0.9)]
    for row in rows:
        assert row["criterion"] == "magnitude" and row["finetune_epochs"] == 1
        assert row["achieved_sparsity"] == pytest.approx(row["fraction"], abs=1e-3)
        assert row["speedup"] == pytest.approx(1 / (1 - row["fraction"]), rel=1e-2)
    one_shot, iterative = rows[0], rows[2]
    assert one_shot["accuracy_mean"] == iterative["accuracy_mean"]  # the first step of both is the same pruning
    assert any(a["accuracy_mean"] != b["accuracy_mean"] for a, b in zip(rows[:2], rows[2:]))


def test_the_fine_tuned_sweep_runs_each_rate_and_a_rate_scales_the_training_rate():
    torch.manual_seed(0)
    cfg = small_config(hidden=(16,), batch_size=50)
    model = build_model(cfg)
    x, y = torch.rand(200, 784), torch.randint(0, 10, (200,))
    rows = finetuned_sweep(model, cfg, (x, y), (x[:100], y[:100]), [0.5], epochs=1, rates=(1.0, 0.1))
    assert [(r["finetune_rate"], r["schedule"]) for r in rows] == [(r, s) for r in (1.0, 0.1) for s in SCHEDULES]
    zero = copy.deepcopy(model)
    finetune(zero, cfg, x, y, 1, rate=1e-12)  # a vanishing rate leaves the weights where they were
    assert all(torch.allclose(a, b, atol=1e-8) for a, b in zip(zero.state_dict().values(), model.state_dict().values()))
    with pytest.raises(ValueError, match="rate factor must be > 0"):
        finetune(copy.deepcopy(model), cfg, x, y, 1, rate=0.0)


def test_fine_tuning_with_patience_stops_when_validation_stops_improving_and_keeps_the_best(real_data_root):
    cfg = small_config(epochs=3, validation=500)
    model = train(cfg, data_root=real_data_root, progress=False).model
    fit, validation = training_splits(cfg, real_data_root, "cpu")
    global_prune(model, 0.98, "magnitude")
    scores = []
    original = finetune.__globals__["accuracy"]

    def recording(*args):
        scores.append(original(*args))
        return scores[-1]

    finetune.__globals__["accuracy"] = recording
    try:
        ran = finetune(model, cfg, *fit, 30, validation, patience=2)
    finally:
        finetune.__globals__["accuracy"] = original
    best = scores.index(max(scores)) + 1
    assert ran == len(scores) and (ran == 30 or ran == best + 2)  # stopped two epochs after the best
    assert accuracy(mean_logits(model, validation[0]), validation[1]) == pytest.approx(max(scores))
    with pytest.raises(ValueError, match="validation split"):
        finetune(model, cfg, *fit, 3, None, patience=2)


def test_a_killed_fine_tuned_sweep_resumes_from_its_finished_parts_with_the_same_rows(tmp_path, monkeypatch):
    from bayesprune.training import finetune as module

    torch.manual_seed(0)
    cfg = small_config(method="bbb", hidden=(16,), batch_size=50)
    model = build_model(cfg)
    x, y = torch.rand(200, 784), torch.randint(0, 10, (200,))
    args = (model, cfg, (x, y), (x[:100], y[:100]), [0.5, 0.9], 1, (x[100:], y[100:]), 1, (1.0, 0.1))
    whole = finetuned_sweep(*args)
    real, calls = module.finetune, []

    def dies_in_the_last_sweep(*a, **k):
        calls.append(1)
        if len(calls) == 6:  # per rate: one-shot fine-tunes 2 fractions, iterative 1 (its first is one-shot's)
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(module, "finetune", dies_in_the_last_sweep)
    with pytest.raises(KeyboardInterrupt):
        finetuned_sweep(*args, parts=tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 3
    calls.clear()

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(module, "finetune", counted)
    resumed = finetuned_sweep(*args, parts=tmp_path)
    assert len(calls) == 2 and resumed == whole  # one-shot read back, so the iterative sweep fine-tunes its first


def test_the_iterative_sweep_s_first_step_is_the_one_shot_network_and_the_rest_is_as_if_fine_tuned_anew(monkeypatch):
    from bayesprune.training import finetune as module

    torch.manual_seed(0)
    cfg = small_config(method="bbb", hidden=(16,), batch_size=50)
    model = build_model(cfg)
    x, y = torch.rand(200, 784), torch.randint(0, 10, (200,))
    validation, fractions = (x[100:], y[100:]), [0.5, 0.8, 0.9]
    real, calls = module.finetune, []
    monkeypatch.setattr(module, "finetune", lambda *a, **k: calls.append(1) or real(*a, **k))
    rows = finetuned_sweep(model, cfg, (x, y), (x[:100], y[:100]), fractions, 1, validation, 1, (1.0, 0.1))
    assert len(calls) == 2 * (2 * len(fractions) - 1)  # per rate: 3 one-shot, 2 iterative fine-tunings
    carried, expected = copy.deepcopy(model), []  # the iterative schedule, every step fine-tuned from its own
    for fraction in fractions:
        global_prune(carried, fraction, "snr")
        real(carried, cfg, x, y, 1, validation, 1, 0.1)
        expected.append(scored_row(carried, x[:100], y[:100], cfg.eval_samples, cfg.seed)["accuracy_mean"])
    iterative = [r["accuracy_mean"] for r in rows if r["schedule"] == "iterative" and r["finetune_rate"] == 0.1]
    assert iterative == expected
