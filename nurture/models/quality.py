"""How well the emails serve people: readers' answers to "Was this helpful?" (and the impact
question), and the complaint brake that pauses series sending when people complain."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from nurture.models.engine import Delivery, Step


class SendingBrake(models.Model):
    """Series sending paused by itself: the complaint or hard-bounce rate of series emails over the
    last day went above its limit (services/brake.py). At most one is engaged at a time (a partial
    unique index); only a staff member's explicit resume lifts it. Figures only: no address, no stage."""

    engaged = models.BooleanField(default=True)
    tripped_at = models.DateTimeField(auto_now_add=True)
    reason = models.CharField(max_length=200)
    emails = models.PositiveIntegerField(help_text="Series emails delivered in the window the rates were read over.")
    complaints = models.PositiveIntegerField()
    hard_bounces = models.PositiveIntegerField()
    resumed_at = models.DateTimeField(null=True, blank=True)
    resumed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-tripped_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["engaged"], condition=models.Q(engaged=True),
                                    name="sending_brake_one_engaged"),
        ]
        permissions = [("resume_sendingbrake", "Can resume series sending after the complaint brake")]

    def __str__(self):
        return f"Sending brake #{self.pk} ({'engaged' if self.engaged else 'resumed'})"


class Feedback(models.Model):
    """A reader's answer to "Was this email helpful?" (yes / no) or to the impact question at the end
    of a series (1 to 5), one per delivery and question: a later answer replaces it. Holds the step
    and the articles the email carried, so the counts survive the person's erasure (the delivery link
    is then cleared). The optional comment is plain text, never logged, deleted after
    NURTURE_FEEDBACK_COMMENT_RETENTION_DAYS; content editors read it without any way to reach the person."""

    class Question(models.TextChoices):
        HELPFUL = "helpful", _("Was this email helpful?")
        IMPACT = "impact", _("Do you feel more able to decide about a second opinion?")

    COMMENT_MAX_CHARS = 500

    delivery = models.ForeignKey(Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="feedback")
    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="feedback")
    article_ids = models.JSONField(default=list, blank=True)
    question = models.CharField(max_length=8, choices=Question.choices)
    value = models.PositiveSmallIntegerField(help_text="helpful: 1 yes, 0 no; impact: 1 to 5.")
    comment = models.TextField(blank=True, max_length=COMMENT_MAX_CHARS)
    answered_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "feedback"
        default_permissions = ()
        # Content editors read the comments (text and date only): nurture.admin.feedback.
        permissions = [("view_feedback_comments", "Can read readers' feedback comments (no identity)")]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "question"], name="feedback_unique_delivery_question"),
        ]
        indexes = [models.Index(fields=["answered_at"], name="feedback_answered_at_idx")]

    def __str__(self):
        return f"Feedback #{self.pk}"
