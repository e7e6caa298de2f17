"""Admin for subscribers. They have no edit form: every change goes through the engine's services, as
thin admin actions (docs/admin.md): change stage/language (subscriber_change_stage: the start of the
new series, history kept, no article twice), pause, resume, unsubscribe.

Staff who may do this are those with the model's "change" permission; the rest see them read-only.
Deleting a subscriber is an erasure (retention.subscriber_erase: their address stays suppressed).
Every look at one person (their page, a search, the manage page) and every change is in the audit
trail (nurture.services.audit), ids only.
"""
from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods

from content.models import Language, Stage
from nurture.admin.care import report_bereavement
from nurture.models import CarerHandoff, ConsentRecord, Delivery, Subscriber
from nurture.selectors.series import series_step_counts, steps_from
from nurture.services import subscribers as subscriber_services
from nurture.services.audit import audit_record, audit_record_many
from nurture.services.exports import subscriber_export_by_staff
from nurture.services.retention import subscriber_erase

from nurture.admin.base import (
    CheckedListAdmin, ReadOnlyAdmin, SafeActionIdsMixin, audited_subscriber_ids, delivery_preview_link, list_narrowed,
    require_permission, step_label,
)


class HistoryInline(admin.TabularInline):
    """A read-only record list on the subscriber page: never added, changed or deleted here."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ConsentInline(HistoryInline):
    model = ConsentRecord
    fields = ["kind", "source", "language", "given_at", "confirmed_at", "consent_text"]


class CarerHandoffInline(HistoryInline):
    """Who else receives the emails (only after they confirmed), and who stopped it."""

    model = CarerHandoff
    fields = [
        "carer_email", "mode", "status", "requested_at", "carer_confirmed_at", "subscriber_confirmed_at",
        "confirmed_at",
        "stopped_at", "stopped_by",
    ]


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
        step_counts = series_step_counts(stage=stage, languages=wanted)
        problems = []
        for language in sorted(wanted):
            label = f"{Stage(stage).label} in {Language(language).label}"
            if language not in step_counts:
                problems.append(f"There is no series for {label}.")
            elif step_counts[language] == 0:
                problems.append(f"The series for {label} has no steps, so they would get nothing.")
        if problems:
            raise forms.ValidationError(
                [*problems,
                 "Add it under Nurture series → Series (or run load_content), or choose another stage or language. "
                 "Nothing was changed."]
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
        return step_label(obj.step)

    @admin.display(description="email")
    def preview(self, obj):
        return delivery_preview_link(obj.pk)


@admin.register(Subscriber)
class SubscriberAdmin(SafeActionIdsMixin, CheckedListAdmin, ReadOnlyAdmin):
    list_display = ["id", "email", "status", "language", "stage", "cadence", "series", "next_step_number",
                    "next_send_at", "created_at"]
    list_filter = ["status", "language", "cadence"]
    # Only these filters and the search box: ?email=, ?id=, ?first_name=, ?treatment_date__gte= (Django
    # would take any field) are refused with a 400, and every narrowed list is audited (changelist_view).
    declared_filters_only = True
    list_select_related = ["series"]
    search_fields = ["email"]
    # No form: the address comes from the confirmed sign-up and is never edited here; everything
    # else changes through the actions below (services), never by saving fields.
    readonly_fields = [
        "email", "first_name", "status", "stage", "language", "cadence", "time_zone", "series", "next_step",
        "next_send_at", "last_sent_at", "created_at", "confirmed_at", "unsubscribed_at", "paused_until",
        "treatment_date",
    ]
    fields = readonly_fields
    inlines = [DeliveryInline, ConsentInline, CarerHandoffInline]
    actions = ["change_stage", "pause", "resume", "unsubscribe", "export_data", report_bereavement]

    def has_manage_permission(self, request, obj=None):
        return request.user.has_perm("nurture.change_subscriber")

    def has_export_permission(self, request, obj=None):
        return request.user.has_perm("nurture.export_subscriber")  # the "Subscriber care" role

    @admin.action(description="Export everything held about the selected subscriber (JSON)", permissions=["export"])
    def export_data(self, request, queryset):
        """The same JSON as the person's own "Download my data"; each export is in the audit trail."""
        ids = list(queryset.values_list("pk", flat=True)[:2])
        if len(ids) != 1:
            messages.error(request, "Choose exactly one subscriber to export. Nothing was exported.")
            return None
        data = subscriber_export_by_staff(user=request.user, subscriber_id=ids[0], channel="admin")
        response = HttpResponse(json.dumps(data, indent=2, ensure_ascii=False),
                                content_type="application/json; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="subscriber-{ids[0]}.json"'
        response["Cache-Control"] = "private, no-store"
        return response

    @admin.display(description="next step", ordering="next_step_position")
    def next_step_number(self, obj):
        return f"#{obj.next_step_position + 1}"  # counted from 1, as steps are everywhere in the admin

    @admin.display(description="next step")
    def next_step(self, obj):
        if obj.series_id is None:
            return "— (no series: not confirmed yet, or no series for their stage and language)"
        step = steps_from(series_id=obj.series_id, position=obj.next_step_position).first()
        if step is None:
            return f"— (series finished after step #{obj.next_step_position})"
        return step_label(step)

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
                "intro": "They get no more emails; queued ones are not sent. Only they can sign up again (with a new "
                "confirmation).",
                "button": "Yes, unsubscribe them",
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )

    # --- the shared steps -------------------------------------------------------------------------

    SERVICES = {
        # name: (service, statuses it applies to, verb, why the others were left)
        "pause": (subscriber_services.subscriber_pause, (Subscriber.Status.ACTIVE,), "Paused",
                  "only active subscribers can be paused"),
        "resume": (subscriber_services.subscriber_resume, (Subscriber.Status.PAUSED,), "Resumed",
                   "only paused subscribers can be resumed"),
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
                service(subscriber_id=subscriber.pk, source="admin")  # recorded as a staff action
                self.log_change(request, subscriber, f"{verb} through the admin.")
                audit_record(user=request.user, action="change", subscriber_id=subscriber.pk, detail=name)
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
                after = subscriber_services.subscriber_change_stage(subscriber_id=subscriber.pk, stage=stage,
                                                                    language=language)
                if (after.stage, after.language, after.series_id) != before:
                    moved += 1
                    self.log_change(request, after,
                                    "Stage/language changed through the admin: moved to the start of its series.")
                    audit_record(user=request.user, action="change", subscriber_id=after.pk, detail="stage change")
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
        require_permission(request, "nurture.view_subscriber")  # before saying whether the id exists
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
        audit_record(user=request.user, action="view", subscriber_id=subscriber.pk, detail="subscriber manage page")
        response = self._stage_page(request, [subscriber], form, from_changelist=False)
        response.context_data.update(
            subscriber=subscriber,
            change_url=change_url,
            title=f"Manage {subscriber}",
            subscriber_operations=[
                (name, name.capitalize())
                for name, (_s, applies_to, *_rest) in self.SERVICES.items() if subscriber.status in applies_to
            ],
        )
        if form.is_bound:
            response.status_code = 400
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {**(extra_context or {})}
        if self.has_manage_permission(request):
            extra["manage_url"] = self._manage_url(object_id)
        response = super().change_view(request, object_id, form_url, extra)
        original = (getattr(response, "context_data", None) or {}).get("original")
        if request.method == "GET" and response.status_code == 200 and original is not None:
            audit_record(user=request.user, action="view", subscriber_id=original.pk, detail="subscriber page")
        return response

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        narrowed = list_narrowed(request)
        if narrowed:  # a search, filter, ordering or page can single someone out: each person shown is a look
            detail = "subscriber search" if narrowed == "search" else f"subscriber list {narrowed}"
            audit_record_many(user=request.user, action="view", subscriber_ids=audited_subscriber_ids(response),
                              detail=detail)
        return response

    # --- erasure ---------------------------------------------------------------------------------------

    def get_deleted_objects(self, objs, request):
        # Their deliveries and consent records go with them through subscriber_erase: deleting a
        # subscriber needs only nurture.delete_subscriber, not the (never granted) delivery delete.
        deleted, counts, _perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), protected

    def delete_model(self, request, obj):
        self._erase(request, [obj.pk])

    def delete_queryset(self, request, queryset):
        self._erase(request, list(queryset.values_list("pk", flat=True)))

    @staticmethod
    def _erase(request, subscriber_ids: list[int]) -> None:
        with transaction.atomic():
            for subscriber_id in subscriber_ids:
                if subscriber_erase(subscriber_id=subscriber_id):
                    audit_record(user=request.user, action="erase", subscriber_id=subscriber_id, detail="erasure")
