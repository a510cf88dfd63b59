"""The landing page: the verdict matrix (claims as rows, regimes as columns, one coloured word a cell) and the
findings in plain words, each with its key number computed from the runs and a link to the chapter behind it."""

from __future__ import annotations

from html import escape

import pandas as pd

from bayesprune.report.claims import fair_counts
from bayesprune.report.formatting import DATASET_LABELS
from bayesprune.report.frontier import compression_verdict, same_ratio_phrases
from bayesprune.report.reference import REPORTED

SHORT_CLAIMS = {  # a claim's opening words -> its row label in the matrix
    "BBB keeps its accuracy": "BBB keeps its accuracy at 90 %",
    "SGD and dropout networks collapse": "SGD and dropout collapse at 90 %",
    "At 90 % pruned, BBB is the most accurate": "BBB most accurate at 90 %",
    "BBB outperforms all other methods": "“by a huge margin” (abstract)",
    "BBB's robustness to pruning comes from its posterior": "the posterior, not the prior",
    "BBB costs about 10x": "BBB costs 10x SGD",
    "BBB needs fewer epochs": "BBB needs fewer epochs",
    "Networks whose weights spread wider": "wider weights prune better",
    "All models still under-fit": "all models under-fit",
    "Blundell et al.'s Table 2": "Blundell's Table 2",
    "Bayesian training (BBB) compresses better": "BBB compresses better",
    "Pruned BBB keeps its calibration": "pruned BBB keeps its uncertainty",
    "Bayesian compression with group priors": "group priors prune units and bits",
}
REGIME_SHORT = {"the study's recipe": "study's recipe", "profile": "this profile",
                "at the operating point, pruned 90 %": "operating point, chosen pruned",
                "at the operating point": "operating point",
                "Blundell": "Blundell's setting", "LeNet-300-100": "frontier (LeNet)", "Bayesian compression": "BC-GNJ"}
OUTCOMES = (  # (verdict's opening, word shown, class): the first that matches
    ("holds only", "study's code only", "only"), ("holds for", "partly", "partly"), ("shape: holds; level: holds", "holds", "holds"),
    ("shape: holds", "shape only", "partly"), ("holds", "holds", "holds"), ("does not hold for", "partly", "partly"),
    ("does not hold", "does not hold", "fails"), ("inconclusive", "inconclusive", "unclear"),
    ("partly", "partly", "partly"), ("mixed", "partly", "partly"), ("weak", "weak", "unclear"),
    ("not tested", "—", "none"), ("shape: does not hold", "does not hold", "fails"),
    ("shape: inconclusive", "inconclusive", "unclear"),
)
VERDICT_KEY = {  # what each word of the matrix means
    "holds": "the interval over seeds clears the claim's threshold",
    "does not hold": "the interval lies on the wrong side of the threshold",
    "inconclusive": "the interval straddles the threshold: the seeds cannot decide",
    "partly": "holds for some methods or datasets, not for others",
    "shape only": "the curve has the claimed shape but not the claimed level",
    "weak": "the effect goes the claimed way but is weak or mixed",
    "study's code only": "holds only with the study's code paths switched on",
    "—": "not tested in this regime",
}
COLOURS = {"holds": "#117733", "fails": "#CC3311", "unclear": "#BB8800", "partly": "#0077BB", "only": "#AA4499",
           "none": "#999999"}


def short_claim(claim: str) -> str:
    """The matrix's row label of a claim."""
    return next((short for opening, short in SHORT_CLAIMS.items() if claim.startswith(opening)), claim)


def short_regime(title: str) -> str:
    """The matrix's column label of a regime title."""
    return next((short for opening, short in REGIME_SHORT.items() if title.startswith(opening)), title)


def outcome(verdict: str) -> tuple[str, str]:
    """(word, class) of a verdict: holds, does not hold, inconclusive, partly, the study's code only, or —."""
    for opening, word, kind in OUTCOMES:
        if verdict.startswith(opening):
            return word + (" ¹" if "(one seed)" in verdict else ""), kind
    return verdict, "none"


def verdict_matrix_html(claims: pd.DataFrame, link: str = "claims.html") -> str:
    """Claims as rows, regimes as columns, each cell one coloured word; the numbers stay in the claims chapter."""
    regimes = [c.removeprefix("verdict: ") for c in claims.columns if c.startswith("verdict: ")]
    head = "".join(f"<th>{escape(short_regime(r))}</th>" for r in regimes)
    rows, shown = [], {}
    for _, row in claims.iterrows():
        cells = []
        for regime in regimes:
            word, kind = outcome(str(row[f"verdict: {regime}"]))
            shown[word.removesuffix(" ¹")] = kind
            cells.append(f'<td class="verdict {kind}" style="color:{COLOURS[kind]}">{escape(word)}</td>')
        rows.append(f'<tr><th scope="row"><a href="{link}">{escape(short_claim(row["claim"]))}</a></th>{"".join(cells)}</tr>')
    key = "; ".join(f'<span style="color:{COLOURS[shown[word]]}">{escape(word)}</span>: {escape(meaning)}'
                    for word, meaning in VERDICT_KEY.items() if word in shown)
    one_seed = " ¹ rests on one seed." if any("¹" in row for row in rows) else ""
    note = (f'<p class="matrix-note"><small>{key}.{one_seed} Each cell\'s numbers, interval and rule: '
            f'<a href="{link}">the claims chapter</a>.</small></p>')
    return (f'<table class="verdict-matrix" style="font-size: 0.85em; width: 100%"><thead><tr><th>claim</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>{note}')


def findings(study_ablation: dict[str, float] | None, headline: dict[str, str], fair: pd.DataFrame | None,
             compression: str | None) -> list[str]:
    """The landing page's findings in plain words (HTML), each with its number and a link to its chapter (`fair`:
    `claims.fair_comparison_table` of the operating point)."""
    items = []
    if study_ablation:
        items.append(
            f"<b>The study's flat BBB rows come from its code</b>: its pruning never reaches the network. With the "
            f"masks applied, its own BBB keeps {study_ablation['fixed']:.3f} at 90 % pruned "
            f"(reported {study_ablation['reported']:.3f}). <a href=\"audit.html\">Audit</a>")
    rules = [(key, rule) for key, rule in (("point", "as trained"), ("point-pruned", "chosen for accuracy after pruning"))
             if f"{key}_bbb" in headline]
    if rules:
        items.append("<b>BBB at its operating point</b>, from dense to 90 % pruned by signal-to-noise: " + "; ".join(
            f"{rule}, {headline[f'{key}_bbb']}, where the best baseline keeps {headline.get(f'{key}_baseline', 'none')}"
            for key, rule in rules) + '. <a href="operating_point.html">Operating point</a>')
    if fair is not None and "BBB against the MAP estimate" in fair:
        counts = fair_counts(fair)
        items.append(
            f"<b>Give the baselines a prior</b>: against the best point estimate trained under one, BBB keeps more "
            f"accuracy in {counts['more']} of {len(fair)} comparisons, less in {counts['less']}, and "
            f"the seeds cannot tell them apart in {counts['no clear difference']} (90 % and 98 % pruned, both "
            'selection rules and datasets, 95 % intervals). <a href="claims.html">A fair comparison</a>')
    if compression:
        items.append(f'<b>On the compression frontier</b> (LeNet-300-100): {compression}. <a href="frontier.html">Frontier</a>')
    return items


def findings_html(items: list[str]) -> str:
    """The findings as one HTML list."""
    return "<ul class=\"findings\">" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def masks_reach_the_network(ablation: pd.DataFrame, dataset: str = "mnist") -> dict[str, float] | None:
    """The study's own BBB at 90 % pruned once its pruning reaches the network (the ablation's pruning_detached
    fixed alone, first seed), beside its reported number; None where the ablation has not run."""
    rows = ablation[(ablation["method"] == "bbb") & (ablation["protocol"] == "study") & (ablation["dataset"] == dataset)
                    & (ablation["fixed"] == "pruning_detached") & (ablation["fraction"].round(6) == 0.9)]
    if rows.empty:
        return None
    return {"fixed": float(rows["accuracy_mean"].mean()), "reported": REPORTED[dataset]["bbb"][3]}


def compression_finding(points: pd.DataFrame) -> str | None:
    """BBB's test error against the best method without a posterior's (and Sparse VD's) at the published anchors'
    compression ratios (mean over seeds, as the claim reads them), with the verdict, in words, per dataset (named
    where there are several, MNIST first); None where BBB and such a method never reach an anchor's ratio."""
    datasets = sorted(points["dataset"].unique(), key=lambda d: d != "mnist")
    parts = []
    for dataset in datasets:
        ours = points[points["dataset"] == dataset]
        phrases = same_ratio_phrases(ours)
        if phrases:
            parts.append(("" if len(datasets) == 1 else f"{DATASET_LABELS.get(dataset, dataset)}: ")
                         + "; ".join(phrases) + " (BBB compresses better than every method without a posterior: "
                         f"{compression_verdict(ours)[1]}, by the 95 % interval over seeds)")
    return ". ".join(parts) or None
