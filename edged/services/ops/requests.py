"""Persistence of operations commands: each state change is a row update and its reply, together.

A command's reply is an outbox message on `rsp/{request_id}` (or the request's MQTT 5 response
topic). Writing the state and the reply in one transaction means the operator is never told
a state the device has not committed, and a command sent again under the same request id
finds the stored outcome instead of running a second time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from edged.contract.bodies import OpReply, OpState, dump_body
from edged.contract.topics import Uplink
from edged.store.database import Statements
from edged.store.outbox import Outbox, ResponseRoute

OPEN_STATES = (OpState.ACCEPTED.value, OpState.IN_PROGRESS.value)


@dataclass(frozen=True)
class OpRecord:
    request_id: str
    op: str
    state: OpState
    reason: str
    result: dict[str, Any]
    body: dict[str, Any]
    route: ResponseRoute
    expires_at: str | None


class OpRequests:
    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    def load(self, s: Statements, request_id: str) -> OpRecord | None:
        row = s.fetchone("SELECT * FROM op_requests WHERE request_id = ?", (request_id,))
        return None if row is None else _record(row)

    def open_requests(self, s: Statements) -> list[OpRecord]:
        rows = s.fetchall(
            "SELECT * FROM op_requests WHERE state IN (?, ?) ORDER BY created_at", OPEN_STATES
        )
        return [_record(row) for row in rows]

    def create(
        self,
        s: Statements,
        *,
        request_id: str,
        op: str,
        msg_id: str,
        body: dict[str, Any],
        route: ResponseRoute,
        expires_at: str | None,
        state: OpState,
        reason: str = "",
    ) -> OpRecord:
        s.insert(
            "INSERT INTO op_requests (request_id, op, msg_id, state, reason, body, reply_topic, "
            "correlation, expires_at, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                request_id,
                op,
                msg_id,
                state.value,
                reason,
                json.dumps(body, ensure_ascii=False),
                route.topic,
                route.correlation,
                expires_at,
                s.now,
                s.now,
            ),
        )
        record = OpRecord(request_id, op, state, reason, {}, body, route, expires_at)
        self.reply(s, record)
        return record

    def move(
        self,
        s: Statements,
        record: OpRecord,
        state: OpState,
        reason: str = "",
        result: dict[str, Any] | None = None,
    ) -> OpRecord:
        """Commit the new state with its reply; a final state is never left again."""
        changed = s.execute(
            "UPDATE op_requests SET state = ?, reason = ?, result = ?, updated_at = ? "
            "WHERE request_id = ? AND state IN (?, ?)",
            (
                state.value,
                reason,
                json.dumps(result or {}, ensure_ascii=False),
                s.now,
                record.request_id,
                *OPEN_STATES,
            ),
        )
        if changed != 1:
            raise ValueError(f"request {record.request_id} is no longer open")
        moved = OpRecord(
            record.request_id,
            record.op,
            state,
            reason,
            result or {},
            record.body,
            record.route,
            record.expires_at,
        )
        self.reply(s, moved)
        return moved

    def reply(self, s: Statements, record: OpRecord) -> None:
        body = OpReply(
            request_id=record.request_id,
            op=record.op,
            state=record.state,
            reason=record.reason,
            result=record.result,
        )
        self._outbox.write(
            s,
            Uplink.RESPONSE,
            "op.reply",
            dump_body(body),
            request_id=record.request_id,
            response=record.route,
        )


def _record(row: Any) -> OpRecord:
    return OpRecord(
        request_id=row["request_id"],
        op=row["op"],
        state=OpState(row["state"]),
        reason=row["reason"],
        result=json.loads(row["result"]),
        body=json.loads(row["body"]),
        route=ResponseRoute(row["reply_topic"], row["correlation"]),
        expires_at=row["expires_at"],
    )
