"""The landing page: one coloured word per verdict, short labels, findings computed from the runs."""

from __future__ import annotations

import pandas as pd

import pytest

from bayesprune.report.frontier import as_points, frontier_answer, highest_anchor
from bayesprune.report.landing import (answer, bbb_kept, claim_anchor, claim_sections_html, claims_reading, findings,
                                       masks_reach_the_network, outcome, short_claim, verdict_matrix_html)
from tests.test_frontier import _curves


def test_each_verdict_becomes_one_word_of_one_class():
    assert outcome("holds") == ("holds", "holds")
    assert outcome("holds (one seed)") == ("holds ¹", "holds")
    assert outcome("does not hold for SGD + L1") == ("partly", "partly")  # holds for the others
    assert outcome("does not hold (inconclusive for SGD)") == ("does not hold", "fails")  # holds for none
    assert outcome("inconclusive") == ("inconclusive", "unclear")
    assert outcome("holds only under the study's code, where pruning never reaches the network")[1] == "only"
    assert outcome("shape: does not hold (one seed); level: does not hold (one seed)") == ("does not hold ¹", "fails")
    assert outcome("shape: holds; level: does not hold") == ("shape holds, level fails", "partly")  # the level shown
    assert outcome("shape: inconclusive; level: does not hold") == ("shape unclear, level fails", "fails")
    assert outcome("shape: holds; level: holds") == ("holds", "holds")
    assert outcome("mixed: does not hold, inconclusive") == ("does not hold", "fails")
    assert outcome("mixed: holds, inconclusive") == ("partly", "partly")
    assert outcome("not tested in this regime") == ("—", "none")


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


def _claims(**verdicts) -> pd.DataFrame:
    """A claims table of one regime beside the study's recipe: claim opening -> verdict at the operating point."""
    return pd.DataFrame([{"claim": claim, "study": "s", "see": ("pruning",),
                          "ours: the study's recipe, 50 epochs": "o", "verdict: the study's recipe, 50 epochs": "holds",
                          "ours: at the operating point": "lost 0.002 [0.001, 0.003]",
                          "verdict: at the operating point": verdict} for claim, verdict in verdicts.items()])


KEEPS = "BBB keeps its accuracy after 90 % of its weights are pruned"
POSTERIOR = "BBB's robustness to pruning comes from its posterior, not from its prior"


def test_the_answer_follows_the_verdicts():
    study = {"fixed": 0.101, "reported": 0.982}
    prior = answer(_claims(**{KEEPS: "holds", POSTERIOR: "does not hold"}), study)
    assert "falls to 0.10 accuracy at 90 % pruned" in prior and "does keep its accuracy" in prior
    assert "what makes a network prunable is its prior" in prior
    posterior = answer(_claims(**{KEEPS: "holds", POSTERIOR: "holds"}), None)
    assert "adds accuracy after pruning that the same prior alone does not" in posterior and "0.10" not in posterior
    undecided = answer(_claims(**{KEEPS: "does not hold", POSTERIOR: "inconclusive"}), None)
    assert "does not keep its accuracy" in undecided and "cannot yet decide" in undecided
    assert answer(_claims(), None) == ""


def test_the_claims_reading_sorts_claims_by_where_they_hold():
    claims = _claims(**{KEEPS: "holds", POSTERIOR: "does not hold",
                        "BBB costs about 10x the training time of SGD": "holds only for the study's implementation",
                        "All models still under-fit after 50 epochs": "not tested in this regime"})
    text = claims_reading(claims)
    assert text.startswith("Of the 3 claims tested beyond the study's own recipe, 1 holds wherever it is tested (BBB")
    assert "1 holds nowhere (the posterior, not the prior)" in text and "1 holds only for the study's code" in text


def test_each_matrix_row_links_to_its_claim_s_section():
    claims = _claims(**{KEEPS: "holds"})
    anchor = claim_anchor(KEEPS)
    assert anchor == "claim-bbb-keeps-its-accuracy-at-90"
    assert f'href="claims.html#{anchor}"' in verdict_matrix_html(claims)
    sections = claim_sections_html(claims)
    assert '<details class="claim"><summary>' in sections and f'<p id="{anchor}">' in sections  # opens when followed
    assert "lost 0.002 [0.001, 0.003]" in sections
    assert "study&#x27;s recipe" in sections and '<a href="pruning.html">pruning</a>' in sections


def test_the_study_s_evidence_in_several_parts_is_a_list_with_its_shared_lead_said_once():
    claims = _claims(**{KEEPS: "holds"}).assign(study="lost at 90 %: SGD: mnist 0.28, fashion-mnist 0.41; Dropout 0.5: "
                                                      "mnist 0.76, fashion-mnist 0.53")
    sections = claim_sections_html(claims)
    assert "The study lost at 90 %:</p><ul><li>SGD: MNIST 0.28, Fashion-MNIST 0.41</li><li>Dropout 0.5:" in sections
    cell = claim_sections_html(_claims(**{KEEPS: "holds"}).assign(**{"ours: at the operating point": "lost: a: 1; b: 2"}))
    assert 'lost:<ul class="cell-parts"><li>a: 1</li><li>b: 2</li></ul>' in cell
    ratios = "BBB/SGD epochs: 2.7x, bench on A: 2.0x; as the study writes it: 9.8x on A"  # no lead the parts share
    cell = claim_sections_html(_claims(**{KEEPS: "holds"}).assign(**{"ours: at the operating point": ratios}))
    assert '<ul class="cell-parts"><li>BBB/SGD epochs: 2.7x, bench on A: 2.0x</li><li>as the study' in cell
    one = claim_sections_html(_claims(**{KEEPS: "holds"}).assign(study="not examined"))
    assert "The study: not examined</p>" in one and "<ul>" not in one


def test_the_fair_finding_counts_where_bbb_beats_the_best_point_estimate_under_a_prior():
    fair = pd.DataFrame({"BBB against the MAP estimate": ["less", "no clear difference", "more", "no clear difference"]})
    items = findings(None, None, fair, None)
    assert len(items) == 1 and "BBB keeps more accuracy than the best of them in one of four comparisons and less in one" in items[0]
    assert 'href="fairness.html"' in items[0] and items[0].startswith("<b>Baselines given a prior keep as much</b>")
    ahead = findings(None, None, pd.DataFrame({"BBB against the MAP estimate": ["more", "more", "less"]}), None)
    assert ahead[0].startswith("<b>BBB keeps more than baselines given a prior</b>")


def test_every_finding_is_one_sentence_with_at_most_two_of_its_own_numbers():
    import re

    fair = pd.DataFrame({"BBB against the MAP estimate": ["less", "more"]})
    frontier = {"means": pd.Series({"BBB": 2.47, "SGD + L2": 2.80}), "rival": "SGD + L2", "ratio": 68.0,
                "verdict": "inconclusive"}
    items = findings({"fixed": 0.101, "reported": 0.982}, (0.982, 0.980), fair, frontier)
    assert len(items) == 4
    for item in items:
        text = re.sub(r"<[^>]+>", "", item)
        numbers = re.findall(r"(?<![\w.])\d+(?:\.\d+)?", text)
        counted = [n for n in numbers if n not in ("90", "68")]  # the target and the ratio name the setting
        assert len(counted) <= 2, (text, counted)
    assert "from 0.982 to 0.980" in items[1] and "2.47 % against 2.80 %" in items[3] and "no better than SGD + L2" in items[3]


def test_no_fair_finding_where_the_operating_point_trained_no_point_estimate_under_a_prior():
    assert findings(None, None, pd.DataFrame({"BBB": [0.9]}), None) == []


def test_bbb_kept_reads_its_own_criterion_unpruned_and_at_ninety_percent():
    rows = [{"dataset": "mnist", "method": "bbb", "seed": s, "protocol": "corrected", "criterion": c, "fraction": f,
             "accuracy_mean": a, "accuracy_ensemble": a}
            for s in (1, 2) for c, f, a in (("snr", 0.0, 0.98), ("snr", 0.9, 0.97 + s / 100), ("magnitude", 0.9, 0.5))]
    assert bbb_kept(pd.DataFrame(rows)) == pytest.approx((0.98, 0.985))
    assert bbb_kept(pd.DataFrame(rows), "fashion-mnist") is None


def test_the_frontier_answer_reads_the_highest_anchor_each_dataset_reaches():
    sgd = [(2.0, 2.0, 2.4, 3.0, 9.0)] * 3
    bbb = [(2.0, 2.0, 2.1, 2.3, 3.0), (2.1, 2.1, 2.2, 2.4, 3.1), (1.9, 1.9, 2.0, 2.2, 2.9)]
    points = as_points(_curves({"sgd": sgd, "bbb": bbb}))  # reaches 12x (at 20x), never 68x
    read = highest_anchor(points, "mnist")
    assert read["ratio"] == 12.0 and read["rival"] == "SGD" and read["verdict"] == "holds"
    assert frontier_answer(points).startswith("On MNIST at 12x, BBB's test error is 2.30 % against 3.00 % for SGD")
    assert "lower over seeds (holds)" in frontier_answer(points)
    assert highest_anchor(as_points(_curves({"sgd": sgd})), "mnist") is None


def test_the_answer_adds_where_the_posterior_does_the_work_beyond_ninety_percent():
    claims = _claims(**{KEEPS: "holds", POSTERIOR: "does not hold"})
    per_target = pd.DataFrame({"dataset": ["mnist", "fashion-mnist"], "target": [0.99, 0.98],
                               "rule": ["chosen for 99 %", "chosen for 98 %"], "posterior": ["holds", "holds"],
                               "most accurate": ["inconclusive", "inconclusive"], "best baseline": ["SGD + L1"] * 2})
    text = answer(claims, None, per_target)
    assert "at 90 % pruned, what makes a network prunable is its prior" in text
    assert text.endswith("without a posterior on MNIST at 99 % and on Fashion-MNIST at 98 %: there its posterior does "
                         "the work.</p>")
    assert "there its posterior" not in answer(claims, None, None)
