"""A cancelled request re-opened and delivered again, on SQLite and PostgreSQL: the cancelled
checkpoints' timers were closed and are scheduled anew by the new delivery (the same keys, upserted),
the new pass's surveys go out under keys of their own, and the audit chain holds."""

from __future__ import annotations

from datetime import timedelta

from flows.service import Service
from tests.builders import ACTOR, brief_data, delivery_data, diagnosis_data, drive_to, reason_data


def test_reopened_and_delivered_again_the_timers_fire_for_the_new_pass(sql_service: Service) -> None:
    rid = int(drive_to(sql_service, "delivered").id)
    sql_service.cancel(rid, reason_data("the region merged"), ACTOR)
    far = sql_service.show(rid).updated_at + timedelta(days=3650)
    assert sql_service.store.due_checkpoints(far) == []  # closed by the cancellation
    sql_service.reopen(rid, reason_data("the merged region wants it"), ACTOR)
    assert sql_service.store.due_checkpoints(far) == []  # re-opening opens none of them
    sql_service.diagnose(rid, diagnosis_data(), ACTOR)
    sql_service.design(rid, brief_data(), ACTOR)
    request = sql_service.deliver(rid, delivery_data(), ACTOR)
    due = sorted(key for _rid, key in sql_service.store.due_checkpoints(far))
    assert due == sorted(c.key for c in request.checkpoints)
    sql_service.clock.set(max(c.due_at for c in request.checkpoints))  # type: ignore[attr-defined]
    assert sql_service.send_due_checkpoints(ACTOR, timedelta(days=400))["sent"] == len(request.checkpoints)
    assert sql_service.store.due_checkpoints(far) == []
    assert sql_service.verify().ok
