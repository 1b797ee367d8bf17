"""`edged doctor`: is every device the config expects present, and if not, what to do."""

from __future__ import annotations

import argparse
from typing import Any

from edged.cli.common import EXIT_CONFIG, add_config_option, load_or_report

EXIT_PROBLEMS = 1


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "doctor", help="check the configured devices and say how to fix what is wrong"
    )
    add_config_option(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from hal.doctor import diagnose, format_findings

    config = load_or_report(args.config)
    if config is None:
        return EXIT_CONFIG
    findings = diagnose(
        config.scanner, config.camera, config.printer, config.display, release_cfg=config.release
    )
    print(format_findings(findings))
    return 0 if all(f.ok for f in findings) else EXIT_PROBLEMS
