"""Which backend the kiosk trusts and seals to: the simulated cloud's keys, or configured ones.

With `cloud.mode = "simulated"` (the development default) the simulated backend's keys are
generated once into `<data_dir>/cloudsim/` and the daemon trusts its signing key and seals
payment codes to its X25519 key, so a fresh clone pays end to end with no key handling.
With `remote` nothing is invented: the keys come from `security.trusted_keys` and
`security.backend_seal_key`.
"""

from __future__ import annotations

from pathlib import Path

from edged.config.models import DaemonConfig

SIM_KEYS_DIR = "cloudsim"


def simulated_keys_dir(config: DaemonConfig) -> Path:
    return config.paths.data_dir / SIM_KEYS_DIR


def with_backend_keys(config: DaemonConfig) -> DaemonConfig:
    """The config the daemon runs with: in simulated mode, the simulator's keys added."""
    if config.cloud.mode != "simulated":
        return config
    from edged.cloudsim.keys import ensure_keys

    try:
        keys = ensure_keys(simulated_keys_dir(config))
    except ValueError as exc:  # a damaged key file: the daemon's "cannot start" path
        raise OSError(str(exc)) from None
    security = config.security
    trusted = list(security.trusted_keys)
    if keys.signing_public_b64 not in trusted:
        trusted.append(keys.signing_public_b64)
    seal = security.backend_seal_key or keys.seal_public_b64
    return config.model_copy(
        update={
            "security": security.model_copy(
                update={"trusted_keys": trusted, "backend_seal_key": seal}
            )
        }
    )
