"""The simulated backend's signed downlink envelopes: numbered in order, signed by its key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edged.contract.envelope import Envelope, make_envelope
from edged.contract.signing import sign_envelope
from edged.contract.topics import DeviceTopics


class DownlinkSigner:
    """Makes and signs one envelope after another for the devices; each signer counts its own
    `seq`, as each part of the backend (payments, order desk) numbers what it sends."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self._seq = 0

    def sign(
        self, device: DeviceTopics, type_: str, body: dict[str, Any], ttl_s: float
    ) -> Envelope:
        self._seq += 1
        envelope = make_envelope(
            type=type_,
            device=device.device,
            seq=self._seq,
            body=body,
            now=datetime.now(UTC),
            clock_synced=True,
            ttl=timedelta(seconds=ttl_s),
        )
        return sign_envelope(envelope, self._key)
