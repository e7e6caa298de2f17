from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


class Stage(models.TextChoices):
    RECENTLY_DIAGNOSED = "recently_diagnosed", _("Recently diagnosed")
    IN_TREATMENT = "in_treatment", _("In treatment")
    IN_REMISSION = "in_remission", _("In remission")


class Language(models.TextChoices):
    EN = "en", "English"
    ES = "es", "Español"


class Article(models.Model):
    """One article of the guide in one language. body_html is always the sanitised render of body_markdown."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        IN_REVIEW = "in_review", _("In review")
        PUBLISHED = "published", _("Published")

    slug = models.SlugField(max_length=80)
    language = models.CharField(max_length=2, choices=Language.choices)
    title = models.CharField(max_length=200)
    stages = models.JSONField(default=list, help_text="Stages this article suits.")
    source_section = models.CharField(max_length=300, help_text="The section of the guide this article draws on.")
    body_markdown = models.TextField()
    body_html = models.TextField(editable=False, default="")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    reviewer = models.CharField(max_length=200, blank=True)
    last_reviewed = models.DateField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1, editable=False)
    # The clinical approval of the text above (the live text, what readers receive): who, in which role,
    # when, and when it is due for review again. Empty: nobody approved it (sent only in the DEBUG demo,
    # with a "Draft: not yet reviewed by a clinician" line). Set only by content.services.article_approve.
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    approved_by_name = models.CharField(max_length=200, blank=True, editable=False)
    approved_by_role = models.CharField(max_length=200, blank=True, editable=False)
    approved_at = models.DateTimeField(null=True, blank=True, editable=False)
    next_review_on = models.DateField(null=True, blank=True, editable=False)
    # The review reminders sent for this approval (content.services.review_reminders_due): never twice.
    review_reminded_early_on = models.DateField(null=True, blank=True, editable=False)
    review_reminded_due_on = models.DateField(null=True, blank=True, editable=False)
    # An edit to approved text waits here, unsent, until a clinical reviewer approves it.
    pending_version = models.ForeignKey(
        "ArticleVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    # A reviewer's reason to publish past the reading-level ceiling (content.readability); blank: none.
    reading_level_override = models.TextField(
        blank=True,
        help_text=(
            "Only to publish an article past the reading-level ceiling: who reviewed it and why it cannot be plainer."
        ),
    )
    # Fingerprint of the article's fields as last imported from its file (content.services.article_fingerprint).
    # The file changed: its fingerprint differs from this. Staff changed it: the article's own does.
    imported_hash = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["language", "slug"]
        constraints = [models.UniqueConstraint(fields=["slug", "language"], name="article_unique_slug_language")]
        # The "Clinical reviewers" role holds it; content editors draft but do not approve.
        permissions = [("approve_article", "Can approve articles (clinical review)")]

    def __str__(self):
        return f"{self.title} [{self.language}]"

    @property
    def is_published(self) -> bool:
        return self.status == self.Status.PUBLISHED

    @property
    def is_approved(self) -> bool:
        """A named reviewer approved the live text."""
        return self.approved_at is not None and bool(self.approved_by_name.strip())

    def clean(self):
        super().clean()
        if not isinstance(self.stages, list) or not self.stages or any(s not in Stage.values for s in self.stages):
            raise ValidationError({"stages": _("Choose one or more stages.")})


class ArticleVersion(models.Model):
    """A snapshot of an article as it was at one version; deliveries point at these."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    body_markdown = models.TextField()
    body_html = models.TextField()
    status = models.CharField(max_length=12, choices=Article.Status.choices)
    # True: an edit of approved text awaiting approval (never sent until approved).
    is_draft = models.BooleanField(default=False)
    # Who approved this version, as Article's fields of the same names (kept per version, so a sent
    # email's page still shows the approval of the text it carried).
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    approved_by_name = models.CharField(max_length=200, blank=True)
    approved_by_role = models.CharField(max_length=200, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    next_review_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["article", "-version"]
        constraints = [models.UniqueConstraint(fields=["article", "version"], name="article_version_unique")]

    def __str__(self):
        return f"{self.article.slug} v{self.version}"
