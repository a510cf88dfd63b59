"""Deep ensembles of pruned point estimates: the predictive is the mean of the members', each member pruned by its
own weights, and a profile's ensembles group the runs that differ only in their seed."""

from __future__ import annotations

import pytest
import torch
import yaml

from bayesprune.evaluate.ensemble import ENSEMBLE_SIZE, ensemble_predictive, ensemble_rows, pruned_members
from bayesprune.evaluate.passes import mean_logits
from bayesprune.model.models import MLP
from bayesprune.pipeline.ensembles import ensemble_groups
from bayesprune.pipeline.profiles import load_profiles


def _members() -> list[MLP]:
    """Five small networks from five seeds."""
    members = []
    for seed in range(ENSEMBLE_SIZE):
        torch.manual_seed(seed)
        members.append(MLP([8, 12, 3]).eval())
    return members


def test_the_ensemble_predicts_the_mean_of_its_pruned_members():
    x = torch.randn(40, 8)
    pruned = pruned_members(_members(), 0.75)
    expected = torch.stack([torch.softmax(mean_logits(member, x), 1) for member in pruned]).mean(0)
    assert torch.allclose(ensemble_predictive(pruned, x), expected)
    assert torch.allclose(ensemble_predictive(pruned, x).sum(1), torch.ones(40))
    masks = [member.net[0].weight_mask for member in pruned]
    assert not torch.equal(masks[0], masks[1])  # each member pruned by its own magnitudes
    for member in pruned:  # a quarter of each member's weights kept, over both layers together
        kept = sum(member.net[i].weight_mask.sum().item() for i in (0, 2))
        assert kept == round(0.25 * (8 * 12 + 12 * 3))


def test_rows_per_fraction_and_a_wrong_size_is_a_clear_error():
    x, y = torch.randn(60, 8), torch.randint(0, 3, (60,))
    rows = ensemble_rows(_members(), [0.0, 0.9], (x, y), (x, y), {"other": torch.randn(60, 8)})
    assert [row["fraction"] for row in rows] == [0.0, 0.9]
    assert all(row["members"] == ENSEMBLE_SIZE and 0 <= row["auroc_entropy_other"] <= 1 for row in rows)
    assert all(row["val_nll"] == pytest.approx(row["nll"]) for row in rows)  # validation and test alike here
    with pytest.raises(ValueError, match="5 members, got 2"):
        ensemble_rows(_members()[:2], [0.0], (x, y), (x, y), {})


def test_a_profile_ensembles_the_first_five_seeds_of_each_method_and_dataset(tmp_path):
    path = tmp_path / "profiles.yml"
    path.write_text(yaml.safe_dump({"ens": {
        "datasets": ["mnist", "fashion-mnist"], "methods": ["sgd", "sgd-l1"], "seeds": [0, 1, 2, 3, 4, 5],
        "fractions": [0.9], "posthoc_fractions": [0.9], "ensembles": ["sgd-l1"], "config": {"validation": 100}}}))
    groups = ensemble_groups(load_profiles(path)["ens"])
    assert len(groups) == 2
    for group in groups:
        assert [cfg.seed for cfg in group] == [0, 1, 2, 3, 4]
        assert {cfg.method for cfg in group} == {"sgd-l1"} and len({cfg.dataset for cfg in group}) == 1


@pytest.mark.slow
def test_a_lost_member_checkpoint_is_retrained_checked_against_its_record_and_the_ensemble_scored(real_data_root,
                                                                                                  tmp_path):
    import pandas as pd

    import dataclasses

    from bayesprune.pipeline.runner import CheckpointNotReproduced, restore_checkpoint, run_grid
    from bayesprune.pipeline.run_paths import RunPaths
    from bayesprune.training.train import CHECKPOINT

    path = tmp_path / "profiles.yml"
    path.write_text(yaml.safe_dump({"ens": {
        "datasets": ["mnist"], "methods": ["sgd-l1"], "seeds": [0, 1, 2, 3, 4], "fractions": [0.0, 0.9],
        "posthoc_fractions": [0.9], "ensembles": ["sgd-l1"],
        "config": {"epochs": 2, "hidden": [16], "train_subset": 500, "test_subset": 200, "validation": 100,
                   "select": "for90", "targets": True, "device": "cpu"}}}))
    profile = load_profiles(path)["ens"]
    results = tmp_path / "results"
    assert run_grid(profile, results, progress=False).ok
    ensembles = results / "ens" / "ensembles.csv"
    scored = pd.read_csv(ensembles)
    member = RunPaths.of(results / "ens" / "runs", profile.runs()[2]).final
    recorded = (member / "pruning.csv").read_bytes()
    (member / CHECKPOINT).unlink()  # as on a machine where the run was not trained
    assert run_grid(profile, results, progress=False).ok  # already scored: kept, nothing retrained
    assert not (member / CHECKPOINT).exists() and pd.read_csv(ensembles).equals(scored)
    ensembles.unlink()
    assert run_grid(profile, results, progress=False).ok
    assert (member / CHECKPOINT).exists() and (member / "pruning.csv").read_bytes() == recorded
    timings = [c for c in scored.columns if c.endswith("seconds") and c != "train_seconds"]
    pd.testing.assert_frame_equal(pd.read_csv(ensembles).drop(columns=timings), scored.drop(columns=timings))
    changed = dataclasses.replace(profile.runs()[2], lr=0.003)  # as if the code no longer trained the run recorded
    with pytest.raises(CheckpointNotReproduced, match="different history.csv"):
        restore_checkpoint(changed, profile, member, progress=False)
