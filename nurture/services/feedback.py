"""Readers' answers: "Was this email helpful?" and the impact question at the end of a series.

One answer per delivery and question (a later answer replaces it); no tracking pixel, whatever the
tracking settings. Comments are plain text, never logged, and deleted after
NURTURE_FEEDBACK_COMMENT_RETENTION_DAYS (feedback_purge_comments, in the daily retention purge)."""
from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from nurture.models import Delivery, Feedback

HELPFUL_VALUES = {"yes": 1, "no": 0}
IMPACT_VALUES = range(1, 6)


def feedback_value_problem(*, question: str, value: int) -> str | None:
    """Why `value` is not an answer to `question`, or None."""
    if question == Feedback.Question.HELPFUL and value in HELPFUL_VALUES.values():
        return None
    if question == Feedback.Question.IMPACT and value in IMPACT_VALUES:
        return None
    return "not an answer to this question"


@transaction.atomic
def feedback_record(*, delivery_id: int, question: str, value: int, comment: str = "") -> Feedback:
    """Store (or replace) the answer of one delivery's reader to `question`. The caller checked the
    link; values and the comment are checked again here (ValueError: nothing stored)."""
    problem = feedback_value_problem(question=question, value=value)
    if problem:
        raise ValueError(problem)
    comment = (comment or "").strip()
    if len(comment) > Feedback.COMMENT_MAX_CHARS or "\x00" in comment:
        raise ValueError("comment refused")
    delivery = Delivery.objects.select_for_update().only("pk", "step_id", "article_versions").get(pk=delivery_id)
    article_ids = sorted(delivery.recorded_article_versions())
    feedback, _created = Feedback.objects.update_or_create(
        delivery_id=delivery.pk, question=question,
        defaults={"step_id": delivery.step_id, "article_ids": article_ids, "value": value, "comment": comment,
                  "answered_at": timezone.now()},
    )
    return feedback


def feedback_purge_comments(*, now: datetime | None = None) -> int:
    """Blank comments older than NURTURE_FEEDBACK_COMMENT_RETENTION_DAYS (the answer itself stays, for the counts)."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.NURTURE_FEEDBACK_COMMENT_RETENTION_DAYS)
    return Feedback.objects.filter(answered_at__lt=cutoff).exclude(comment="").update(comment="")
