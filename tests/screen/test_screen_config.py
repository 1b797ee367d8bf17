"""[screen]: loopback by default; anywhere else only with TLS or the technician token."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edged.config.models import DaemonConfig


def config(**screen: object) -> DaemonConfig:
    return DaemonConfig.model_validate({"screen": {"enabled": True, **screen}})


def test_the_pages_listen_on_loopback_by_default() -> None:
    cfg = config()
    assert (cfg.screen.host, cfg.screen.port, cfg.screen.on_loopback()) == ("127.0.0.1", 8080, True)
    assert config(host="::1").screen.on_loopback() and config(host="localhost").screen.on_loopback()


def test_off_loopback_without_tls_or_token_is_refused() -> None:
    with pytest.raises(ValidationError) as refused:
        config(host="0.0.0.0")
    assert (
        "screen.host '0.0.0.0' is not loopback: set [screen.tls] or security.technician_token"
        in str(refused.value)
    )


def test_off_loopback_with_the_token_or_tls_is_allowed() -> None:
    with_token = DaemonConfig.model_validate(
        {"screen": {"enabled": True, "host": "0.0.0.0"}, "security": {"technician_token": "t"}}
    )
    assert not with_token.screen.on_loopback()
    with_tls = config(host="192.0.2.10", tls={"cert_file": "/etc/edged/web.pem", "key_file": "/k"})
    assert with_tls.screen.tls is not None
    assert DaemonConfig.model_validate({"screen": {"host": "0.0.0.0"}}).screen.enabled is False
