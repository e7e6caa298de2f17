"""Admin for the suppression list: staff-added suppressions go through address_suppress, so the
subscriber stops at once. The list takes its search box only (no field lookups in the query string),
and a search, ordering or page of it, like a suppression's page, is in the audit trail: the row's id
and, when a subscriber has that address, theirs (the trail holds ids, never the address)."""
from __future__ import annotations

from django.contrib import admin

from nurture.models import Suppression
from nurture.selectors.subscribers import subscriber_by_email, with_address
from nurture.services.audit import audit_record, audit_record_suppressions
from nurture.services.suppression import address_suppress

from nurture.admin.base import CheckedListAdmin, list_narrowed


@admin.register(Suppression)
class SuppressionAdmin(CheckedListAdmin, admin.ModelAdmin):
    list_display = ["email", "reason", "created_at"]
    search_fields = ["email"]
    declared_filters_only = True  # ?email=, ?email__startswith=, ?reason= ... are refused (400)

    def get_readonly_fields(self, request, obj=None):
        return ["email", "reason", "created_at"] if obj else ["created_at"]

    def save_model(self, request, obj, form, change):
        # Through the one suppression service, so a subscriber with this address stops at once.
        if not change:
            address_suppress(email=obj.email, reason=obj.reason or "added by staff", source="admin")
            obj.pk = with_address(Suppression.objects.all(), obj.email).get().pk

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        suppression = (getattr(response, "context_data", None) or {}).get("original")
        if request.method == "GET" and response.status_code == 200 and suppression is not None:
            subscriber = subscriber_by_email(email=suppression.email)
            audit_record(user=request.user, action="view", subscriber_id=subscriber.pk if subscriber else None,
                         suppression_id=suppression.pk, detail="suppression page")
        return response

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        narrowed = list_narrowed(request)
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        if narrowed and changelist is not None:  # whether an address was ever suppressed is a look at its owner
            audit_record_suppressions(
                user=request.user, suppressions=[(row.pk, row.email) for row in changelist.result_list],
                detail="suppression search" if narrowed == "search" else f"suppression list {narrowed}",
            )
        return response
