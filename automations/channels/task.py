"""Task: a pending follow-up for a person, due at the step's planned time.

The follow-up is written in the same transaction that records the step as done,
so a task step creates exactly one follow-up even when a runner dies."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from automations.channels.base import DONE, Delivery, Job
from automations.domain.models import FollowUpStatus


class TaskChannel:
    """Nothing to send: the follow-up row is added when the result is recorded."""

    name = "task"

    def send_many(self, jobs: Sequence[Job]) -> list[Delivery]:
        return [Delivery(DONE, "follow-up task created") for _ in jobs]

    def close(self) -> None:
        pass


def followup_row(job: Job, now: datetime) -> dict[str, Any]:
    """The `scheduled_followups` row a done task step creates."""
    return {
        "contact_id": job.contact_id,
        "campaign_id": job.campaign_id,
        "step_id": job.step_id,
        "title": (job.subject or job.name)[:300],
        "notes": job.body,
        "due_at": job.scheduled_at,
        "status": FollowUpStatus.PENDING.value,
        "created_at": now,
    }
