"""CUDA-graph training steps: the warm-up before capture leaves no trace, and a graphed run trains
as the op-by-op run does (the CUDA tests run where a GPU is present)."""

from __future__ import annotations

import pytest
import torch

from bayesprune.config import RunConfig
from bayesprune.model.models import build_model, build_prior
from bayesprune.training.graphs import GRAPH_ENV, graphs_enabled, restore_in_place, snapshot
from bayesprune.training.train import build_optimizer, train, training_step

from .conftest import small_config

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _setup(method: str, device: str = "cpu"):
    cfg = RunConfig(method=method, hidden=(32, 16), device=device)
    torch.manual_seed(0)
    model = build_model(cfg).to(device)
    prior = build_prior(cfg) if cfg.bayesian else None
    x = torch.rand(50, 784, device=device)
    y = torch.randint(0, 10, (50,), device=device)
    return cfg, model, prior, build_optimizer(cfg, model), x, y, torch.tensor(0.01, device=device)


def _steps(cfg, model, prior, optimizer, x, y, kl, count=3):
    torch.manual_seed(1)
    return [training_step(cfg, model, prior, optimizer, x, y, kl) for _ in range(count)]


def test_graphs_only_on_cuda_and_switch_off(monkeypatch):
    assert not graphs_enabled(torch.device("cpu"))
    assert graphs_enabled(torch.device("cuda"))
    monkeypatch.setenv(GRAPH_ENV, "0")
    assert not graphs_enabled(torch.device("cuda"))


@pytest.mark.parametrize("method", ["sgd", "bbb"])
def test_restore_after_warm_up_trains_like_a_fresh_model(method):
    cfg, model, prior, optimizer, x, y, kl = _setup(method)
    fresh = _steps(*_setup(method))
    saved = snapshot(model, optimizer)
    _steps(cfg, model, prior, optimizer, x, y, kl, count=4)  # warm-up: moves weights, creates Adam's state
    restore_in_place(model, optimizer, saved)
    assert all(p.grad is None for p in model.parameters())
    again = _steps(cfg, model, prior, optimizer, x, y, kl)
    for a, b in zip(fresh, again):
        torch.testing.assert_close(a, b)


def test_restore_writes_into_the_same_tensors():
    cfg, model, prior, optimizer, x, y, kl = _setup("sgd")
    _steps(cfg, model, prior, optimizer, x, y, kl, count=1)
    saved = snapshot(model, optimizer)
    addresses = [p.data_ptr() for p in model.parameters()]
    state = [v.data_ptr() for p in model.parameters() for v in optimizer.state[p].values()]
    _steps(cfg, model, prior, optimizer, x, y, kl, count=2)
    restore_in_place(model, optimizer, saved)
    assert [p.data_ptr() for p in model.parameters()] == addresses
    assert [v.data_ptr() for p in model.parameters() for v in optimizer.state[p].values()] == state
    for p, value in zip(model.parameters(), saved["params"]):
        assert torch.equal(p, value)


@needs_cuda
@pytest.mark.parametrize("method", ["sgd", "dropout0.5", "bbb"])
def test_graphed_training_matches_op_by_op_training(real_data_root, monkeypatch, method):
    cfg = small_config(method=method, device="cuda", train_subset=2050)  # a short last minibatch too
    graphed = train(cfg, progress=False).history
    monkeypatch.setenv(GRAPH_ENV, "0")
    eager = train(cfg, progress=False).history
    for g, e in zip(graphed, eager):
        assert g["nll"] == pytest.approx(e["nll"], rel=1e-3)
        assert g["test_acc"] == pytest.approx(e["test_acc"], abs=0.01)
