"""Global unstructured pruning on top of torch.nn.utils.prune: magnitude for every model, SNR for BBB, log alpha
for sparse variational dropout.

Each pruned parameter gets torch's `<name>_orig` + `<name>_mask` + forward pre-hook. For BBB the mask
sits on `weight_mu` / `bias_mu`, and BayesianLinear multiplies its noise by the same mask, so a pruned
weight is exactly zero in the posterior-mean and in every sampled forward pass (rho is left alone). For
sparse VD it sits on `theta`, and the layer's variance takes the same mask. Pruning a pruned model again
(iterative pruning) keeps the entries already removed and counts them towards the new fraction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import prune

from bayesprune.config import validate_fraction
from bayesprune.model.bayes import BayesianLinear, BayesianMLP
from bayesprune.model.group_nj import GroupNJLinear, GroupNJMLP
from bayesprune.model.sparse_vd import SparseVDLinear, SparseVDMLP
from bayesprune.model.weights import weight_matrices

CRITERIA = {"mlp": ("magnitude", "unit_norm"), "bbb": ("snr", "magnitude", "snr_rho", "unit_snr"),
            "sparsevd": ("log_alpha", "magnitude"), "bcgnj": ("unit_log_alpha", "magnitude")}
# Structured criteria: whole input units (a weight matrix's columns) ranked together, as BC-GNJ removes units: the
# root mean square of a unit's outgoing weights for a point estimate, their group SNR (RMS mu / RMS sigma) for BBB
STRUCTURED = {"mlp": ("unit_norm",), "bbb": ("unit_snr",)}
# BBB's SNR, as defined and as the study's code computed it; sparse VD's learned dropout rate (highest removed first);
# BC-GNJ's dropout rate of each weight's input unit (whole units removed first, the noisiest first)
OWN_CRITERIA = {"bbb": ("snr", "snr_rho"), "sparsevd": ("log_alpha",), "bcgnj": ("unit_log_alpha",)}
# Criteria that remove whole input units: pruning by them ends with the unit-removal step (`remove_dead_units`)
UNIT_CRITERIA = ("unit_norm", "unit_snr", "unit_log_alpha")


class LowestScore(prune.BasePruningMethod):
    """Zero the round(amount * n) entries with the lowest score; ties go to the lower index."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount: float) -> None:
        self.amount = amount

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        """Mask that keeps default_mask and also zeros the lowest-scoring entries."""
        mask = default_mask.clone()
        count = round(self.amount * t.numel())
        if count:
            order = torch.argsort(t.reshape(-1), stable=True)
            mask.view(-1)[order[:count]] = 0
        return mask


def model_kind(model: nn.Module) -> str:
    """"bbb", "sparsevd", "bcgnj" or "mlp": the family of pruning criteria a model takes."""
    kinds = ((BayesianMLP, "bbb"), (SparseVDMLP, "sparsevd"), (GroupNJMLP, "bcgnj"))
    return next((kind for cls, kind in kinds if isinstance(model, cls)), "mlp")


def criteria_for(model: nn.Module) -> tuple[str, ...]:
    """Pruning criteria that apply to a model (snr_rho: the study's code, see `score`)."""
    return CRITERIA[model_kind(model)]


def own_criteria(method: str) -> tuple[str, ...]:
    """A method's own pruning criteria: SNR for BBB (either form), log alpha for sparse VD, the unit's log alpha for
    BC-GNJ, magnitude for the others."""
    return OWN_CRITERIA.get(method, ("magnitude",))


def sweep_criteria(model: nn.Module, deviations: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Criteria a pruning sweep reports: the model's own (BBB's SNR as the study coded it, if asked), and magnitude."""
    kind = model_kind(model)
    if kind == "mlp":
        return own_criteria("mlp")
    if kind in ("sparsevd", "bcgnj"):
        return (*own_criteria(kind), "magnitude")
    snr, study_snr = own_criteria("bbb")
    return (study_snr if "snr_over_rho" in deviations else snr, "magnitude")


def structured_criteria(model: nn.Module) -> tuple[str, ...]:
    """The unit-level criteria a model's pruning sweep also reports (none where its own criterion is one)."""
    return STRUCTURED.get(model_kind(model), ())


def _validate_criterion(model: nn.Module, criterion: str) -> None:
    """Raise ValueError unless criterion applies to model."""
    valid = criteria_for(model)
    if criterion not in valid:
        raise ValueError(f"criterion {criterion!r} does not apply to {type(model).__name__}; valid choices: {', '.join(valid)}")


def prunable(model: nn.Module, include_bias: bool = False) -> list[tuple[nn.Module, str]]:
    """(module, parameter name) pairs that pruning ranks together: all weight matrices, biases optional."""
    if isinstance(model, BayesianMLP):
        names = ("weight_mu", "bias_mu") if include_bias else ("weight_mu",)
        return [(m, n) for m in model.modules() if isinstance(m, BayesianLinear) for n in names]
    if isinstance(model, SparseVDMLP):
        names = ("theta", "bias") if include_bias else ("theta",)
        return [(m, n) for m in model.modules() if isinstance(m, SparseVDLinear) for n in names]
    if isinstance(model, GroupNJMLP):
        names = ("weight_mu", "bias_mu") if include_bias else ("weight_mu",)
        return [(m, n) for m in model.modules() if isinstance(m, GroupNJLinear) for n in names]
    names = ("weight", "bias") if include_bias else ("weight",)
    return [(m, n) for m in model.modules() if isinstance(m, nn.Linear) for n in names]


def score(module: nn.Module, name: str, criterion: str) -> Tensor:
    """Importance of each entry: |w| (magnitude), |mu| / softplus(rho) (snr), the study's snr_rho, or -log alpha.

    snr_rho reproduces the study's code: |mu| / rho for weights and mu / rho for biases, with the raw
    (negative) rho, so the lowest scores, pruned first, are the largest |mu|. log_alpha ranks sparse VD's
    weights by their learned dropout rate, the noisiest removed first; biases have none.
    """
    value = getattr(module, name).detach()
    if isinstance(module, GroupNJLinear):
        return group_score(module, name, criterion)
    if criterion == "magnitude" or (criterion in ("unit_norm", "unit_snr") and name.startswith("bias")):
        return value.abs()
    if criterion == "unit_norm":
        return by_unit(value.pow(2).mean(dim=0).sqrt(), value.abs())
    if criterion == "unit_snr":
        sigma = F.softplus(getattr(module, name.replace("_mu", "_rho")).detach())
        return by_unit(value.pow(2).mean(dim=0).sqrt() / sigma.pow(2).mean(dim=0).sqrt(), value.abs() / sigma)
    if criterion == "log_alpha":
        if name != "theta":
            raise ValueError("the log_alpha criterion ranks weights only (sparse VD's biases have no dropout rate)")
        return -module.log_alpha.detach()
    rho = getattr(module, name.replace("_mu", "_rho")).detach()
    if criterion == "snr_rho":
        return (value if name.startswith("bias") else value.abs()) / rho
    return value.abs() / F.softplus(rho)


def by_unit(unit_score: Tensor, within: Tensor) -> Tensor:
    """Each weight scored by its input unit's score (a column of the matrix), the weights inside a unit ordered by
    `within`: whole units go first, the lowest-scoring first."""
    return unit_score[None, :].expand_as(within) + 1e-6 * within / within.max().clamp_min(1e-12) * unit_score.abs().max()


def group_score(module: GroupNJLinear, name: str, criterion: str) -> Tensor:
    """BC-GNJ's importance of each entry: |posterior mean| (magnitude), or minus the log alpha of the weight's input
    unit with |posterior mean| breaking ties inside a unit (unit_log_alpha); biases rank by |mean| alone."""
    if name.startswith("bias"):
        return module.bias_mu.detach().abs()
    magnitude = (module.weight_mu.detach() * module.z_mu.detach()[None, :]).abs()
    if criterion == "magnitude":
        return magnitude
    return by_unit(-module.unit_log_alpha.detach(), magnitude)


def sparsity(model: nn.Module, include_bias: bool = False) -> float:
    """Share of zeros among the prunable entries, as the evaluated network uses them."""
    tensors = [getattr(m, n) for m, n in prunable(model, True)] if include_bias else weight_matrices(model)
    return sum(int((t == 0).sum()) for t in tensors) / sum(t.numel() for t in tensors)


def masked_share(pairs: list[tuple[nn.Module, str]]) -> float:
    """Share of the entries that earlier pruning masks already removed."""
    masked = sum(int((getattr(m, f"{n}_mask", torch.ones(1)) == 0).sum()) for m, n in pairs)
    return masked / sum(getattr(m, n).numel() for m, n in pairs)


def refresh_pruned(model: nn.Module) -> None:
    """Recompute every pruned tensor from its original and mask, as the pruning hook does before a forward pass: a
    step that never calls forward (BBB's fused step) or a loaded state dict leaves it at its older value, which any
    reader of the tensor itself (the scoring passes, the pruning scores) would otherwise see."""
    for module in model.modules():
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, prune.BasePruningMethod):
                hook(module, None)


def global_prune(model: nn.Module, fraction: float, criterion: str, include_bias: bool = False) -> float:
    """Prune the lowest-scoring entries at once until `fraction` of all prunable entries are removed (those an
    earlier pruning removed count towards it); return the achieved sparsity."""
    validate_fraction(fraction)
    _validate_criterion(model, criterion)
    pairs = prunable(model, include_bias)
    removed = masked_share(pairs)
    if fraction < removed and criterion in UNIT_CRITERIA:
        return sparsity(model, include_bias)  # an earlier step's unit removal already went past this fraction
    if fraction < removed:
        raise ValueError(f"cannot prune to {fraction}: earlier pruning already removed {removed:.4f} of the entries")
    scores = {(m, n): score(m, n, criterion) for m, n in pairs}
    amount = (fraction - removed) / (1 - removed)  # torch ranks only the entries still in
    prune.global_unstructured(pairs, pruning_method=LowestScore, importance_scores=scores, amount=amount)
    if criterion in UNIT_CRITERIA:
        remove_dead_units(model)
    return sparsity(model, include_bias)


def remove_dead_units(model: nn.Module) -> None:
    """The unit-removal step of structured pruning: a hidden unit whose outgoing weights are all pruned loses its
    incoming weights too, from the top layer down (that can leave a unit below without outgoing weights). The
    network computes what it computed; the weights it counts are those of the smaller network it now is."""
    matrices = prunable(model)
    for (lower, name), (upper, upper_name) in zip(matrices[-2::-1], matrices[:0:-1]):
        dead = (getattr(upper, upper_name) == 0).all(dim=0)
        if dead.any():
            mask = torch.ones_like(getattr(lower, name))
            mask[dead] = 0
            prune.custom_from_mask(lower, name, mask)


def magnitude_prune(model: nn.Module, fraction: float, include_bias: bool = False) -> float:
    """Global L1 pruning (weights, or BBB's mu)."""
    return global_prune(model, fraction, "magnitude", include_bias)


def snr_prune(model: BayesianMLP, fraction: float, include_bias: bool = False) -> float:
    """Global signal-to-noise pruning of a BBB network, |mu| / sigma."""
    return global_prune(model, fraction, "snr", include_bias)



def give_pruned_noise(model: BayesianMLP) -> None:
    """The study's code: pruned BBB weights get rho = 0 and keep their noise (sigma = softplus(0) = 0.69)."""
    for layer in model.layers:
        for name in ("weight", "bias"):
            mask = getattr(layer, f"{name}_mu_mask", None)
            if mask is not None:
                with torch.no_grad():
                    getattr(layer, f"{name}_rho").masked_fill_(mask == 0, 0.0)
        layer.mask_noise = False
