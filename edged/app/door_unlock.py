"""`op.door.unlock` for the composition root: the ops table's command, carried out by the
release part (services never import each other, so the two meet here).

Registered only on a vending counter with a release device, interlocked (refused while a
payment is open). The release is a fact committed before the relay is energised (rule 8);
the ops table stores the reply under the request id, so the same request again gets that
reply and never a second unlock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edged.contract.bodies import DoorUnlockOp
from edged.services.ops.table import OpFailed, OpHandler, OpProgress, OpRefused, OpTable

if TYPE_CHECKING:
    from edged.services.release.service import ReleaseService

OP = "op.door.unlock"


def door_unlock(releases: ReleaseService) -> OpHandler:
    from edged.services.release.service import SlotBusy  # vending only

    async def handle(request: DoorUnlockOp, _progress: OpProgress) -> dict[str, Any]:
        try:
            outcome = await releases.unlock_for_request(request.request_id, request.slot)
        except SlotBusy as exc:
            raise OpRefused(f"refused: {exc}") from None
        except ValueError as exc:  # a slot the device does not have: nothing was written
            raise OpRefused(str(exc)) from None
        if not outcome.energised:
            raise OpFailed(f"the door did not unlock: {outcome.reason}")
        return {"release_id": outcome.release.id, "slot": outcome.release.slot}

    return handle


def register(table: OpTable, releases: ReleaseService | None) -> None:
    """Add `op.door.unlock` when the release part exists."""
    if releases is not None:
        table.register(OP, door_unlock(releases), interlocked=True)
