"""docs/CLI.md is every command's --help as the code declares it: an option added, renamed or
removed without the page following fails here."""

import sys

import pytest

from legacy_assistant.cli.reference import markdown_reference
from tests.helpers import ROOT

PAGE = ROOT / "docs" / "CLI.md"
PRINTED_WITH = (3, 11)  # argparse lays help out otherwise in other Python versions (3.13 widens columns)


@pytest.mark.skipif(sys.version_info[:2] != PRINTED_WITH, reason="the page was printed by Python 3.11's argparse")
def test_the_command_line_reference_is_what_the_parsers_print():
    assert PAGE.read_text(encoding="utf-8") == markdown_reference(), (
        "docs/CLI.md is stale: python -m legacy_assistant.cli.reference > docs/CLI.md"
    )


def test_the_reference_holds_every_option_of_every_command():
    import argparse

    from legacy_assistant.cli import build_parser

    page = PAGE.read_text(encoding="utf-8")
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert len(commands) >= 12
    for name, command in commands.items():
        section = page.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
        for action in command._actions:
            for option in action.option_strings:
                assert option in section, (name, option)


def test_no_help_sends_the_reader_to_docs_an_installed_copy_lacks():
    """A wheel carries no docs/: serve's --help named the settings read from the environment
    only and sent the reader to docs/DEPLOYMENT.md for what they do."""
    from legacy_assistant.serving import settings

    page = markdown_reference()
    assert "docs/" not in page.split("<!-- printed by", 1)[1]
    serve = " ".join(page.split("\n## serve\n", 1)[1].split("\n## ", 1)[0].split())  # unwrapped
    environment_only = [s for s in settings.SETTINGS if s.option is None]
    assert len(environment_only) >= 4
    for setting in environment_only:
        assert f"{setting.env}: {setting.help} (default {setting.default_text()})" in serve, setting.env


def test_the_help_names_where_an_installed_copy_keeps_the_shipped_models():
    """An installed copy has no exported/ folder: its shipped models lie under PREFIX/share. The
    help said the default was exported/default, a folder an installed copy's user does not have;
    it names both places, and no path of the machine that printed it."""
    from pathlib import PurePosixPath

    from legacy_assistant.defaults import INSTALLED_EXPORTS, SHARE_SUBDIR

    assert INSTALLED_EXPORTS == str(PurePosixPath("PREFIX", *SHARE_SUBDIR.parts))  # where shipped() looks
    page = markdown_reference()
    sections = {name: " ".join(page.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0].split())
                for name in ("serve", "chat")}
    for name, role, folder in (("serve", "model", "default"), ("serve", "responder", "responder")):
        assert (f"(default the shipped {role}: exported/{folder} in a checkout, "
                f"PREFIX/share/legacy-assistant/exported/{folder} when installed;") in sections[name], role
    assert ("alone: the shipped one, exported/responder in a checkout, "
            "PREFIX/share/legacy-assistant/exported/responder when installed)") in sections["chat"]
    assert str(ROOT) not in page


def test_train_says_its_stemmers_are_english_and_what_the_unicode_tokenizer_does():
    """``--stemmer snowball`` read as a Snowball stemmer of the data's language: the stemmers and
    tokenizers of ``train`` had no help at all."""
    from legacy_assistant.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    helps = {a.dest: " ".join((a.help or "").split()) for a in commands["train"]._actions}
    assert "English rules" in helps["stemmer"] and "other languages, none" in helps["stemmer"]
    assert "each Chinese or Japanese character a word" in helps["tokenizer"]
