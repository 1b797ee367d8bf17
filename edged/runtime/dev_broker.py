"""Which development broker this machine has: Mosquitto (MQTT 5) first, then amqtt (3.1.1).

Asked by the config check (before READY) and by the embedded broker when it starts, so both
agree on what `broker.mode = "embedded"` will run.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Literal

Server = Literal["mosquitto", "amqtt"]
Wanted = Literal["auto", "mosquitto", "amqtt"]


def mosquitto_binary() -> str | None:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def amqtt_installed() -> bool:
    return importlib.util.find_spec("amqtt") is not None


def choose_server(wanted: Wanted = "auto") -> Server | None:
    """Which development broker `wanted` gets on this machine, or None when it has none."""
    if wanted in ("auto", "mosquitto") and mosquitto_binary() is not None:
        return "mosquitto"
    if wanted in ("auto", "amqtt") and amqtt_installed():
        return "amqtt"
    return None


def missing_server_reason(wanted: Wanted = "auto") -> str:
    if wanted == "mosquitto":
        return "Mosquitto is not installed (apt install mosquitto)"
    if wanted == "amqtt":
        return "amqtt is not installed (pip install 'edged[demo]')"
    return (
        "neither Mosquitto (apt install mosquitto) nor amqtt (pip install 'edged[demo]') is "
        "installed"
    )
