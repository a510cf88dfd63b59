"""The landing page: one coloured word per verdict, short labels, findings computed from the runs."""

from __future__ import annotations

import pandas as pd

from bayesprune.report.landing import findings, masks_reach_the_network, outcome, short_claim, verdict_matrix_html


def test_each_verdict_becomes_one_word_of_one_class():
    assert outcome("holds") == ("holds", "holds")
    assert outcome("holds (one seed)") == ("holds ¹", "holds")
    assert outcome("does not hold for SGD + L1") == ("partly", "partly")
    assert outcome("inconclusive") == ("inconclusive", "unclear")
    assert outcome("holds only under the study's code, where pruning never reaches the network")[1] == "only"
    assert outcome("shape: does not hold (one seed); level: does not hold (one seed)")[1] == "fails"
    assert outcome("shape: holds; level: does not hold")[0] == "shape only"
    assert outcome("not tested in this regime") == ("—", "none")
    assert outcome("shape: inconclusive; level: does not hold") == ("inconclusive", "unclear")


def test_the_matrix_has_a_row_per_claim_and_a_column_per_regime_with_no_numbers():
    claims = pd.DataFrame([{"claim": "BBB keeps its accuracy after 90 % of its weights are pruned", "study": "s",
                            "see": ("pruning",), "ours: at the operating point": "lost 0.002 [0.001, 0.003]",
                            "verdict: at the operating point": "holds",
                            "ours: the study's recipe, 50 epochs": "lost 0.8", "verdict: the study's recipe, 50 epochs":
                            "does not hold"}])
    html = verdict_matrix_html(claims)
    assert html.count("<tr>") == 2 and "operating point</th>" in html and "study&#x27;s recipe</th>" in html
    assert "0.002" not in html and 'class="verdict holds"' in html and 'class="verdict fails"' in html
    assert short_claim(claims["claim"][0]) in html


def test_the_study_s_own_bbb_with_its_masks_applied():
    ablation = pd.DataFrame([{"dataset": "mnist", "method": "bbb", "protocol": "study", "fixed": fixed, "fraction": 0.9,
                              "accuracy_mean": acc} for fixed, acc in (("none", 0.98), ("pruning_detached", 0.10))])
    found = masks_reach_the_network(ablation)
    assert found == {"fixed": 0.10, "reported": 0.9822}
    assert masks_reach_the_network(ablation[ablation["fixed"] == "none"]) is None


def test_the_fair_finding_names_the_best_baseline_in_full_beside_bbb():
    fair = pd.DataFrame({"method": ["bbb", "sgd", "sgd-l1"], "validation": [0.929, 0.757, 0.940]}).set_index("method")
    items = findings(None, {}, fair, None)
    assert len(items) == 1 and "SGD + L1 keeps 0.940 of the validation images" in items[0]
    assert "against BBB's 0.929" in items[0]
