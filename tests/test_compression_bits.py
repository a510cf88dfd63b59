"""BC-GNJ's compression table: means over seeds, the units left, the bits per layer and their spread."""

from __future__ import annotations

import pandas as pd
import pytest

from bayesprune.report.compression_bits import precision_summary


def test_the_summary_averages_seeds_and_shows_where_they_disagree_on_bits():
    rows = [{"dataset": "mnist", "variant": "lenet", "threshold": -3.0, "seed": s, "architecture": a, "bits_layer1": b1,
             "bits_layer2": 9, "accuracy_full": acc, "accuracy_reduced": acc - 0.001,
             "compression_pruned": cp, "compression_precision": 4 * cp}
            for s, a, b1, acc, cp in ((1, "300-100-10", 7, 0.982, 10.0), (2, "310-90-10", 8, 0.980, 12.0))]
    table = precision_summary(pd.DataFrame(rows), {"lenet": "LeNet-300-100"})
    row = table.loc[("mnist", "LeNet-300-100", -3.0)]
    assert row["units left"] == "305-95-10" and row["bits per layer"] == "7..8-9" and row["seeds"] == 2
    assert row["error (%)"] == "1.90 ± 0.14" and row["error at reduced precision (%)"] == "2.00 ± 0.14"
    assert row["compression after pruning"] == "11.0 ± 1.4" and row["after precision reduction"] == "44.0 ± 5.7"


def test_the_latency_table_takes_medians_over_seeds_and_says_how_much_faster_the_smaller_network_runs():
    from bayesprune.report.compression_bits import latency_summary

    rows = [{"dataset": "mnist", "variant": "lenet", "seed": s, "batch": 100, "sparsity": sp, "dense_ms": d,
             "csr_ms": c, "units_ms": u, "units_architecture": a}
            for s, sp, d, c, u, a in ((1, 0.9, 1.0, 2.0, 0.2, "300-60-20-10"), (2, 0.92, 1.2, 2.4, 0.3, "280-50-30-10"),
                                      (3, 0.91, 1.1, 2.2, 0.25, "290-55-25-10"))]
    row = latency_summary(pd.DataFrame(rows), {"lenet": "LeNet-300-100"}).loc[("mnist", "LeNet-300-100", 100)]
    assert row["units left"] == "290-55-25-10" and row["seeds"] == 3
    assert row["weights kept (%)"] == pytest.approx(9.0)
    assert row["dense (ms)"] == pytest.approx(1.1) and row["units removed (ms)"] == pytest.approx(0.25)
    assert row["faster than dense"] == pytest.approx(4.4) and row["faster than CSR"] == pytest.approx(8.8)
