"""Configuration: pydantic models and the TOML loader."""

from edged.config.loader import ConfigError, load_config, load_config_and_raw, validate_config
from edged.config.models import DaemonConfig

__all__ = [
    "ConfigError",
    "DaemonConfig",
    "load_config",
    "load_config_and_raw",
    "validate_config",
]
