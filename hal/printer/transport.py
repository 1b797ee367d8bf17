"""Byte pipes to a receipt printer (USB, serial, TCP 9100), opened through python-escpos.

python-escpos knows how to open each kind of connection; reading answers with a timeout and
throwing away stale input is done here, because status handling depends on it. Every method
blocks and runs in the printer's worker thread. Any failure becomes TransportError and the
driver reopens on its next call, which is what brings a power-cycled printer back.
"""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any, Protocol

from hal.config import NetworkPrinter, SerialPrinter, UsbPrinter
from hal.device import DeviceError
from hal.printer.escpos_lib import escpos_printers


class TransportError(DeviceError):
    """The connection to the printer failed; it is closed and will be reopened."""


class Transport(Protocol):
    description: str

    def open(self) -> None: ...
    def write(self, data: bytes) -> None: ...
    def read(self, timeout_s: float) -> bytes:
        """Whatever arrives within timeout_s (b"" if nothing)."""
        ...

    def discard_input(self) -> None: ...
    def close(self) -> None: ...


class NetworkTransport:
    def __init__(self, config: NetworkPrinter) -> None:
        self.config = config
        self.description = f"tcp://{config.host}:{config.port}"
        self._printer: Any = None

    def _socket(self) -> socket.socket:
        if self._printer is None:
            raise TransportError("printer connection is not open")
        sock: socket.socket = self._printer.device
        return sock

    def open(self) -> None:
        printer = escpos_printers().Network(
            self.config.host, self.config.port, timeout=self.config.timeout_s
        )
        try:
            printer.open()
        except Exception as exc:
            raise TransportError(f"cannot connect to {self.description}: {exc}") from exc
        self._printer = printer

    def write(self, data: bytes) -> None:
        try:
            self._socket().sendall(data)
        except OSError as exc:
            raise TransportError(f"write to {self.description} failed: {exc}") from exc

    def read(self, timeout_s: float) -> bytes:
        sock = self._socket()
        try:
            sock.settimeout(timeout_s)
            data = sock.recv(64)
        except TimeoutError:
            return b""
        except OSError as exc:
            raise TransportError(f"read from {self.description} failed: {exc}") from exc
        finally:
            with contextlib.suppress(OSError):
                sock.settimeout(self.config.timeout_s)
        if not data:
            raise TransportError(f"{self.description} closed the connection")
        return data

    def discard_input(self) -> None:
        sock = self._socket()
        try:
            sock.setblocking(False)
            while True:
                if not sock.recv(256):
                    raise TransportError(f"{self.description} closed the connection")
        except BlockingIOError:
            pass
        except OSError as exc:
            raise TransportError(f"read from {self.description} failed: {exc}") from exc
        finally:
            with contextlib.suppress(OSError):
                sock.settimeout(self.config.timeout_s)

    def close(self) -> None:
        printer, self._printer = self._printer, None
        if printer is not None:
            with contextlib.suppress(OSError):
                printer.close()


class SerialTransport:
    def __init__(self, config: SerialPrinter) -> None:
        self.config = config
        self.description = f"{config.port} at {config.baudrate} baud"
        self._printer: Any = None

    def open(self) -> None:
        printer = escpos_printers().Serial(
            devfile=self.config.port, baudrate=self.config.baudrate, timeout=1
        )
        try:
            printer.open()
        except Exception as exc:
            raise TransportError(f"cannot open {self.config.port}: {exc}") from exc
        if not getattr(printer, "device", None):
            raise TransportError(f"cannot open {self.config.port}")
        self._printer = printer

    def _port(self) -> Any:
        if self._printer is None:
            raise TransportError("printer port is not open")
        return self._printer.device

    def write(self, data: bytes) -> None:
        try:
            port = self._port()
            port.write(data)
            port.flush()
        except (OSError, ValueError) as exc:
            raise TransportError(f"write to {self.config.port} failed: {exc}") from exc
        except Exception as exc:  # serial.SerialException
            raise TransportError(f"write to {self.config.port} failed: {exc}") from exc

    def read(self, timeout_s: float) -> bytes:
        try:
            port = self._port()
            port.timeout = timeout_s
            data: bytes = port.read(1)
            if data and port.in_waiting:
                data += port.read(port.in_waiting)
            return data
        except Exception as exc:
            raise TransportError(f"read from {self.config.port} failed: {exc}") from exc

    def discard_input(self) -> None:
        try:
            self._port().reset_input_buffer()
        except Exception as exc:
            raise TransportError(f"read from {self.config.port} failed: {exc}") from exc

    def close(self) -> None:
        printer, self._printer = self._printer, None
        if printer is not None:
            with contextlib.suppress(Exception):
                printer.close()


class UsbTransport:
    """Raw USB through libusb (pyusb): needs the `usb` extra and the udev rule's permissions."""

    def __init__(self, config: UsbPrinter) -> None:
        self.config = config
        self.description = f"usb {config.vendor_id:04x}:{config.product_id:04x}"
        self._printer: Any = None

    def open(self) -> None:
        try:
            usb_printer = escpos_printers().Usb
        except (ImportError, AttributeError) as exc:
            raise TransportError("USB printers need pyusb: pip install 'edged[usb]'") from exc
        printer = usb_printer(self.config.vendor_id, self.config.product_id, timeout=5000)
        try:
            printer.open()
        except Exception as exc:
            raise TransportError(
                f"cannot open {self.description}: {exc} (see `edged doctor`)"
            ) from exc
        if not getattr(printer, "device", None):
            raise TransportError(f"{self.description} not found (see `edged doctor`)")
        self._printer = printer

    def _device(self) -> Any:
        if self._printer is None:
            raise TransportError("printer is not open")
        return self._printer

    def write(self, data: bytes) -> None:
        try:
            printer = self._device()
            printer.device.write(printer.out_ep, data, 5000)
        except Exception as exc:
            raise TransportError(f"write to {self.description} failed: {exc}") from exc

    def read(self, timeout_s: float) -> bytes:
        printer = self._device()
        try:
            data = printer.device.read(printer.in_ep, 64, max(1, int(timeout_s * 1000)))
        except Exception as exc:
            if type(exc).__name__ == "USBTimeoutError" or getattr(exc, "errno", None) == 110:
                return b""
            raise TransportError(f"read from {self.description} failed: {exc}") from exc
        return bytes(data)

    def discard_input(self) -> None:
        deadline = time.monotonic() + 0.2
        while time.monotonic() < deadline and self.read(0.01):
            pass

    def close(self) -> None:
        printer, self._printer = self._printer, None
        if printer is not None:
            with contextlib.suppress(Exception):
                printer.close()
