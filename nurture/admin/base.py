"""Shared admin bases: read-only model admins and actions that refuse tampered or oversized selections."""
from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from nurture.models import Step


# Rows one admin action may touch: each subscriber goes through its service (a locked row each), and
# a larger "select all" would make a slow request. Staff repeat the action for the rest.
ACTION_LIMIT = 1000


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


def delivery_preview_link(delivery_id: int):
    return format_html('<a href="{}">View as sent</a>', reverse("email_preview:delivery", args=[delivery_id]))


def step_label(step: Step) -> str:
    return f"#{step.position + 1}: {step.subject}"
