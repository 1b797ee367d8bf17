"""Configuration: pydantic models, the TOML loader and the checks with their messages."""

from edged.config.loader import ConfigError, load_config, load_config_and_raw, validate_config
from edged.config.models import DaemonConfig
from edged.config.problems import Problem, check_config_dict
from edged.config.usable import usability_problems

__all__ = [
    "ConfigError",
    "DaemonConfig",
    "Problem",
    "check_config_dict",
    "load_config",
    "load_config_and_raw",
    "usability_problems",
    "validate_config",
]
