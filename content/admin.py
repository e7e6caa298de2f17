"""Admin for the guide's articles: editing, the review workflow and the version history.

The engine adds the article's email preview (nurture/admin/articles.py: it needs the email layout).

Saving goes through content.services.article_save (HTML, version, snapshot). The form runs the same Markdown
checks as load_content, so staff cannot save what the import would reject.
"""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils.html import format_html, format_html_join

from content import readability, selectors
from content.models import Article, ArticleVersion, Stage
from content.rendering import article_link_slugs, markdown_problems
from content.services import article_has_staff_edits, article_save

AWAITING_TRANSLATOR = "awaiting review by a qualified translator"


class ArticleAdminForm(forms.ModelForm):
    stages = forms.MultipleChoiceField(choices=Stage.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = Article
        fields = [
            "slug", "language", "title", "stages", "source_section", "body_markdown", "status", "reviewer", "last_reviewed",
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
            "reviewer": "Who reviewed this version. Leave empty for a translation not yet reviewed by a qualified translator.",
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
        "title", "slug", "language", "status", "reviewer_display", "last_reviewed", "version", "reading_level", "review_flag",
    ]
    list_filter = [StageFilter, "language", "status", ReviewOverdueFilter]
    search_fields = ["title", "slug", "body_markdown"]
    readonly_fields = ["review_state", "reading_level", "version", "import_state"]
    inlines = [ArticleVersionInline]
    fieldsets = [
        (None, {"fields": ["review_state"]}),
        ("Article", {"fields": ["slug", "language", "title", "stages", "source_section", "body_markdown"]}),
        ("Review", {"fields": ["status", "reviewer", "last_reviewed"],
                    "description": "Only published articles are sent. Record who reviewed this version and when."}),
        ("Plain language", {"fields": ["reading_level", "reading_level_override"],
                            "description": "Measured on the body only (no headings or link targets). English: "
                            "Flesch-Kincaid grade, lower is easier. Spanish: Fernández-Huerta, higher is easier."}),
        ("History", {"fields": ["version", "import_state"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return fields + ["slug", "language"] if obj is not None else fields

    # --- columns and read-only fields --------------------------------------------------------------

    @admin.display(description="reviewer", ordering="reviewer")
    def reviewer_display(self, obj):
        if selectors.awaiting_translator_review(article=obj):
            return format_html('<span class="nurture-caution">{}</span>', AWAITING_TRANSLATOR)
        return obj.reviewer or "—"

    @admin.display(description="review due")
    def review_flag(self, obj):
        if not selectors.review_is_overdue(article=obj):
            return "—"
        last = f"last reviewed {obj.last_reviewed.isoformat()}" if obj.last_reviewed else "never reviewed"
        return format_html('<strong class="nurture-overdue">⚠ Review overdue</strong><br><small>{}</small>', last)

    @admin.display(description="review state")
    def review_state(self, obj):
        if obj is None or obj.pk is None:
            return "New article: set its status, reviewer and review date below."
        notes = []
        if selectors.review_is_overdue(article=obj):
            notes.append(("nurture-warning-strong", f"⚠ {self._overdue_text(obj)}"))
        if selectors.awaiting_translator_review(article=obj):
            notes.append(("nurture-caution-strong", f"This translation is {AWAITING_TRANSLATOR}."))
        if not obj.is_published:
            notes.append(("nurture-caution", f"Not sent to anyone while {obj.get_status_display().lower()}."))
        if not notes:
            return "Published and reviewed within the review period."
        return format_html_join("", '<p class="{}">{}</p>', notes)

    @admin.display(description="reading level")
    def reading_level(self, obj):
        if obj is None or obj.pk is None:
            return "Shown once saved."
        level = readability.assess(obj.body_markdown, language=obj.language)
        css = {readability.OK: "nurture-ok", readability.WARN: "nurture-caution", readability.BLOCK: "nurture-held-back"}[level.verdict]
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
        if obj.last_reviewed is None:
            return "Never reviewed"
        return f"Review overdue: last reviewed {obj.last_reviewed.isoformat()}, {selectors.review_period_months()} or more months ago"

    # --- views -------------------------------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "GET":
            article = self.get_object(request, object_id)
            if article is not None and selectors.review_is_overdue(article=article):
                messages.warning(request, f"{self._overdue_text(article)}. Please review it and record the date.")
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        article_save(article=obj)
        level = readability.assess(obj.body_markdown, language=obj.language)
        if level.verdict != readability.OK:
            messages.warning(request, f"Reading level {level.describe()}. Shorter sentences and everyday words help.")
