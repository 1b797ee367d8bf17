"""The technician page: nothing without the token, device health and reprint with it."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from http.client import HTTPException
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.kiosk import code
from tests.screen.conftest import StartScreen
from tests.screen.kiosk_screen import TOKEN, ScreenKiosk, poll

MISSING_DISPLAY = "/dev/edged-test-no-such-display"
UNPLUGGED_DISPLAY = f"""
[display]
driver = "serial"
port = "{MISSING_DISPLAY}"
"""


def log_in(page: Any, screen: ScreenKiosk, token: str) -> None:
    page.goto(screen.url + "tech")
    page.fill("#token", token)
    page.click("#login")


def test_without_a_configured_token_there_is_no_technician_page(
    start_screen: StartScreen, page: Any
) -> None:
    screen = start_screen(token=None)
    for path in ("/tech", "/tech/login", "/tech/ws"):
        status, _, body = screen.get(path, {"Authorization": "Bearer anything"})
        assert (status, body) == (404, "no technician token is configured\n"), path
    page.goto(screen.url + "tech")
    assert page.query_selector("#token") is None and page.query_selector("#devices") is None


def test_without_or_with_a_wrong_token_the_page_shows_nothing(
    screen: ScreenKiosk, page: Any
) -> None:
    page.goto(screen.url + "tech")
    assert page.query_selector("#token") is not None, "a login form"
    assert page.query_selector("#devices") is None and "sim" not in page.content()
    assert screen.get("/tech/ws")[0] == 403

    log_in(page, screen, "wrong-token")
    page.wait_for_selector("#login-error:not([hidden])")
    assert page.text_content("#login-error") == "wrong token"
    assert page.query_selector("#devices") is None
    cookies = page.context.cookies()
    assert not [c for c in cookies if c["name"] == "edged_tech"]

    # Straight after a wrong token even the right one waits: the gate backs off.
    status, headers, body = screen.get("/tech/login", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 429 and headers["Retry-After"] == "1" and body == "wait 1 s\n"
    status, _, _ = screen.get("/tech/login", {"Authorization": "Bearer wrong-again"})
    assert status == 429, "a guess during the back-off is not even compared"


def test_the_right_token_shows_device_health_with_the_fix_and_reprints(
    start_screen: StartScreen, page: Any
) -> None:
    screen = start_screen(extra=UNPLUGGED_DISPLAY)
    screen.kiosk.fill_basket()
    screen.kiosk.scan(code("00"))
    screen.kiosk.wait("receipt printed", lambda s: s["checkout"]["print_queue"]["printed"] == 1)
    assert len(screen.kiosk.receipts()) == 1

    shopper = page.context.new_page()
    shopper.goto(screen.url)
    shopper.wait_for_selector('#screen[data-kind="welcome"]')  # its socket is open
    shopper.click("#call-staff")
    shopper.wait_for_selector("#staff:not([hidden])")
    shopper.close()

    log_in(page, screen, TOKEN)
    page.wait_for_selector('#devices .device[data-kind="display"]')
    cookie = next(c for c in page.context.cookies() if c["name"] == "edged_tech")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/tech"
    assert page.evaluate("document.cookie") == "", "no script can read the session"

    display = page.text_content('#devices .device[data-kind="display"]')
    assert f"problem: {MISSING_DISPLAY} does not exist" in display
    assert "fix: plug the device in and check the cable" in display
    assert "ok" in page.text_content('#devices .device[data-kind="printer"] .verdict')
    assert page.text_content("#link dd") == "yes"
    assert '"status":' in page.text_content("#config"), "the fleet config's status is shown"
    assert page.text_content("#sales tr td:nth-child(3)") == "¥10.00"

    page.click("#reprint-newest")
    page.wait_for_function(
        "document.querySelector('#reprint-result').textContent === 'reprint queued'"
    )
    poll("a second receipt printed", lambda: len(screen.kiosk.receipts()) == 2)
    page.wait_for_function("document.querySelectorAll('#jobs tr').length === 2")
    page.wait_for_function("document.querySelector('#logs').textContent.includes('staff')")
    assert "warning edged.screen: shopper asked for staff" in page.text_content("#logs")
    assert code("00") not in page.text_content("#logs")  # ... and carries no payment code


def test_reprint_needs_a_live_session(screen: ScreenKiosk, page: Any) -> None:
    log_in(page, screen, TOKEN)
    page.wait_for_selector("#devices .device")
    page.goto(screen.url + "tech/logout")
    page.wait_for_selector("#token")
    assert screen.get("/tech/ws")[0] == 403


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "web.pem", folder / "web.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)  # check-config refuses a private key others can read
    return cert_file, key_file


def test_with_tls_the_pages_are_https_and_the_session_cookie_is_secure(
    start_screen: StartScreen, tmp_path: Path
) -> None:
    cert_file, key_file = self_signed(tmp_path)
    screen = start_screen(
        extra=f'[screen.tls]\ncert_file = "{cert_file}"\nkey_file = "{key_file}"\n'
    )
    trust = ssl.create_default_context(cafile=str(cert_file))
    base = f"https://127.0.0.1:{screen.port}"
    with urllib.request.urlopen(base + "/", context=trust, timeout=5) as answer:
        assert answer.status == 200
    login = urllib.request.Request(
        base + "/tech/login", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(login, context=trust, timeout=5) as answer:
        cookie = answer.headers["Set-Cookie"]
    assert answer.status == 204
    assert cookie.endswith("; Path=/tech; Max-Age=28800; HttpOnly; SameSite=Strict; Secure")
    with pytest.raises((OSError, HTTPException)):  # plain HTTP is not served on that port
        urllib.request.urlopen(f"http://127.0.0.1:{screen.port}/", timeout=5)
