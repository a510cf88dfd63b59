"""One table style for the whole book: every chapter's tables go through `readable`.

Human column names (with units where they have one), display names for methods, datasets and variants from one table
of labels, no integer index, integers as integers, decimals as the magnitude needs them, and "—" where a value does
not apply.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

import pandas as pd
from IPython.display import HTML
from markdown_it import MarkdownIt
from pandas.io.formats.style import Styler

from bayesprune.config import TARGETS, method_dropout
from bayesprune.report.reference import method_label

DATASET_LABELS = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


def joined(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def targets_in_words(targets: list[float]) -> str:
    """Targets in words, three or more that follow one another in TARGETS as a range: '90 to 98', '98 and 99'."""
    order = [t for t in TARGETS if t in targets]
    if len(order) == len(targets) >= 3 and list(TARGETS[TARGETS.index(order[0]):TARGETS.index(order[-1]) + 1]) == order:
        return f"{round(100 * order[0])} to {round(100 * order[-1])}"
    return joined([f"{round(100 * t)}" for t in targets])


def places(cells) -> str:
    """(dataset, target) pairs in words, grouped by dataset: 'on MNIST at 90 to 98 % and on Fashion-MNIST at 98 and
    99 %'."""
    at: dict[str, list[float]] = {}
    for dataset, target in cells:
        at.setdefault(dataset, []).append(target)
    return joined([f"on {DATASET_LABELS.get(d, d)} at {targets_in_words(targets)} %" for d, targets in at.items()])


def mnist_first(datasets) -> list[str]:
    """The datasets present, MNIST first, as the report lists them."""
    return sorted(set(datasets), key=lambda d: (d != "mnist", d))


COLUMN_LABELS = {
    "dataset": "dataset", "method": "method", "seed": "seed", "protocol": "protocol", "variant": "variant",
    "criterion": "criterion", "fraction": "pruned", "lr": "Adam rate", "epochs": "epochs trained",
    "accuracy_mean": "accuracy", "accuracy_ensemble": "accuracy (ensemble)", "achieved_sparsity": "removed",
    "val_acc": "validation accuracy", "val_acc_pruned": "validation accuracy, pruned 90 %",
    "val_nll": "validation NLL", "test_acc": "test accuracy", "train_acc": "training accuracy",
    "best_epoch": "best epoch", "best_val_acc": "best validation accuracy", "near_zero_share": "share near 0",
    "std": "sd", "kurtosis": "kurtosis", "mean": "mean", "mu_abs_mean": "mean |mu|", "sigma_median": "median sigma",
    "sigma_initial_median": "initial median sigma", "sigma_kl_optimum": "sigma at the KL optimum",
    "snr_db_median": "median SNR (dB)", "weights": "weights", "inputs": "inputs", "prior scale": "log prior scale",
    "nll": "NLL", "ece": "ECE", "brier": "Brier score", "sparsity": "removed",
}
CRITERION_LABELS = {"magnitude": "|w|", "snr": "SNR", "snr_rho": "|mu|/rho (study's code)", "log_alpha": "log alpha",
                    "log_alpha>3": "log alpha > 3"}
MISSING = "—"
OPTIMIZER_LABELS = {"sgd": "SGD", "adam": "Adam"}
VARIANT_WORDS = {  # the parts of a profile's variant codes (`profiles.yml`) that read as words
    "study": "study's recipe", "uniform": "uniform KL weights", "sgd": "SGD (momentum 0.9)", "centre": "grid centre",
    "as-trained": "as trained", "pruned90": "pruned 90 %", "lenet": "LeNet-300-100", "study-network": "784-500-500-10",
    "gaussian": "Gaussian prior", "mixture": "scale mixture", "plain": "no prior",
}
VARIANT_PATTERNS = (  # the parts that carry a value, as regular expressions and the words they stand for
    (re.compile(r"lr([0-9.]+e-?\d+|[0-9.]+)"), lambda m: f"Adam {m[1]}"),
    (re.compile(r"rho(-?\d+)"), lambda m: f"ρ ~ U({m[1]}, {int(m[1]) + 1})"),
    (re.compile(r"mu([0-9.]+)"), lambda m: f"μ spread {m[1]}"),
    (re.compile(r"(\d+)ep"), lambda m: f"{m[1]} epochs"),
    (re.compile(r"for(\d+)"), lambda m: f"chosen for {m[1]} %"),
    (re.compile(r"at(\d+)x"), lambda m: f"chosen for {m[1]}x"),
    (re.compile(r"linear(\d+)"), lambda m: f"rate falling linearly to 0 over {m[1]} epochs"),
    (re.compile(r"pi([0-9.]+)"), lambda m: f"π = {m[1]}"),
    (re.compile(r"s([12])-(-?\d+)"), lambda m: f"−log σ{m[1]} = {m[2]}"),
    (re.compile(r"s(-?\d+)"), lambda m: f"log prior scale {m[1]}"),
)
_DATASET_CODES = re.compile(r"(?<![\w-])(fashion-mnist|mnist)(?![\w-])")


def display_value(name: Any, value: Any) -> Any:
    """A code as readers see it: method, dataset, criterion and optimizer codes by their labels; anything else
    unchanged."""
    if not isinstance(value, str):
        return value
    if name == "method" or (name == "model" and is_method(value)):
        return method_label(value)
    if name == "dataset":
        return DATASET_LABELS.get(value, value)
    if name == "criterion":
        return CRITERION_LABELS.get(value, value)
    if name == "optimizer":
        return OPTIMIZER_LABELS.get(value, value)
    if name == "variant":
        return variant_label(value)
    return value


def variant_label(code: str) -> str:
    """A variant code in words, part by part ('lr1e-3.uniform.rho-3' -> 'Adam 1e-3, uniform KL weights,
    ρ ~ U(-3, -2)'); a code with a part it does not know stays as it is."""
    words = []
    for part in re.split(r"\.(?=[a-z]|\d+[a-z])", code):
        if part in VARIANT_WORDS:
            words.append(VARIANT_WORDS[part])
            continue
        matches = [(pattern.fullmatch(part), say) for pattern, say in VARIANT_PATTERNS]
        said = [say(match) for match, say in matches if match]
        if not said:
            return code
        words.append(said[0])
    return ", ".join(words)


def rate_text(lr: float) -> str:
    """A learning rate as variant codes write it (0.00003 -> '3e-5', 0.001 -> '1e-3')."""
    mantissa, exponent = f"{lr:.3e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def mean_sd(mean: float, sd: float, seeds: int, digits: int = 2) -> str:
    """'1.52 ± 0.04' over several seeds, '1.52' for one."""
    return f"{mean:.{digits}f}" + (f" ± {sd:.{digits}f}" if seeds > 1 else "")


def column_label(name: Any) -> Any:
    """A column or index name in words (tuples of a column MultiIndex level by level)."""
    if isinstance(name, tuple):
        return tuple(column_label(part) for part in name)
    if not isinstance(name, str):
        return name
    return COLUMN_LABELS.get(name, DATASET_LABELS.get(name, dataset_words(name.replace("_", " "))))


def dataset_words(text: str) -> str:
    """Text with every dataset code spelled as readers know it ('best epoch, fashion-mnist' -> '..., Fashion-MNIST')."""
    return _DATASET_CODES.sub(lambda match: DATASET_LABELS[match.group(0)], text)


def number_format(values: pd.Series) -> Any:
    """A formatter for one column: integers as integers, else decimals by magnitude (4 below 1, 2 below 100, 1
    above; a ratio, "a / b", 2 below 1 too); booleans as yes / empty, "—" where missing."""
    present = values.dropna()
    if values.dtype == bool or (len(present) and present.map(lambda v: isinstance(v, bool)).all()):
        return lambda v: "yes" if v is True else "" if v is False else MISSING
    numeric = pd.to_numeric(present, errors="coerce")
    if len(present) == 0 or numeric.isna().any():
        return lambda v: MISSING if _missing(v) else v
    if (numeric == numeric.round()).all() and numeric.abs().max() < 1e15:
        return lambda v: MISSING if _missing(v) else f"{int(round(float(v)))}"
    largest = numeric.abs().max()
    digits = 4 if largest < 1 and " / " not in str(values.name) else 2 if largest < 100 else 1
    return lambda v: MISSING if _missing(v) else f"{float(v):.{digits}f}"


def _rate_format(value: Any) -> Any:
    """A learning-rate cell as variant codes write it (1e-5, not 0.0000); text (several rates) unchanged."""
    if _missing(value):
        return MISSING
    return rate_text(float(value)) if isinstance(value, (int, float)) else value


_FRACTION_LEVELS = {COLUMN_LABELS["fraction"], COLUMN_LABELS["achieved_sparsity"]}


def fraction_label(fraction: float) -> str:
    """A share of weights as the book writes it: 0.995 -> '99.5 %', 0.9 -> '90 %'."""
    return f"{round(100 * fraction, 4):g} %"


def _index_format(name: Any) -> Any:
    """A formatter for one index level: learning rates as their codes write them (1e-3), shares of weights pruned
    as percentages (99.5 %), other decimals as short as they are exact (0.9, -2), anything else unchanged."""
    def short(value: Any) -> Any:
        if not isinstance(value, float):
            return value
        if math.isnan(value):
            return MISSING
        if name == COLUMN_LABELS["lr"]:
            return rate_text(value)
        if name in _FRACTION_LEVELS:
            return fraction_label(value)
        return f"{value:g}"
    return short


def _missing(value: Any) -> bool:
    """Whether a cell holds no value."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def shared_values(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[Any, Any]]:
    """A table without the columns and index levels that hold one value in every row (of several), and those
    values: what every row shares is said once, above the table, not repeated down a column."""
    if len(frame) < 2:
        return frame, {}
    shared = {}
    for name in [n for n in frame.index.names if n is not None and frame.index.nlevels > 1]:
        values = frame.index.get_level_values(name)
        if values.nunique(dropna=False) == 1 and frame.index.nlevels > 1:
            shared[name] = values[0]
            frame = frame.droplevel(name)
    for column in list(frame.columns):
        if len(frame.columns) > 1 and frame[column].astype(str).nunique() == 1:
            shared[column] = frame[column].iloc[0]
            frame = frame.drop(columns=column)
    return frame, shared


def readable(table: pd.DataFrame | pd.Series, caption: str | None = None, shared: bool = False) -> Styler:
    """A result table as the book shows it (see the module docstring); with `shared`, the values every row shares
    said once in the caption (`shared_values`)."""
    frame = table.to_frame() if isinstance(table, pd.Series) else table.copy()
    if shared:
        frame, common = shared_values(frame)
        said = "; ".join(f"{column_label(name)}: {display_value(name, value)}" for name, value in common.items()
                         if not _missing(value) and str(value) != "")
        caption = " ".join(part for part in (caption, f"Every row: {said}." if said else None) if part) or None
    default_index = isinstance(frame.index, pd.RangeIndex)
    for name in ("method", "dataset", "criterion", "model", "optimizer", "variant"):
        if name in frame.columns and not isinstance(frame.columns, pd.MultiIndex):
            frame[name] = frame[name].map(lambda v, n=name: display_value(n, v))
        if name in (frame.index.names or []):
            frame = frame.rename(index=lambda v, n=name: display_value(n, v), level=name)
    frame.index = frame.index.set_names([column_label(n) for n in frame.index.names])
    frame = frame.rename(columns=lambda c: display_value("method", c) if c in _method_codes(frame) else column_label(c))
    if isinstance(frame.columns, pd.MultiIndex):
        frame.columns = pd.MultiIndex.from_tuples([tuple(DATASET_LABELS.get(p, column_label(p)) if isinstance(p, str)
                                                         else p for p in c) for c in frame.columns])
    formats = {c: _rate_format if c == COLUMN_LABELS["lr"] else number_format(frame[c]) for c in frame.columns}
    styler = frame.style.format(formats).set_uuid(_digest(frame, formats))
    for level, name in enumerate(frame.index.names):
        styler = styler.format_index(_index_format(name), axis="index", level=level)
    if default_index:
        styler = styler.hide(axis="index")
    if caption:
        styler = styler.set_caption(dataset_words(caption))
    return styler


def _method_codes(frame: pd.DataFrame) -> set[str]:
    """Column names that are method codes (a table with a column per method)."""
    return {c for c in frame.columns if isinstance(c, str) and is_method(c)}


def is_method(name: str) -> bool:
    """Whether a name is a valid method code."""
    try:
        method_dropout(name)
    except ValueError:
        return False
    return True


def _digest(frame: pd.DataFrame, formats: dict[Any, Any]) -> str:
    """A stable id for a table's HTML from what it shows (not from digits beyond those), so that the same table
    renders the same page on every machine."""
    shown = [str(list(frame.index)), str(list(frame.columns))]
    shown += [str(formats[c](v)) for c in frame.columns for v in frame[c]]
    return "t" + hashlib.sha256("\x1f".join(shown).encode()).hexdigest()[:10]


def csv_download(frame: pd.DataFrame, filename: str, text: str) -> str:
    """An HTML link that downloads a table as CSV from the page itself (no server, works offline): for a table
    too wide to read on the page."""
    import base64
    import html

    payload = base64.b64encode(frame.to_csv().encode()).decode()
    return (f'<p><a download="{html.escape(filename)}" href="data:text/csv;base64,{payload}">'
            f"{html.escape(text)}</a></p>")


def short_digests(text: str) -> str:
    """A message with every SHA-256 digest cut to its first 8 hex digits ('ba891046…'): a reader compares
    digests by their start, and 64 hex digits read as a wall of numbers."""
    return re.sub(r"\b([0-9a-f]{8})[0-9a-f]{56}\b", "\\1…", text)


def reading_html(text: str) -> HTML:
    """A reading written in Markdown as HTML, for a glue another page reads: a page that glues from another
    notebook renders HTML, where it would show a Markdown object's plain-text placeholder."""
    return HTML(MarkdownIt("commonmark").render(text))


def short_seconds(value: float) -> str:
    """A tick of a seconds axis that stays narrow: 500, 2k, 10k."""
    return f"{value / 1000:g}k" if value >= 1000 else f"{value:g}"
