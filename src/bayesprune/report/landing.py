"""The landing page: the verdict matrix (claims as rows, regimes as columns, one coloured word a cell) and the
findings in plain words, each with its key number computed from the runs and a link to the chapter behind it."""

from __future__ import annotations

import re
from html import escape

import pandas as pd

from bayesprune.report.claims import accuracy_table, fair_counts
from bayesprune.report.formatting import dataset_words, joined
from bayesprune.report.reference import REPORTED
from bayesprune.report.target_claims import posterior_beyond_ninety

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
    ("holds only", "study's code only", "only"), ("holds for", "partly", "partly"), ("holds", "holds", "holds"),
    ("does not hold for", "partly", "partly"), ("does not hold", "does not hold", "fails"),
    ("inconclusive", "inconclusive", "unclear"), ("partly", "partly", "partly"), ("weak", "weak", "unclear"),
    ("not tested", "—", "none"),
)
WORDS = {"holds": "holds", "does not hold": "fails", "inconclusive": "unclear"}  # a part's word in a two-part verdict
VERDICT_KEY = {  # what each word of the matrix means
    "holds": "the interval over seeds clears the claim's threshold",
    "does not hold": "the interval lies on the wrong side of the threshold",
    "inconclusive": "the interval straddles the threshold: the seeds cannot decide",
    "partly": "holds for some methods or datasets, not for others",
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
    """(word, class) of a verdict: holds, does not hold, inconclusive, partly, the study's code only, or —; a verdict
    in two parts (Table 2's shape and level) shows both where they differ."""
    if verdict.startswith("shape: ") and "; level: " in verdict:
        shape, level = (outcome(part)[0].removesuffix(" ¹") for part in verdict.removeprefix("shape: ").split("; level: "))
        if shape == level:
            return outcome(verdict.split("; level: ")[1])
        kind = "partly" if "holds" in (shape, level) else "fails" if "does not hold" in (shape, level) else "unclear"
        return f"shape {WORDS.get(shape, shape)}, level {WORDS.get(level, level)}", kind
    if verdict.startswith("mixed: "):  # several datasets or ratios judged apart
        words = {outcome(part.strip())[0].removesuffix(" ¹") for part in verdict.removeprefix("mixed: ").split(",")}
        return ("partly", "partly") if "holds" in words else ("does not hold", "fails") if "does not hold" in words \
            else ("inconclusive", "unclear")
    for opening, word, kind in OUTCOMES:
        if verdict.startswith(opening):
            return word + (" ¹" if "(one seed)" in verdict else ""), kind
    return verdict, "none"


def claim_anchor(claim: str) -> str:
    """The id of a claim's section on the claims page."""
    return "claim-" + re.sub(r"[^a-z0-9]+", "-", short_claim(claim).lower()).strip("-")


def verdict_matrix_html(claims: pd.DataFrame, link: str = "claims.html") -> str:
    """Claims as rows, regimes as columns, each cell one coloured word; each row links to its claim's section at
    `link` (its numbers and intervals), and a key says what each word shown means."""
    regimes = [c.removeprefix("verdict: ") for c in claims.columns if c.startswith("verdict: ")]
    head = "".join(f"<th>{escape(short_regime(r))}</th>" for r in regimes)
    rows, shown = [], {}
    for _, row in claims.iterrows():
        cells = []
        for regime in regimes:
            word, kind = outcome(str(row[f"verdict: {regime}"]))
            shown[word.removesuffix(" ¹")] = kind
            cells.append(f'<td class="verdict {kind}" style="color:{COLOURS[kind]}">{escape(word)}</td>')
        target = f"{link}#{claim_anchor(row['claim'])}"
        rows.append(f'<tr><th scope="row"><a href="{target}">{escape(short_claim(row["claim"]))}</a></th>'
                    f'{"".join(cells)}</tr>')
    key = "; ".join(f'<span style="color:{COLOURS[shown[word]]}">{escape(word)}</span>: {escape(meaning)}'
                    for word, meaning in VERDICT_KEY.items() if word in shown)
    if any(word.startswith("shape ") for word in shown):
        key += ("; shape …, level …: Blundell et al.'s Table 2 judged in two parts, how much pruning raises the "
                "error and the unpruned error itself")
    one_seed = " ¹ rests on one seed." if any("¹" in row for row in rows) else ""
    note = f'<p class="matrix-note"><small>{key}.{one_seed} Each claim links to its numbers and intervals.</small></p>'
    return (f'<div class="verdict-frame"><table class="verdict-matrix"><thead><tr><th>claim</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>{note}')


def claim_sections_html(claims: pd.DataFrame, link_prefix: str = "") -> str:
    """One collapsed section per claim (its id `claim_anchor`, so the matrix's links open it): the study's
    evidence, then per regime the verdict and our numbers with their intervals, and the chapters behind it."""
    regimes = [c.removeprefix("verdict: ") for c in claims.columns if c.startswith("verdict: ")]
    sections = []
    for _, row in claims.iterrows():
        body = "".join(
            f'<tr><th scope="row">{escape(short_regime(r))}</th><td>{escape(str(row[f"verdict: {r}"]))}</td>'
            f'<td><small>{_cell_html(dataset_words(str(row[f"ours: {r}"])))}</small></td></tr>'
            for r in regimes if outcome(str(row[f"verdict: {r}"]))[0] != "—")
        links = ", ".join(f'<a href="{link_prefix}{name}.html">{escape(name.replace("_", " "))}</a>' for name in row["see"])
        sections.append(
            f'<details class="claim"><summary><b>{escape(row["claim"])}</b></summary>'
            # the id sits inside the collapsed part, so that following a link to it opens the section
            + _study_html(claim_anchor(row["claim"]), dataset_words(str(row["study"])))
            + f'<table class="claim-cells"><thead><tr><th>regime</th><th>verdict</th><th>our numbers (95 % intervals '
            f'over seeds)</th></tr></thead><tbody>{body}</tbody></table>'
            + (f"<p>The chapters behind it: {links}.</p>" if links else "") + "</details>")
    return "".join(sections)


def _lead_and_parts(text: str) -> tuple[str, list[str]]:
    """A text of several parts ('lost at 90 %: a: x; b: y') as the lead its parts share and the parts: a lead is
    there only where, without it, the first part is shaped as the second ('a: x' as 'b: y'), a name first."""
    parts = text.split("; ")
    if len(parts) > 1 and ": " in parts[0]:
        lead, rest = parts[0].split(": ", 1)
        if rest[:1].isalpha() and rest.count(": ") == parts[1].count(": "):
            return lead, [rest, *parts[1:]]
    return "", parts


def _study_html(anchor: str, study: str) -> str:
    """The study's evidence for a claim: a sentence, or its parts as a list with their shared lead said once."""
    lead, parts = _lead_and_parts(study)
    if len(parts) == 1:
        return f'<p id="{anchor}">The study: {escape(study)}</p>'
    items = "".join(f"<li>{escape(part)}</li>" for part in parts)
    return f'<p id="{anchor}">The study{" " + escape(lead) if lead else ""}:</p><ul>{items}</ul>'


def _cell_html(text: str) -> str:
    """Our numbers in a claim's cell: one line per part where there are several."""
    lead, parts = _lead_and_parts(text)
    if len(parts) == 1:
        return escape(text)
    items = "".join(f"<li>{escape(part)}</li>" for part in parts)
    return f'{escape(lead) + ":" if lead else ""}<ul class="cell-parts">{items}</ul>'


def verdicts_of(claims: pd.DataFrame, opening: str, skip: str = "the study's recipe") -> list[str]:
    """A claim's verdict words (`outcome`) in every regime that tested it, the study's recipe left out."""
    rows = claims[claims["claim"].str.startswith(opening)] if "claim" in claims else claims
    if rows.empty:
        return []
    row = rows.iloc[0]
    words = [outcome(str(row[c]))[0].removesuffix(" ¹") for c in claims.columns
             if c.startswith("verdict: ") and not c.removeprefix("verdict: ").startswith(skip)]
    return [w for w in words if w != "—"]


def answer(claims: pd.DataFrame, study_ablation: dict[str, float] | None, per_target: pd.DataFrame | None = None) -> str:
    """The report's answer in plain sentences, computed from the verdicts (HTML): a paragraph at 90 % from the claims,
    and one beyond it from the per-target judgement (`target_claims.target_table`) where its seeds decide."""
    sentences = []
    if study_ablation:
        sentences.append(
            "Not as the study shows it: its BBB rows stay flat because its pruning never reaches the network, and once "
            f"it does, the study's own BBB falls to {study_ablation['fixed']:.2f} accuracy at 90 % pruned.")
    keeps = verdicts_of(claims, "BBB keeps its accuracy")
    if "holds" in keeps:
        sentences.append("A BBB network trained until its posterior learns does keep its accuracy at 90 % pruned, "
                         "when it is chosen for that sparsity on validation data.")
    elif keeps:
        sentences.append("Even trained until its posterior learns, BBB does not keep its accuracy at 90 % pruned.")
    posterior = verdicts_of(claims, "BBB's robustness to pruning comes from its posterior")
    if posterior and all(w == "does not hold" for w in posterior):
        sentences.append("But ordinary networks trained with a prior (L1 or L2 weight decay, or BBB's own prior "
                         "without a posterior) keep as much or more: at 90 % pruned, what makes a network prunable is "
                         "its prior, not Bayesian inference.")
    elif "holds" in posterior:
        sentences.append("Its posterior adds accuracy after pruning that the same prior alone does not.")
    elif posterior:
        sentences.append("Whether its posterior adds anything beyond its prior, the seeds cannot yet decide.")
    beyond = posterior_beyond_ninety(per_target) if per_target is not None else ""
    if not sentences:
        return ""
    first = '<p class="answer"><b>The answer.</b> ' + " ".join(sentences) + "</p>"
    return first + (f'<p class="answer">{beyond}</p>' if beyond else "")  # beyond 90 %: a paragraph of its own


def findings(study_ablation: dict[str, float] | None, kept: tuple[float, float] | None, fair: pd.DataFrame | None,
             frontier: dict | None) -> list[str]:
    """At most four findings in plain words (HTML), one sentence and at most two numbers each, each linking to its
    chapter. kept: BBB's MNIST test accuracy dense and 90 % pruned, chosen for it; fair:
    `claims.fair_comparison_table`; frontier: `frontier.highest_anchor` on MNIST."""
    items = []
    if study_ablation:
        items.append(
            f"<b>The study's flat BBB rows come from its code</b>: with its masks applied, its own BBB keeps "
            f"{study_ablation['fixed']:.3f} at 90 % pruned, not the {study_ablation['reported']:.3f} it reports. "
            '<a href="audit.html">Audit</a>')
    if kept:
        items.append(f"<b>Trained to work, BBB keeps its accuracy</b>: chosen for 90 % pruned on validation data, its "
                     f"MNIST test accuracy goes from {kept[0]:.3f} to {kept[1]:.3f}. "
                     '<a href="operating_point.html">Operating point</a>')
    if fair is not None and "BBB against the MAP estimate" in fair:
        counts = fair_counts(fair)
        lead = ("BBB keeps more than baselines given a prior" if counts["more"] > counts["less"]
                else "Baselines given a prior keep as much")
        items.append(
            f"<b>{lead}</b>: BBB keeps more accuracy than the best of them in "
            f"{count_word(counts['more'])} of {count_word(len(fair))} comparisons and less in {count_word(counts['less'])}. "
            '<a href="fairness.html">A fair comparison</a>')
    if frontier:
        means, rival = frontier["means"], frontier["rival"]
        better = "no better" if frontier["verdict"] != "holds" else "better"
        items.append(
            f"<b>On the compression frontier BBB compresses {better} than {rival}</b>: at {frontier['ratio']:.0f}x on "
            f"MNIST its test error is {means['BBB']:.2f} % against {means[rival]:.2f} % ({frontier['verdict']} over "
            'seeds). <a href="frontier.html">Frontier</a>')
    return items


COUNT_WORDS = ("none", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
               "twelve")


def count_word(count: int) -> str:
    """A small count in words (so that a sentence's numbers are its measurements), a larger one in digits."""
    return COUNT_WORDS[count] if 0 <= count < len(COUNT_WORDS) else str(count)


def bbb_kept(pruning: pd.DataFrame, dataset: str = "mnist") -> tuple[float, float] | None:
    """BBB's test accuracy unpruned and at 90 % pruned by its own criterion (corrected runs, mean over seeds)."""
    accuracy = accuracy_table(pruning)
    try:
        at = accuracy.loc[(dataset, "corrected", "bbb")]
        return float(at.loc[0.0]), float(at.loc[0.9])
    except KeyError:
        return None


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


def claims_reading(claims: pd.DataFrame) -> str:
    """The claims chapter's answer in one sentence: how many of the study's claims hold in every regime that
    tests them (the study's recipe aside), fail in every one, hold only for the study's code, or depend on the
    regime, the method or the seeds."""
    kinds = {"holds": "{n} {hold} wherever {it is} tested", "does not hold": "{n} {hold} nowhere",
             "study's code only": "{n} {hold} only for the study's code",
             "depends": "{n} {depend} on the regime, the method or the seeds"}
    groups: dict[str, list[str]] = {kind: [] for kind in kinds}
    for claim in claims["claim"]:
        words = set(verdicts_of(claims, claim))
        if words:
            groups[words.pop() if len(words) == 1 and words <= set(kinds) else "depends"].append(short_claim(claim))
    parts = []
    for kind, template in kinds.items():
        n = len(groups[kind])
        if n:
            one = n == 1
            text = template.format(n=n, hold="holds" if one else "hold", depend="depends" if one else "depend",
                                   **{"it is": "it is" if one else "they are"})
            parts.append(text + (f" ({', '.join(groups[kind])})" if kind != "depends" else ""))
    tested = sum(map(len, groups.values()))
    if not parts:
        return "No claim has been tested beyond the study's own recipe."
    return f"Of the {tested} claims tested beyond the study's own recipe, {joined(parts)}."
