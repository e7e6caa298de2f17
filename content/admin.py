"""Admin for the guide's articles: editing, the review workflow and the version history.

The engine adds the article's email preview (nurture/admin/articles.py: it needs the email layout).

Saving goes through content.services.article_save (HTML, version, snapshot). The form runs the same Markdown
checks as load_content, so staff cannot save what the import would reject.
"""
from __future__ import annotations

import datetime as dt
import difflib

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from content import readability, selectors
from content.models import Article, ArticleVersion, Stage
from content.rendering import article_link_slugs, markdown_problems
from content.services import (
    APPROVE_PERMISSION, CLINICAL_REVIEWERS, ApprovalError, article_approve, article_has_staff_edits, article_save,
)

AWAITING_TRANSLATOR = "awaiting review by a qualified translator"
NOT_APPROVED = "not approved by a clinical reviewer"


def text_diff_html(*, old: str, new: str):
    """What changed, line by line, as a table (difflib; its output escapes the text)."""
    table = difflib.HtmlDiff(wrapcolumn=70).make_table(
        old.splitlines(), new.splitlines(), "approved text", "draft", context=True, numlines=2
    )
    # HtmlDiff escapes &, < and > in the text itself, so its table is safe to show as is.
    return format_html('<div class="nurture-diff">{}</div>',
                       mark_safe(table)) if old != new else "No change to the text."


def _last_role(user) -> str:
    """The role this reviewer gave last time (a sensible default for the next approval)."""
    return Article.objects.filter(approved_by=user).exclude(approved_by_role="").order_by("-approved_at").values_list(
        "approved_by_role", flat=True).first() or ""


class ApproveForm(forms.Form):
    role = forms.CharField(
        max_length=200, required=False, label="Your role, as readers see it",
        help_text="For example “oncology nurse” or “consultant oncologist”. Empty: “clinical reviewer”.",
    )
    next_review_on = forms.DateField(
        required=False, label="Next review date", widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Empty: NURTURE_CONTENT_REVIEW_MONTHS from today.",
    )
    confirm = forms.BooleanField(label="I have reviewed this text and approve it for readers.")

    def clean_next_review_on(self):
        day = self.cleaned_data["next_review_on"]
        if day is not None and day <= timezone.localdate():
            raise ValidationError("Choose a date after today.")
        if day is not None and day > timezone.localdate() + dt.timedelta(days=3 * 366):
            raise ValidationError("Choose a date within three years.")
        return day


class ArticleAdminForm(forms.ModelForm):
    stages = forms.MultipleChoiceField(choices=Stage.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = Article
        fields = [
            "slug", "language", "title", "stages", "source_section", "body_markdown", "status",
            "reading_level_override",
        ]
        widgets = {
            "body_markdown": forms.Textarea(attrs={"rows": 24, "cols": 100}),
            "title": forms.TextInput(attrs={"size": 80}),
            "source_section": forms.TextInput(attrs={"size": 80}),
        }
        help_texts = {
            "body_markdown": "Markdown: paragraphs, ## and ### headings, lists, **bold**, *italic*, > quotes, "
            "links to http(s):// or mailto:, and [text](article:slug) for another article of the guide. "
            "No raw HTML, images or # headings.",
        }

    def clean_body_markdown(self):
        body = self.cleaned_data["body_markdown"]
        problems = markdown_problems(body)
        if problems:
            raise ValidationError([f"Line {line}: {message}" for line, message in problems])
        return body

    def clean(self):
        cleaned = super().clean()
        body = cleaned.get("body_markdown")
        # slug and language are read-only once saved (files, links and series name articles by them).
        language = cleaned.get("language", self.instance.language)
        slug = cleaned.get("slug", self.instance.slug)
        if body and language:
            known = set(Article.objects.filter(language=language).values_list("slug", flat=True))
            known.add(slug or "")
            missing = [f"Line {line}: link to article:{slug}, but there is no article '{slug}' in '{language}'"
                       for line, slug in article_link_slugs(body) if slug not in known]
            if missing:
                self.add_error("body_markdown", missing)
        if body and language:  # past the reading-level ceiling: publishing needs the reviewer's reason
            problem = readability.publish_problem(
                body_markdown=body, language=language, status=cleaned.get("status", ""),
                override=cleaned.get("reading_level_override", ""),
            )
            if problem:
                self.add_error("reading_level_override", problem)
        return cleaned


class StageFilter(admin.SimpleListFilter):
    title = "stage"
    parameter_name = "stage"

    def lookups(self, request, model_admin):
        return Stage.choices

    def queryset(self, request, queryset):
        value = self.value()
        if value not in Stage.values:
            return queryset  # no filter, or a value we do not know: show everything rather than fail
        if connection.features.supports_json_field_contains:
            return queryset.filter(stages__contains=[value])
        return queryset.filter(stages__icontains=f'"{value}"')  # SQLite: match the quoted list item


class ReviewOverdueFilter(admin.SimpleListFilter):
    title = "review"
    parameter_name = "review"

    def lookups(self, request, model_admin):
        return [("overdue", "Review overdue"), ("current", "Reviewed recently")]

    def queryset(self, request, queryset):
        overdue = selectors.articles_review_overdue(queryset=queryset)
        if self.value() == "overdue":
            return overdue
        if self.value() == "current":
            return queryset.exclude(pk__in=overdue.values("pk"))
        return queryset


class ArticleVersionInline(admin.TabularInline):
    model = ArticleVersion
    fields = ["version", "title", "status", "created_at", "body_excerpt"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["-version"]
    verbose_name_plural = "version history (every saved version; deliveries record which one they sent)"

    @admin.display(description="body")
    def body_excerpt(self, obj):
        text = obj.body_markdown.strip().replace("\n", " ")
        return text[:160] + ("…" if len(text) > 160 else "")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    form = ArticleAdminForm
    list_display = [
        "title", "slug", "language", "status", "reviewer_display", "next_review_on", "version", "reading_level",
        "review_flag",
    ]
    list_filter = [StageFilter, "language", "status", ReviewOverdueFilter]
    search_fields = ["title", "slug", "body_markdown"]
    readonly_fields = ["review_state", "approval", "pending_changes", "reading_level", "version", "import_state",
                       "file_review_note"]
    inlines = [ArticleVersionInline]
    fieldsets = [
        (None, {"fields": ["review_state"]}),
        ("Article", {"fields": ["slug", "language", "title", "stages", "source_section", "body_markdown"]}),
        ("Review", {"fields": ["status", "approval", "pending_changes", "file_review_note"],
                    "description": "Only published articles are sent, and (with DEBUG off) only text a clinical "
                    "reviewer "
                    "approved. Saving a change to approved text makes a draft: readers keep receiving the approved "
                    "text until a reviewer approves the draft."}),
        ("Plain language", {"fields": ["reading_level", "reading_level_override"],
                            "description": "Measured on the body only (no headings or link targets). English: "
                            "Flesch-Kincaid grade, lower is easier. Spanish: Fernández-Huerta, higher is easier."}),
        ("History", {"fields": ["version", "import_state"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return fields + ["slug", "language"] if obj is not None else fields

    # --- columns and read-only fields --------------------------------------------------------------

    @admin.display(description="approved by", ordering="approved_by_name")
    def reviewer_display(self, obj):
        if selectors.awaiting_translator_review(article=obj):
            return format_html('<span class="nurture-caution">{}</span>', AWAITING_TRANSLATOR)
        if not obj.is_approved:
            return format_html('<span class="nurture-caution">{}</span>', NOT_APPROVED)
        return format_html("{}<br><small>{}</small>", obj.approved_by_name, obj.approved_by_role or "clinical reviewer")

    @admin.display(description="review due")
    def review_flag(self, obj):
        notes = []
        if obj.pending_version_id:
            notes.append(format_html('<span class="nurture-caution">✎ Draft awaiting approval</span>'))
        if selectors.review_is_overdue(article=obj):
            last = f"next review was {obj.next_review_on.isoformat()}" if obj.next_review_on else "never approved"
            notes.append(format_html('<strong class="nurture-overdue">⚠ Review overdue</strong><br><small>{}</small>',
                                     last))
        return format_html_join(mark_safe("<br>"), "{}", ((n,) for n in notes)) if notes else "—"

    @admin.display(description="approval")
    def approval(self, obj):
        if obj is None or obj.pk is None or not obj.is_approved:
            return format_html('<span class="nurture-caution">{}</span>', NOT_APPROVED)
        return format_html(
            "Version {} approved {} by {} ({}). Next review {}.", obj.version,
            obj.approved_at.strftime("%Y-%m-%d %H:%M"),
            obj.approved_by_name, obj.approved_by_role or "clinical reviewer", obj.next_review_on.isoformat(),
        )

    @admin.display(description="changes awaiting approval")
    def pending_changes(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        approve_url = reverse("admin:content_article_approve", args=[obj.pk])
        pending = obj.pending_version
        if pending is None:
            if obj.is_approved:
                return "None: readers receive the approved text."
            return format_html('Nothing approved yet. <a class="button" href="{}">Review and approve…</a>', approve_url)
        live = ArticleVersion.objects.filter(article=obj,
                                             version=obj.version).first() or obj  # the form may show the draft
        return format_html(
            'Draft version {} (saved {}) awaits a clinical reviewer; readers receive version {} until then. '
            '<a class="button" href="{}">See what changed and approve…</a>{}',
            pending.version, pending.created_at.strftime("%Y-%m-%d %H:%M"), obj.version, approve_url,
            text_diff_html(old=f"{live.title}\n\n{live.body_markdown}",
                           new=f"{pending.title}\n\n{pending.body_markdown}"),
        )

    @admin.display(description="reviewer named in the library file")
    def file_review_note(self, obj):
        if obj is None or obj.pk is None or not (obj.reviewer or obj.last_reviewed):
            return "—"
        return (f"{obj.reviewer or 'nobody'}, {obj.last_reviewed.isoformat() if obj.last_reviewed else 'no date'} "
                "(as written in the file; never shown to readers: only an approval here is)")

    @admin.display(description="review state")
    def review_state(self, obj):
        if obj is None or obj.pk is None:
            return "New article: set its status, reviewer and review date below."
        notes = []
        hold = selectors.article_hold_reason(obj)
        if hold:
            notes.append(("nurture-warning-strong", f"⚠ Not sent: this article {hold}."))
        elif not obj.is_approved:
            notes.append(("nurture-caution-strong",
                          "Not approved by a clinical reviewer: sent only in the demo (DEBUG), "
                          "marked “Draft: not yet reviewed by a clinician”."))
        if selectors.review_is_overdue(article=obj):
            notes.append(("nurture-warning-strong", f"⚠ {self._overdue_text(obj)}"))
        if selectors.awaiting_translator_review(article=obj):
            notes.append(("nurture-caution-strong", f"This translation is {AWAITING_TRANSLATOR}."))
        if not obj.is_published:
            notes.append(("nurture-caution", f"Not sent to anyone while {obj.get_status_display().lower()}."))
        if obj.pending_version_id:
            notes.append(("nurture-caution", "A draft of changes awaits approval (below)."))
        if not notes:
            return "Published and reviewed within the review period."
        return format_html_join("", '<p class="{}">{}</p>', notes)

    @admin.display(description="reading level")
    def reading_level(self, obj):
        if obj is None or obj.pk is None:
            return "Shown once saved."
        level = readability.assess(obj.body_markdown, language=obj.language)
        css = {readability.OK: "nurture-ok", readability.WARN: "nurture-caution",
               readability.BLOCK: "nurture-held-back"}[level.verdict]
        return format_html('<span class="{}">{}</span>', css, level.describe())

    @admin.display(description="imported from file")
    def import_state(self, obj):
        if obj is None or obj.pk is None or not obj.imported_hash:
            return "Not from the library files (made in admin)."
        if article_has_staff_edits(article=obj):
            return "Edited in admin since the last import: load_content keeps these edits unless run with --force."
        return "Matches its library file as last imported."

    @staticmethod
    def _overdue_text(obj) -> str:
        if not obj.is_approved or obj.next_review_on is None:
            return "Never approved by a clinical reviewer"
        return f"Review overdue: the next review was due {obj.next_review_on.isoformat()}"

    # --- views -------------------------------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "GET":
            article = self.get_object(request, object_id)
            if article is not None and selectors.review_is_overdue(article=article):
                messages.warning(request, f"{self._overdue_text(article)}. A clinical reviewer approves it below.")
        return super().change_view(request, object_id, form_url, extra_context)

    def get_object(self, request, object_id, from_field=None):
        """A pending draft is what the editor goes on editing (the form shows its text); saving keeps
        the approved text live (content.services.article_save)."""
        article = super().get_object(request, object_id, from_field)
        if article is not None and article.pending_version_id and request.method == "GET" and self._editing(request):
            article.title, article.body_markdown = article.pending_version.title, article.pending_version.body_markdown
        return article

    @staticmethod
    def _editing(request) -> bool:
        return request.resolver_match is not None and request.resolver_match.url_name == "content_article_change"

    def get_urls(self):
        approve = self.admin_site.admin_view(self.approve_view)
        return [path("<path:object_id>/approve/", approve, name="content_article_approve"), *super().get_urls()]

    def approve_view(self, request, object_id):
        """A clinical reviewer sees what changed since the approved text and approves it (403 without it)."""
        if not request.user.has_perm(APPROVE_PERMISSION):
            raise PermissionDenied(
                "This page needs the permission “approve articles”, which your account does not have. "
                f"Ask an administrator for the role “{CLINICAL_REVIEWERS}”."
            )
        article = (Article.objects.select_related("pending_version").filter(pk=object_id).first()
                   if str(object_id).isdigit() else None)
        if article is None:
            raise Http404("No such article.")
        form = ApproveForm(request.POST or None, initial={"role": _last_role(request.user)})
        if request.method == "POST" and form.is_valid():
            try:
                version = article_approve(
                    article_id=article.pk, user=request.user, role=form.cleaned_data["role"],
                    next_review_on=form.cleaned_data["next_review_on"],
                )
            except (ApprovalError, ValidationError) as error:
                form.add_error(None, str(error.messages[0] if isinstance(error, ValidationError) else error))
            else:
                messages.success(request,
                    f"Approved version {version.version} of “{article.title}”; next review {version.next_review_on}.")
                return redirect("admin:content_article_change", article.pk)
        pending = article.pending_version
        new_title, new_body = (pending.title, pending.body_markdown) if pending else (article.title,
                                                                                      article.body_markdown)
        approved_before = article.is_approved
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "title": f"Approve “{article.title}”",
            "article": article, "pending": pending, "form": form, "approved_before": approved_before,
            "diff": text_diff_html(old=f"{article.title}\n\n{article.body_markdown}", new=f"{new_title}\n\n{new_body}")
            if pending and approved_before else "",
            "new_title": new_title, "new_body": new_body,
            "level": readability.assess(new_body, language=article.language),
            "months": selectors.review_period_months(),
        }
        return TemplateResponse(request, "admin/content/article/approve.html", context,
                                status=400 if form.errors else 200)

    def save_model(self, request, obj, form, change):
        was_pending = obj.pending_version_id
        article_save(article=obj)
        if obj.pending_version_id and obj.pending_version_id != was_pending:
            messages.info(request,
                "Saved as a draft: readers keep receiving the approved text until a clinical reviewer approves it.")
        level = readability.assess(obj.body_markdown, language=obj.language)
        if level.verdict != readability.OK:
            messages.warning(request, f"Reading level {level.describe()}. Shorter sentences and everyday words help.")
