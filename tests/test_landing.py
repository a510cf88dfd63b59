"""The landing page: one coloured word per verdict, short labels, findings computed from the runs."""

from __future__ import annotations

import pandas as pd

from bayesprune.report.frontier import as_points
from bayesprune.report.landing import (compression_finding, findings, masks_reach_the_network, outcome, short_claim,
                                       verdict_matrix_html)
from tests.test_frontier import _curves


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
    assert "does not hold</span>: the interval lies on the wrong side" in html and "holds</span>: the interval" in html
    assert "inconclusive</span>" not in html and "¹" not in html  # a key to the words shown, no footnote to nothing
    one_seed = claims.assign(**{"verdict: at the operating point": "holds (one seed)"})
    assert "¹ rests on one seed" in verdict_matrix_html(one_seed)


def test_the_study_s_own_bbb_with_its_masks_applied():
    ablation = pd.DataFrame([{"dataset": "mnist", "method": "bbb", "protocol": "study", "fixed": fixed, "fraction": 0.9,
                              "accuracy_mean": acc} for fixed, acc in (("none", 0.98), ("pruning_detached", 0.10))])
    found = masks_reach_the_network(ablation)
    assert found == {"fixed": 0.10, "reported": 0.9822}
    assert masks_reach_the_network(ablation[ablation["fixed"] == "none"]) is None


def test_the_fair_finding_counts_where_bbb_beats_the_best_point_estimate_under_a_prior():
    fair = pd.DataFrame({"BBB against the MAP estimate": ["less", "no clear difference", "more", "no clear difference"]})
    items = findings(None, {}, fair, None)
    assert len(items) == 1 and "BBB keeps more accuracy in 1 of 4 comparisons, less in 1" in items[0]
    assert "cannot tell them apart in 2" in items[0] and 'href="claims.html"' in items[0]

def test_the_operating_point_finding_quotes_each_rule_without_judging_it():
    headline = {"point_bbb": "0.982 → 0.963 (MNIST), 0.886 → 0.224 (Fashion-MNIST)", "point_baseline": "SGD + L1 0.983",
                "point-pruned_bbb": "0.982 → 0.980 (MNIST)", "point-pruned_baseline": "SGD + L1 0.983"}
    (item,) = findings(None, headline, None, None)
    assert "as trained, 0.982 → 0.963 (MNIST), 0.886 → 0.224 (Fashion-MNIST), where the best baseline" in item
    assert "chosen for accuracy after pruning, 0.982 → 0.980 (MNIST)" in item and "keeps its accuracy" not in item


def test_no_fair_finding_where_the_operating_point_trained_no_point_estimate_under_a_prior():
    assert findings(None, {}, pd.DataFrame({"BBB": [0.9]}), None) == []


def test_the_compression_finding_quotes_the_claim_s_errors_at_the_same_ratio_and_its_verdict():
    sgd = [(2.0, 2.0, 2.4, 3.0, 9.0)] * 3
    bbb = [(2.0, 2.0, 2.1, 2.3, 3.0), (2.1, 2.1, 2.2, 2.4, 3.1), (1.9, 1.9, 2.0, 2.2, 2.9)]
    text = compression_finding(as_points(_curves({"sgd": sgd, "bbb": bbb})))  # reaches 12x (at 20x), never 68x
    assert text.startswith("at 12x, BBB's test error is 2.30 % against 3.00 % for SGD (BBB compresses better")
    assert "holds, by the 95 % interval" in text and "68x" not in text
    assert compression_finding(as_points(_curves({"sgd": sgd}))) is None
    mnist = as_points(_curves({"sgd": sgd, "bbb": bbb}))
    both = compression_finding(pd.concat([mnist.assign(dataset="fashion-mnist"), mnist], ignore_index=True))
    assert both.startswith("MNIST: at 12x") and ". Fashion-MNIST: at 12x" in both
