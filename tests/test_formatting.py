"""One table style: display names, no integer index, '—' for what does not apply, integers as integers."""

from __future__ import annotations

import math

import pandas as pd

from bayesprune.pipeline.profiles import load_profiles
from bayesprune.report.formatting import is_method, readable, variant_label


def test_a_table_reads_as_the_book_shows_it():
    frame = pd.DataFrame({"dataset": ["mnist", "fashion-mnist"], "method": ["dropout0.5", "sgd-l1"],
                          "epochs": [60.0, 41.0], "best_val_acc": [0.98123, math.nan], "chosen": [True, False]})
    html = readable(frame).to_html()
    assert "Fashion-MNIST" in html and "Dropout 0.5" in html and "SGD + L1" in html
    assert "dropout0.5" not in html and "fashion-mnist" not in html
    assert "NaN" not in html and "nan" not in html and "—" in html
    assert ">60<" in html and "60.0" not in html  # integers as integers
    assert ">0.9812<" in html and "best validation accuracy" in html and "best_val_acc" not in html
    assert 'class="row_heading' not in html  # the integer index is hidden


def test_a_ratio_reads_to_two_decimals_whatever_its_magnitude():
    html = readable(pd.DataFrame({"now / then": [0.18, 0.26], "share": [0.18, 0.26]})).to_html()
    assert ">0.18<" in html and ">0.1800<" in html  # the ratio to 2 decimals, another share below 1 to 4


def test_index_levels_and_method_columns_take_display_names_and_the_html_is_stable():
    frame = pd.DataFrame({"mnist": [0.9, 0.8]}, index=pd.Index(["bbb", "sgd-mixture"], name="method"))
    first, second = readable(frame).to_html(), readable(frame.copy()).to_html()
    assert "MAP, BBB's prior" in first and "MNIST" in first and first == second
    wide = pd.DataFrame({"sgd": [0.5], "bbb": [0.9]})
    assert "SGD" in readable(wide).to_html()


def test_decimal_index_levels_read_as_short_as_they_are_exact_rates_as_their_codes_and_pruned_shares_in_percent():
    index = pd.MultiIndex.from_tuples([("sgd", 1e-5, "—", 0.0, 0.25), ("sgd-l2", 1e-3, -2.0, 0.995, 0.9)],
                                      names=["method", "lr", "prior scale", "fraction", "keep"])
    html = readable(pd.DataFrame({"val_acc": [0.7362, 0.8847]}, index=index)).to_html()
    assert ">1e-5<" in html and ">1e-3<" in html and ">-2<" in html and ">0.25<" in html and ">0.9<" in html
    assert ">0 %<" in html and ">99.5 %<" in html and ">0<" not in html
    assert "0.000010" not in html and "-2.000000" not in html and "0.900000" not in html
    columns = readable(pd.DataFrame({"lr": [1e-5, None], "val_acc": [0.7362, 0.8847]})).to_html()
    assert ">1e-5<" in columns and ">—<" in columns and "0.0000" not in columns


def test_method_codes_are_told_from_other_names():
    assert is_method("dropout0.5-l2") and is_method("bbb")
    assert not is_method("fashion-mnist") and not is_method("epochs")


def test_dataset_codes_inside_names_and_text_are_spelled_out():
    from bayesprune.report.formatting import column_label, dataset_words

    assert column_label("best epoch, fashion-mnist") == "best epoch, Fashion-MNIST"
    assert dataset_words("mnist 0.01, fashion-mnist 0.02; mnist-sgd-corrected-s0") == (
        "MNIST 0.01, Fashion-MNIST 0.02; mnist-sgd-corrected-s0")  # run names stay as they are


def test_the_table_id_depends_on_what_is_shown_not_on_digits_beyond_it():
    import re

    first = pd.DataFrame({"ece": [0.0123456789]})
    noise = pd.DataFrame({"ece": [0.0123456790]})  # the same four decimals shown
    ids = [re.search(r'id="T_(\w+?)_', readable(f).to_html()).group(1) for f in (first, noise)]
    assert ids[0] == ids[1]
    other = re.search(r'id="T_(\w+?)_', readable(pd.DataFrame({"ece": [0.02]})).to_html()).group(1)
    assert other != ids[0]


def test_an_optimizer_is_named_as_readers_know_it():
    from bayesprune.report.formatting import display_value

    assert display_value("optimizer", "sgd") == "SGD" and display_value("optimizer", "adam") == "Adam"
    assert display_value("lr", "sgd") == "sgd"  # only the optimizer column is relabelled


def test_every_variant_a_reference_profile_defines_reads_as_words():
    variants = {name for profile in load_profiles().values() if profile.reference for name, _ in profile.variants}
    labels = {code: variant_label(code) for code in variants}
    assert not [code for code, label in labels.items() if label == code], "a variant shown by its code"
    assert labels["lr1e-3.uniform.rho-3"] == "Adam 1e-3, uniform KL weights, ρ ~ U(-3, -2)"
    assert labels["lr1e-3.uniform.60ep"] == "Adam 1e-3, uniform KL weights, 60 epochs"
    assert variant_label("at68x") == "chosen for 68x"
    assert labels["s1-1"] == "−log σ1 = 1" and labels["lr1e-3.s-1"] == "Adam 1e-3, log prior scale -1"
    assert variant_label("lr1e-3.unheard") == "lr1e-3.unheard"
    shown = readable(pd.DataFrame({"variant": ["pi0.25"], "x": [1.0]}).set_index("variant")).to_html()
    assert "π = 0.25" in shown and "pi0.25" not in shown


def test_a_caption_names_datasets_as_readers_know_them():
    shown = readable(pd.DataFrame({"x": [1.0]}), caption="fashion-mnist, corrected protocol").to_html()
    assert "Fashion-MNIST, corrected protocol" in shown and "fashion-mnist" not in shown


def test_what_every_row_shares_is_said_once_above_the_table_and_a_wide_table_downloads_whole():
    import base64
    import io
    import re

    from bayesprune.report.formatting import csv_download, readable, shared_values

    frame = pd.DataFrame({"seeds": [3, 3], "accuracy": [0.91, 0.95], "variant": ["", ""]},
                         index=pd.MultiIndex.from_tuples([("mnist", "sgd"), ("mnist", "bbb")], names=["dataset", "method"]))
    kept, common = shared_values(frame)
    assert list(kept.columns) == ["accuracy"] and kept.index.names == ["method"]
    assert common == {"dataset": "mnist", "seeds": 3, "variant": ""}
    html = readable(frame, shared=True).to_html()
    assert "<caption>Every row: dataset: MNIST; seeds: 3.</caption>" in html and "variant" not in html
    assert shared_values(frame.iloc[:1])[1] == {}  # one row: nothing is shared with another
    link = csv_download(frame, "table.csv", "the whole table")
    payload = re.search(r'base64,([^"]+)"', link).group(1)
    read = pd.read_csv(io.BytesIO(base64.b64decode(payload)), index_col=[0, 1], keep_default_na=False)
    assert read.equals(frame)


def test_a_digest_is_cut_to_its_start_and_other_hex_is_left():
    from bayesprune.report.formatting import short_digests

    digest = "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
    assert short_digests(f"expected SHA-256 {digest}, got {digest}") == "expected SHA-256 ba891046…, got ba891046…"
    assert short_digests("commit 1dc0cc3 and 0xdeadbeef stay") == "commit 1dc0cc3 and 0xdeadbeef stay"


def test_three_targets_in_a_row_read_as_a_range_and_gaps_as_a_list():
    from bayesprune.report.formatting import places, targets_in_words

    assert targets_in_words([0.9, 0.95, 0.98]) == "90 to 98"
    assert targets_in_words([0.9, 0.98, 0.99]) == "90, 98 and 99"  # 95 is missing: no range
    assert targets_in_words([0.98, 0.99]) == "98 and 99"
    assert places([("mnist", 0.95), ("mnist", 0.98), ("mnist", 0.99), ("fashion-mnist", 0.9)]) == (
        "on MNIST at 95 to 99 % and on Fashion-MNIST at 90 %")
