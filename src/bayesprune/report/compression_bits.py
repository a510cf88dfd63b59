"""BC-GNJ's compression in the paper's terms: per network, the units left, the bits per layer its posterior
allows, the compression after pruning and after precision reduction, and the test error at full and at reduced
precision, mean and sd over seeds; and what the smaller network saves at inference."""

from __future__ import annotations

import pandas as pd

from bayesprune.report.formatting import mean_sd
from bayesprune.report.reference import BAYESIAN_COMPRESSION_README
from bayesprune.report.tables import mean_architecture

NUMBERS = {"error_full": ("error (%)", 2), "error_reduced": ("error at reduced precision (%)", 2),
           "compression_pruned": ("compression after pruning", 1),
           "compression_precision": ("after precision reduction", 1)}  # column: (label, decimals)


def precision_summary(precision: pd.DataFrame, names: dict[str, str] | None = None) -> pd.DataFrame:
    """Per dataset, network (`names`: variant -> network, else the variant) and threshold: the mean architecture
    left, the bits per layer (their range over seeds), and the errors and compression ratios as 'mean ± sd' over
    seeds."""
    frame = precision.assign(error_full=100 * (1 - precision["accuracy_full"]),
                             error_reduced=100 * (1 - precision["accuracy_reduced"]))
    rows = []
    bits = sorted(c for c in frame if c.startswith("bits_layer"))
    for (dataset, variant, threshold), group in frame.groupby(["dataset", "variant", "threshold"]):
        row = {"dataset": dataset, "network": (names or {}).get(variant, variant), "log alpha threshold": threshold, "seeds": group["seed"].nunique(),
               "units left": mean_architecture(group["architecture"]),
               "bits per layer": "-".join(_range(group[c]) for c in bits)}
        for column, (label, digits) in NUMBERS.items():
            row[label] = mean_sd(group[column].mean(), group[column].std(), group["seed"].nunique(), digits)
        rows.append(row)
    return pd.DataFrame(rows).set_index(["dataset", "network", "log alpha threshold"])


def _range(values: pd.Series) -> str:
    """'7' when every seed agrees, else '7..9'."""
    low, high = int(values.min()), int(values.max())
    return f"{low}" if low == high else f"{low}..{high}"


def published_compression() -> pd.DataFrame:
    """The compression Louizos et al.'s public code reports for LeNet-5-Caffe, labelled as such."""
    frame = pd.DataFrame(BAYESIAN_COMPRESSION_README, columns=["published", "error (%)", "compression after pruning",
                                                               "after precision reduction"])
    return frame.assign(network="LeNet-5-Caffe").set_index(["network", "published"])


def latency_summary(latency: pd.DataFrame, names: dict[str, str] | None = None) -> pd.DataFrame:
    """Per dataset, network (`names`: variant -> network) and batch size: the mean architecture as trained, the
    share of weights it keeps, the median over seeds of the milliseconds per forward pass of the dense network, of
    CSR holding as many weights and of the smaller dense network, and how many times faster that one runs than
    each."""
    rows = []
    for (dataset, variant, batch), group in latency.groupby(["dataset", "variant", "batch"], sort=False, dropna=False):
        dense, csr, units = (group[c].median() for c in ("dense_ms", "csr_ms", "units_ms"))
        rows.append({"dataset": dataset, "network": (names or {}).get(variant, variant), "batch": batch,
                     "units left": mean_architecture(group["units_architecture"]),
                     "weights kept (%)": 100 * (1 - group["sparsity"].mean()), "seeds": group["seed"].nunique(),
                     "dense (ms)": dense, "CSR, same weights (ms)": csr, "units removed (ms)": units,
                     "faster than dense": dense / units, "faster than CSR": csr / units})
    return pd.DataFrame(rows).set_index(["dataset", "network", "batch"])
