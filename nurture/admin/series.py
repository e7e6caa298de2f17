"""Admin for series and their steps. Steps show whether they are held back and why (an article not
published), with the same reads the sender uses."""
from __future__ import annotations

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from nurture.models import Series, Step, StepArticle
from nurture.selectors.series import step_hold_reasons, step_is_held_back



def _held_back_text(step: Step) -> str:
    reasons = step_hold_reasons(step=step)
    if not reasons:
        return ""
    if step_is_held_back(step=step):
        return "Held back: " + "; ".join(reasons)
    return "Sent without: " + "; ".join(reasons)


def _held_back_html(step: Step):
    text = _held_back_text(step)
    if not text:
        return "—"
    css_class = "nurture-held-back" if text.startswith("Held back") else "nurture-caution"
    return format_html('<span class="{}">⚠ {}</span>', css_class, text)


def _article_list(step: Step) -> str:
    """The step's articles by title, as readers see them (the slug names them in files and links)."""
    links = sorted(step.steparticle_set.all(), key=lambda link: (link.order, link.pk))
    return "; ".join(link.article.title for link in links) or "—"


class StepNumberField(forms.IntegerField):
    """A step's place in its series counted from 1, as staff and the rest of the admin count it;
    stored as the position (from 0)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("label", "Step")
        kwargs.setdefault("help_text", "Its place in the series: 1 is the first email.")
        super().__init__(**kwargs)

    def prepare_value(self, value):
        return value + 1 if isinstance(value, int) else value  # the stored position; typed text stays as typed

    def to_python(self, value):
        number = super().to_python(value)
        if number is not None and number < 1:
            raise forms.ValidationError("Step numbers start at 1.", code="min_value")
        return None if number is None else number - 1


class StepForm(forms.ModelForm):
    position = StepNumberField()

    class Meta:
        model = Step
        fields = "__all__"


class StepInline(admin.TabularInline):
    model = Step
    form = StepForm
    fields = ["position", "delay_days", "subject", "before_treatment", "articles_summary", "held_back"]
    readonly_fields = ["articles_summary", "held_back"]
    extra = 0
    show_change_link = True
    ordering = ["position"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("steparticle_set__article")

    @admin.display(description="articles")
    def articles_summary(self, obj):
        return _article_list(obj) if obj.pk else "—"

    @admin.display(description="held back")
    def held_back(self, obj):
        return _held_back_html(obj) if obj.pk else "—"


@admin.register(Series)
class SeriesAdmin(admin.ModelAdmin):
    # Its change list links to the overview and the email previews (templates/admin/nurture/series/).
    list_display = ["name", "stage", "language", "step_count", "held_back_steps"]
    list_filter = ["stage", "language"]
    search_fields = ["name"]
    inlines = [StepInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("steps__steparticle_set__article")

    @admin.display(description="steps")
    def step_count(self, obj):
        return len(obj.steps.all())

    @admin.display(description="steps held back")
    def held_back_steps(self, obj):
        held = [s for s in obj.steps.all() if step_is_held_back(step=s)]
        if not held:
            return "—"
        return format_html_join(
            mark_safe("<br>"), '<span class="nurture-held-back">⚠ #{}: {}</span>',
            ((s.position + 1, "; ".join(step_hold_reasons(step=s))) for s in held),
        )


class StepArticleFormSet(forms.BaseInlineFormSet):
    """A step's articles must be in its series' language (also while the step is being added)."""

    def clean(self):
        super().clean()
        step = self.instance
        if not step.series_id:
            return
        language = step.series.language
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or form.cleaned_data.get("DELETE"):
                continue
            article = form.cleaned_data.get("article")
            if article is not None and article.language != language:
                form.add_error("article",
                               f"'{article.slug}' is in '{article.language}', but this series is in '{language}'.")


class StepArticleInline(admin.TabularInline):
    model = StepArticle
    formset = StepArticleFormSet
    fields = ["article", "order"]
    # A plain list (each article by title and language), not an autocomplete: a screen reader names it
    # by its column, where select2's box has no name.
    extra = 1
    ordering = ["order"]


class SeriesLanguageFilter(admin.SimpleListFilter):
    title = "language"
    parameter_name = "language"

    def lookups(self, request, model_admin):
        from content.models import Language

        return Language.choices

    def queryset(self, request, queryset):
        from content.models import Language

        if self.value() in Language.values:
            return queryset.filter(series__language=self.value())
        return queryset


@admin.register(Step)
class StepAdmin(admin.ModelAdmin):
    form = StepForm
    list_display = ["step_label", "series_label", "delay_days", "before_treatment", "articles_summary", "held_back",
                    "preview_link"]
    list_filter = ["series", SeriesLanguageFilter]
    search_fields = ["subject", "series__name"]
    list_select_related = ["series"]
    inlines = [StepArticleInline]
    ordering = ["series", "position"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("steparticle_set__article")

    @admin.display(description="step", ordering="position")
    def step_label(self, obj):
        return f"#{obj.position + 1}: {obj.subject}"

    @admin.display(description="series", ordering="series__stage")
    def series_label(self, obj):
        return f"{obj.series.get_stage_display()} ({obj.series.language})"

    @admin.display(description="articles")
    def articles_summary(self, obj):
        return _article_list(obj)

    @admin.display(description="held back")
    def held_back(self, obj):
        return _held_back_html(obj)

    @admin.display(description="email")
    def preview_link(self, obj):
        return format_html('<a href="{}">Preview</a>', reverse("email_preview:step", args=[obj.pk]))
