"""The command line explains itself: help on every flag, the valid values listed, --data-dir wherever data is
read, and a version."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bayesprune import cli


def _subparsers(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """Every (command path, parser) below parser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _subparsers(sub, (*prefix, name))


def test_every_flag_of_every_command_has_help_text():
    bare = []
    for path, parser in _subparsers(cli._parser()):
        for action in parser._actions:
            if action.option_strings and action.help in (None, "", argparse.SUPPRESS):
                bare.append(f"{' '.join(path)} {action.option_strings[0]}")
    assert not bare, bare


def test_every_command_that_reads_data_takes_data_dir_after_its_name():
    parser = cli._parser()
    for argv in (["run", "--profile", "smoke"], ["train"], ["bench"], ["recheck", "x"], ["time-training"],
                 ["data", "fetch"]):
        assert parser.parse_args([*argv, "--data-dir", "/d"]).data_dir == Path("/d")
        assert parser.parse_args(["--data-dir", "/e", *argv]).data_dir == Path("/e")  # before the command too
        assert parser.parse_args(argv).data_dir is None


def test_closed_sets_list_their_values_in_the_error(capsys):
    with pytest.raises(SystemExit):
        cli._parser().parse_args(["train", "--optimizer", "rmsprop"])
    assert "unknown optimizer 'rmsprop'; valid choices: adam, sgd" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli._parser().parse_args(["run", "--executor", "slurm"])
    assert "unknown executor 'slurm'; valid choices: local, ray" in capsys.readouterr().err
    assert "{mnist,fashion-mnist}" in dict(_subparsers(cli._parser()))[("train",)].format_usage()  # shown in the usage


def test_train_flags_take_their_help_from_the_config_fields_comments():
    helps = cli.field_help()
    assert helps["lr"] == "the study's Adam learning rate" and "half" not in helps["epochs"]
    train = dict(_subparsers(cli._parser()))[("train",)]
    assert any(a.help == helps["patience"] for a in train._actions)


def test_version_is_printed(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli._parser().parse_args(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.startswith("bayesprune ")
