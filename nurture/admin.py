"""Admin for series, steps, subscribers and deliveries.

Steps show whether they are held back and why (an article not published), using nurture.selectors, the
same rule the sending side uses. Subscribers and deliveries have no edit form: every change goes
through the engine's services, as thin admin actions (docs/admin.md):

- subscribers: change stage/language (subscribers.subscriber_change_stage: the start of the new
  series, history kept, no article twice), pause, resume, unsubscribe;
- deliveries: requeue failed ones (sending.deliveries_requeue).

Staff who may do this are those with the model's "change" permission; the rest see them read-only.
"""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import transaction
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_http_methods

from content.models import Language, Stage
from nurture import selectors, tasks
from nurture.models import ConsentRecord, Delivery, Series, Step, StepArticle, Subscriber, Suppression
from nurture.services import sending
from nurture.services.suppression import address_suppress
from nurture.services import subscribers as subscriber_services

# Rows one admin action may touch: each subscriber goes through its service (a locked row each), and
# a larger "select all" would make a slow request. Staff repeat the action for the rest.
ACTION_LIMIT = 1000


def _held_back_text(step: Step) -> str:
    reasons = selectors.step_hold_reasons(step=step)
    if not reasons:
        return ""
    if selectors.step_is_held_back(step=step):
        return "Held back: " + "; ".join(reasons)
    return "Sent without: " + "; ".join(reasons)


def _held_back_html(step: Step):
    text = _held_back_text(step)
    if not text:
        return "—"
    colour = "#b91c1c" if text.startswith("Held back") else "#b45309"
    return format_html('<span style="color:{}">⚠ {}</span>', colour, text)


def _article_list(step: Step) -> str:
    links = sorted(step.steparticle_set.all(), key=lambda link: (link.order, link.pk))
    return ", ".join(link.article.slug for link in links) or "—"


class StepInline(admin.TabularInline):
    model = Step
    fields = ["position", "delay_days", "subject", "articles_summary", "held_back"]
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
        held = [s for s in obj.steps.all() if selectors.step_is_held_back(step=s)]
        if not held:
            return "—"
        return format_html('<span style="color:#b91c1c">⚠ {}</span>', ", ".join(f"#{s.position + 1}" for s in held))


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
                form.add_error("article", f"'{article.slug}' is in '{article.language}', but this series is in '{language}'.")


class StepArticleInline(admin.TabularInline):
    model = StepArticle
    formset = StepArticleFormSet
    fields = ["article", "order"]
    autocomplete_fields = ["article"]
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
    list_display = ["step_label", "series_label", "position", "delay_days", "articles_summary", "held_back", "preview_link"]
    list_filter = ["series", SeriesLanguageFilter]
    search_fields = ["subject", "series__name"]
    list_select_related = ["series"]
    inlines = [StepArticleInline]
    ordering = ["series", "position"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("steparticle_set__article")

    @admin.display(description="step", ordering="subject")
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


class ConsentInline(admin.TabularInline):
    model = ConsentRecord
    fields = ["language", "given_at", "confirmed_at", "consent_text"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class SafeActionIdsMixin:
    """A tampered action POST (an id that is not a number) gets a message, not a 500, and a
    "select all" larger than ACTION_LIMIT is refused before anything changes."""

    def response_action(self, request, queryset):
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if any(not (value.isascii() and value.isdigit()) for value in selected):
            self.message_user(request, "Some of the chosen rows are not valid ids. Nothing was changed.", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset)

    def _within_limit(self, request, queryset) -> list[int] | None:
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[: ACTION_LIMIT + 1])
        if len(ids) > ACTION_LIMIT:
            self.message_user(
                request, f"Choose at most {ACTION_LIMIT:,} rows at a time (filter the list first). Nothing was changed.",
                messages.ERROR,
            )
            return None
        return ids


def _delivery_preview_link(delivery_id: int):
    return format_html('<a href="{}">View as sent</a>', reverse("email_preview:delivery", args=[delivery_id]))


def _step_label(step: Step) -> str:
    return f"#{step.position + 1}: {step.subject}"


# --- subscribers ----------------------------------------------------------------------------------

KEEP_LANGUAGE = ""
# Who an admin operation applies to; the others are left as they were, and staff are told so.
MOVABLE_STATUSES = (Subscriber.Status.PENDING, Subscriber.Status.ACTIVE, Subscriber.Status.PAUSED)


class ChangeStageForm(forms.Form):
    """Stage (and optionally language) for the chosen subscribers. Refuses a target with no series,
    or a series with no steps, before anything changes."""

    stage = forms.ChoiceField(choices=Stage.choices)
    language = forms.ChoiceField(
        choices=[(KEEP_LANGUAGE, "Keep each subscriber's language"), *Language.choices], required=False
    )

    def __init__(self, *args, languages: set[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.subscriber_languages = languages  # the languages of the subscribers to be moved

    def clean(self):
        cleaned = super().clean()
        stage = cleaned.get("stage")
        if not stage or "language" not in cleaned:  # a field error already says what is wrong
            return cleaned
        wanted = {cleaned.get("language")} - {KEEP_LANGUAGE} or self.subscriber_languages
        step_counts = selectors.series_step_counts(stage=stage, languages=wanted)
        problems = []
        for language in sorted(wanted):
            label = f"{Stage(stage).label} in {Language(language).label}"
            if language not in step_counts:
                problems.append(f"There is no series for {label}.")
            elif step_counts[language] == 0:
                problems.append(f"The series for {label} has no steps, so they would get nothing.")
        if problems:
            raise forms.ValidationError(
                [*problems, "Add it under Nurture series → Series (or run load_content), or choose another stage or language. Nothing was changed."]
            )
        return cleaned


class DeliveryInline(admin.TabularInline):
    """What this subscriber was sent (or is about to be), newest first. Read-only: history."""

    model = Delivery
    fields = ["step_display", "status", "queued_at", "sent_at", "failure_reason", "preview"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["-queued_at"]
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("step__series")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="step")
    def step_display(self, obj):
        return _step_label(obj.step)

    @admin.display(description="email")
    def preview(self, obj):
        return _delivery_preview_link(obj.pk)


@admin.register(Subscriber)
class SubscriberAdmin(SafeActionIdsMixin, ReadOnlyAdmin):
    list_display = ["id", "email", "status", "language", "stage", "cadence", "series", "next_step_position", "next_send_at", "created_at"]
    list_filter = ["status", "language", "cadence"]
    list_select_related = ["series"]
    search_fields = ["email"]
    # No form: the address comes from the confirmed sign-up and is never edited here; everything
    # else changes through the actions below (services), never by saving fields.
    readonly_fields = [
        "email", "first_name", "status", "stage", "language", "cadence", "time_zone", "series", "next_step",
        "next_send_at", "last_sent_at", "created_at", "confirmed_at", "unsubscribed_at",
    ]
    fields = readonly_fields
    inlines = [DeliveryInline, ConsentInline]
    actions = ["change_stage", "pause", "resume", "unsubscribe"]

    def has_manage_permission(self, request, obj=None):
        return request.user.has_perm("nurture.change_subscriber")

    @admin.display(description="next step")
    def next_step(self, obj):
        if obj.series_id is None:
            return "— (no series: not confirmed yet, or no series for their stage and language)"
        step = selectors.steps_from(series_id=obj.series_id, position=obj.next_step_position).first()
        if step is None:
            return f"— (series finished: nothing after position {obj.next_step_position})"
        return f"{_step_label(step)} (position {step.position})"

    # --- actions (changelist) ---------------------------------------------------------------------

    @admin.action(description="Change stage / language of the selected subscribers…", permissions=["manage"])
    def change_stage(self, request, queryset):
        ids = self._within_limit(request, queryset)
        if ids is None:
            return None
        subscribers = list(Subscriber.objects.filter(pk__in=ids).order_by("pk"))
        form = self._stage_form(request, subscribers, bound="apply" in request.POST)
        if form.is_bound and form.is_valid():
            self._apply_stage_change(request, subscribers, form)
            return None
        return self._stage_page(request, subscribers, form, from_changelist=True)

    @admin.action(description="Pause the selected subscribers", permissions=["manage"])
    def pause(self, request, queryset):
        self._run_service(request, queryset, "pause")

    @admin.action(description="Resume the selected subscribers", permissions=["manage"])
    def resume(self, request, queryset):
        self._run_service(request, queryset, "resume")

    @admin.action(description="Unsubscribe the selected subscribers…", permissions=["manage"])
    def unsubscribe(self, request, queryset):
        ids = self._within_limit(request, queryset)
        if ids is None:
            return None
        if "apply" in request.POST:
            self._run_service(request, Subscriber.objects.filter(pk__in=ids), "unsubscribe")
            return None
        subscribers = list(Subscriber.objects.filter(pk__in=ids).order_by("pk"))
        return TemplateResponse(
            request,
            "admin/nurture/subscriber/action_confirm.html",
            {
                **self.admin_site.each_context(request),
                "title": "Unsubscribe these subscribers?",
                "opts": self.model._meta,
                "subscribers": subscribers,
                "action": "unsubscribe",
                "intro": "They get no more emails; queued ones are not sent. Only they can sign up again (with a new confirmation).",
                "button": "Yes, unsubscribe them",
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )

    # --- the shared steps -------------------------------------------------------------------------

    SERVICES = {
        # name: (service, statuses it applies to, verb, why the others were left)
        "pause": (subscriber_services.subscriber_pause, (Subscriber.Status.ACTIVE,), "Paused", "only active subscribers can be paused"),
        "resume": (subscriber_services.subscriber_resume, (Subscriber.Status.PAUSED,), "Resumed", "only paused subscribers can be resumed"),
        "unsubscribe": (
            subscriber_services.subscriber_unsubscribe, MOVABLE_STATUSES, "Unsubscribed",
            "already unsubscribed or suppressed",
        ),
    }

    def _run_service(self, request, queryset, name: str) -> None:
        service, applies_to, verb, why_not = self.SERVICES[name]
        ids = self._within_limit(request, queryset)
        if ids is None:
            return
        targets = list(Subscriber.objects.filter(pk__in=ids, status__in=applies_to).order_by("pk"))
        with transaction.atomic():  # all or nothing
            for subscriber in targets:
                service(subscriber_id=subscriber.pk)
                self.log_change(request, subscriber, f"{verb} through the admin.")
        left = len(ids) - len(targets)
        text = f"{verb} {len(targets)} subscriber{'s' if len(targets) != 1 else ''}."
        if left:
            text += f" {left} left as they were: {why_not}."
        self.message_user(request, text, messages.SUCCESS if targets else messages.WARNING)

    def _stage_form(self, request, subscribers: list[Subscriber], *, bound: bool) -> ChangeStageForm:
        languages = {s.language for s in subscribers if s.status in MOVABLE_STATUSES}
        return ChangeStageForm(request.POST if bound else None, languages=languages)

    def _apply_stage_change(self, request, subscribers: list[Subscriber], form: ChangeStageForm) -> None:
        stage, language = form.cleaned_data["stage"], form.cleaned_data["language"] or None
        movable = [s for s in subscribers if s.status in MOVABLE_STATUSES]
        moved = 0
        with transaction.atomic():  # all or nothing
            for subscriber in movable:
                before = (subscriber.stage, subscriber.language, subscriber.series_id)
                after = subscriber_services.subscriber_change_stage(subscriber_id=subscriber.pk, stage=stage, language=language)
                if (after.stage, after.language, after.series_id) != before:
                    moved += 1
                    self.log_change(request, after, "Stage/language changed through the admin: moved to the start of its series.")
        text = f"Moved {moved} subscriber{'s' if moved != 1 else ''} to the start of the series for the stage chosen."
        already = len(movable) - moved
        if already:
            text += f" {already} already had that stage and language (left where they were)."
        if len(subscribers) > len(movable):
            text += f" {len(subscribers) - len(movable)} left as they were: unsubscribed or suppressed."
        self.message_user(request, text, messages.SUCCESS if moved else messages.WARNING)

    def _stage_page(self, request, subscribers, form, *, from_changelist: bool):
        return TemplateResponse(
            request,
            "admin/nurture/subscriber/change_stage.html",
            {
                **self.admin_site.each_context(request),
                "title": "Change stage / language",
                "opts": self.model._meta,
                "subscribers": subscribers,
                "form": form,
                "from_changelist": from_changelist,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "unchanged": [s for s in subscribers if s.status not in MOVABLE_STATUSES],
            },
        )

    # --- one subscriber: the same steps from their page ----------------------------------------------

    def get_urls(self):
        manage = self.admin_site.admin_view(require_http_methods(["GET", "POST"])(self.manage_view))
        return [path("<path:object_id>/manage/", manage, name="nurture_subscriber_manage"), *super().get_urls()]

    @staticmethod
    def _manage_url(subscriber_id) -> str:
        return reverse("admin:nurture_subscriber_manage", args=[subscriber_id])

    def manage_view(self, request, object_id):
        """One subscriber's page for the same operations: change stage / language, pause, resume, unsubscribe."""
        subscriber = self.get_object(request, object_id)  # None for a bad or unknown id
        if subscriber is None:
            self.message_user(request, f"There is no subscriber with id “{object_id}”.", messages.ERROR)
            return redirect("admin:nurture_subscriber_changelist")
        change_url = reverse("admin:nurture_subscriber_change", args=[subscriber.pk])
        if not self.has_manage_permission(request):
            self.message_user(request, "You may view subscribers but not change them.", messages.ERROR)
            return redirect(change_url)
        one = Subscriber.objects.filter(pk=subscriber.pk)
        operation = request.POST.get("operation", "") if request.method == "POST" else ""
        if operation in self.SERVICES:
            self._run_service(request, one, operation)
            return redirect(change_url)
        form = self._stage_form(request, [subscriber], bound=operation == "change_stage")
        if form.is_bound and form.is_valid():
            self._apply_stage_change(request, [subscriber], form)
            return redirect(change_url)
        if request.method == "POST" and operation != "change_stage":
            self.message_user(request, "Choose one of the buttons on this page.", messages.ERROR)
        response = self._stage_page(request, [subscriber], form, from_changelist=False)
        response.context_data.update(
            subscriber=subscriber,
            change_url=change_url,
            title=f"Manage {subscriber}",
            subscriber_operations=[
                (name, name.capitalize()) for name, (_s, applies_to, *_rest) in self.SERVICES.items() if subscriber.status in applies_to
            ],
        )
        if form.is_bound:
            response.status_code = 400
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {**(extra_context or {})}
        if self.has_manage_permission(request):
            extra["manage_url"] = self._manage_url(object_id)
        return super().change_view(request, object_id, form_url, extra)


# --- deliveries -----------------------------------------------------------------------------------


@admin.register(Delivery)
class DeliveryAdmin(SafeActionIdsMixin, ReadOnlyAdmin):
    list_display = [
        "id", "subscriber_link", "step_display", "status", "failure_reason_short", "attempts", "message_id",
        "provider_message_id", "provider_call_started_at", "next_attempt_at", "queued_at", "sent_at", "preview",
    ]
    list_filter = ["status", "step__series"]
    list_select_related = ["step__series"]
    search_fields = ["subscriber__email", "provider_message_id", "message_id"]
    readonly_fields = [
        "subscriber_link", "step_display", "status", "failure_reason", "attempts", "articles_sent", "message_id",
        "provider_message_id", "queued_at", "sending_started_at", "provider_call_started_at", "next_attempt_at",
        "sent_at", "failed_at", "preview",
    ]
    fields = readonly_fields
    actions = ["requeue"]

    def has_delete_permission(self, request, obj=None):
        return False  # the record of what was sent; it goes when its subscriber is deleted

    def has_requeue_permission(self, request, obj=None):
        return request.user.has_perm("nurture.change_delivery")

    @admin.display(description="subscriber", ordering="subscriber_id")
    def subscriber_link(self, obj):
        return format_html(
            '<a href="{}">#{}</a>', reverse("admin:nurture_subscriber_change", args=[obj.subscriber_id]), obj.subscriber_id
        )

    @admin.display(description="step", ordering="step__position")
    def step_display(self, obj):
        return f"{obj.step.series.name} ({obj.step.series.language}) {_step_label(obj.step)}"

    @admin.display(description="failure reason")
    def failure_reason_short(self, obj):
        reason = obj.failure_reason or ""
        return reason if len(reason) <= 120 else reason[:119] + "…"

    @admin.display(description="articles")
    def articles_sent(self, obj):
        shown = selectors.delivery_articles(delivery=obj)
        if not shown:
            return "— (no published article left for it)"
        return format_html_join(", ", "{} (version {})", ((a.slug, a.version) for a in shown))

    @admin.display(description="email")
    def preview(self, obj):
        return _delivery_preview_link(obj.pk)

    @admin.action(description="Requeue the selected failed deliveries", permissions=["requeue"])
    def requeue(self, request, queryset):
        ids = self._within_limit(request, queryset)
        if ids is None:
            return
        requeued = sending.deliveries_requeue(delivery_ids=ids, enqueue=tasks.enqueue_send_batches)
        text = f"Requeued {requeued} failed deliver{'ies' if requeued != 1 else 'y'}: they will be sent again shortly."
        if len(ids) > requeued:
            text += f" {len(ids) - requeued} not requeued: only failed deliveries can be."
        self.message_user(request, text, messages.SUCCESS if requeued else messages.WARNING)


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ["email", "reason", "created_at"]
    search_fields = ["email"]

    def get_readonly_fields(self, request, obj=None):
        return ["email", "reason", "created_at"] if obj else ["created_at"]

    def save_model(self, request, obj, form, change):
        # Through the one suppression service, so a subscriber with this address stops at once.
        if not change:
            address_suppress(email=obj.email, reason=obj.reason or "added by staff")
            obj.pk = selectors.with_address(Suppression.objects.all(), obj.email).get().pk
