"""Admin for provider webhook events: read-only, for staff looking into a bounce or complaint."""
from __future__ import annotations

from django.contrib import admin

from nurture.models import ProviderEvent
from nurture.services.audit import audit_record

from nurture.admin.base import CheckedListAdmin


@admin.register(ProviderEvent)
class ProviderEventAdmin(CheckedListAdmin, admin.ModelAdmin):
    # "matched": False for an event about a message we did not send to that address; such events
    # are kept for staff to look into and never acted on (docs/security.md, "Public surface").
    list_display = ("timestamp", "provider", "event_type", "reject_reason", "matched", "suppressed_address", "delivery")
    list_filter = ("provider", "event_type", "matched", "suppressed_address")
    search_fields = ("provider_message_id", "event_id")
    date_hierarchy = "timestamp"
    list_select_related = ("delivery",)
    raw_id_fields = ("delivery",)
    # Only the filters beside the list and the date hierarchy (whose overflowing years are a 400).
    declared_filters_only = True

    # The provider's word on what happened: never edited by hand.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        event = (getattr(response, "context_data", None) or {}).get("original")
        if request.method == "GET" and response.status_code == 200 and event is not None and event.delivery_id:
            audit_record(user=request.user, action="view", subscriber_id=event.delivery.subscriber_id,
                         delivery_id=event.delivery_id, detail="provider event page")
        return response
