"""`edged --help` speaks to the people who run it: every command and argument says what it is."""

from __future__ import annotations

import argparse
import subprocess
import sys

from edged.cli import build_parser


def _undocumented(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                if not helps.get(name):
                    missing.append(f"{prefix}{name}")
                missing += _undocumented(sub, f"{prefix}{name} ")
        elif not action.help:
            missing.append(f"{prefix}{'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_command_and_argument_has_a_help_text() -> None:
    assert _undocumented(build_parser(), "edged ") == []


def test_the_top_level_help_says_how_to_start() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "edged", "--help"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    assert "Try it with `edged demo`" in result.stdout
    assert "register" not in result.stdout and "module" not in result.stdout
