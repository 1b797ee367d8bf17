"""Operations commands (`cmd/op`): signed, idempotent by request id, answered on rsp/{id}."""

from edged.services.ops.assembly import setup

__all__ = ["setup"]
