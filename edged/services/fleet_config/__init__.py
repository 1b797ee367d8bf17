"""Remote config: signed layers per scope over the local file, health-gated, with rollback."""

from edged.services.fleet_config.assembly import setup, starting

__all__ = ["setup", "starting"]
