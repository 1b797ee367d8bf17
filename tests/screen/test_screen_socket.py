"""The page's WebSocket as a protocol: numbered changes, only the shopper's buttons, own
Origin only, hostile input answered and survived; "out of service" while sales are stopped."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.e2e.kiosk import ITEMS
from tests.screen.conftest import StartScreen
from tests.screen.kiosk_screen import ScreenKiosk


def open_socket(screen: ScreenKiosk, origin: str | None = "same") -> ClientConnection:
    here = f"http://127.0.0.1:{screen.port}"
    return connect(
        f"ws://127.0.0.1:{screen.port}/ws",
        origin=here if origin == "same" else origin,  # type: ignore[arg-type]
        open_timeout=5,
    )


def receive(socket: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(socket.recv(timeout=5))
    return message


def test_a_page_gets_a_snapshot_then_every_change_numbered(screen: ScreenKiosk) -> None:
    with open_socket(screen) as socket:
        assert receive(socket) == {"type": "hello", "language": "zh"}
        snapshot = receive(socket)
        assert snapshot["type"] == "snapshot" and snapshot["state"]["out_of_service"] is False
        assert snapshot["state"]["view"]["kind"] == "welcome"
        for item in ITEMS:
            screen.kiosk.scan(item)
        changes = [receive(socket) for _ in ITEMS]
    assert [c["seq"] for c in changes] == [snapshot["seq"] + n for n in (1, 2, 3)]
    assert {c["boot"] for c in changes} == {snapshot["boot"]}
    last = changes[-1]["set"]["view"]
    assert [(i["line"], i["name"], i["amount"]) for i in last["items"]] == [
        (1, "农夫山泉 饮用天然水 550ml", "¥2.00"),
        (2, "可口可乐 330ml", "¥3.50"),
        (3, "康师傅 红烧牛肉面", "¥4.50"),
    ]
    assert last["total"] == "¥10.00"


@pytest.mark.parametrize("origin", [None, "http://evil.example", "http://127.0.0.1:1"])
def test_a_socket_from_another_origin_is_refused(screen: ScreenKiosk, origin: str | None) -> None:
    with pytest.raises(InvalidStatus) as refused:
        open_socket(screen, origin)
    assert refused.value.response.status_code == 403
    assert refused.value.response.body == b"cross-origin WebSocket refused\n"


def test_the_shopper_socket_offers_only_the_shoppers_buttons(screen: ScreenKiosk) -> None:
    screen.kiosk.scan(ITEMS[0])
    with open_socket(screen) as socket:
        receive(socket), receive(socket)  # hello, snapshot
        for junk in ("not json", "[]", '{"cmd": 7}', '{"id": 1, "cmd": "cart.qty", "args": []}'):
            socket.send(junk)
            assert receive(socket)["error"] == 'expected {"cmd": ..., "args": {}}', junk
        socket.send(json.dumps({"id": 2, "cmd": "reprint", "args": {}}))
        assert receive(socket) == {
            "type": "reply",
            "id": 2,
            "ok": False,
            "error": "'reprint' is not a button on this page",
        }
        socket.send(json.dumps({"id": 3, "cmd": "cart.qty", "args": {"line": 1, "quantity": 0}}))
        assert receive(socket) == {
            "type": "reply",
            "id": 3,
            "ok": False,
            "error": "quantity must be 1-999",
        }
        socket.send(json.dumps({"id": 4, "cmd": "cart.qty", "args": {"line": 1, "quantity": 3}}))
        replies = [receive(socket), receive(socket)]
    change = next(m for m in replies if m["type"] == "change")
    assert change["set"]["view"]["items"][0]["quantity"] == 3
    assert {"type": "reply", "id": 4, "ok": True} in replies
    assert screen.status()["checkout"]["sale"]["total_fen"] == 600


def test_pages_are_served_with_a_strict_content_security_policy(screen: ScreenKiosk) -> None:
    status, headers, body = screen.get("/")
    assert status == 200 and '<main id="screen"' in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert screen.get("/static/../part.py")[0] == 404
    assert screen.get("/static/kiosk.js")[1]["Content-Type"] == "text/javascript; charset=utf-8"


def fill_store(data: Path) -> None:
    """A store already past its stop-sales mark when the daemon starts."""
    data.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(data / "edged.db")
    conn.execute("CREATE TABLE ballast (blob BLOB)")
    conn.executemany("INSERT INTO ballast VALUES (?)", [(b"x" * 4000,) for _ in range(400)])
    conn.commit()
    conn.close()


STOP_SALES_EARLY = """
[store]
max_db_mb = 8
shed_telemetry_at_pct = 10
stop_sales_at_pct = 10
"""


def test_the_page_says_out_of_service_while_sales_are_stopped(
    start_screen: StartScreen, page: Any
) -> None:
    screen = start_screen(extra=STOP_SALES_EARLY, before=fill_store)
    assert screen.status()["store"]["sales_allowed"] is False
    page.goto(screen.url)
    page.wait_for_selector("#out-of-service:not([hidden])")
    assert page.text_content("#out-of-service .big") == "暂停服务"
    with open_socket(screen) as socket:
        receive(socket)
        assert receive(socket)["state"]["out_of_service"] is True
