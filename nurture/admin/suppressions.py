"""Admin for the suppression list: staff-added suppressions go through address_suppress, so the
subscriber stops at once. A suppression's page is in the audit trail under the subscriber who has
that address, when there is one (the trail holds ids, never the address)."""
from __future__ import annotations

from django.contrib import admin

from nurture import selectors
from nurture.models import Suppression
from nurture.services.audit import audit_record
from nurture.services.suppression import address_suppress


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ["email", "reason", "created_at"]
    search_fields = ["email"]

    def get_readonly_fields(self, request, obj=None):
        return ["email", "reason", "created_at"] if obj else ["created_at"]

    def save_model(self, request, obj, form, change):
        # Through the one suppression service, so a subscriber with this address stops at once.
        if not change:
            address_suppress(email=obj.email, reason=obj.reason or "added by staff", source="admin")
            obj.pk = selectors.with_address(Suppression.objects.all(), obj.email).get().pk

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        suppression = (getattr(response, "context_data", None) or {}).get("original")
        if request.method == "GET" and response.status_code == 200 and suppression is not None:
            subscriber = selectors.subscriber_by_email(email=suppression.email)
            if subscriber is not None:
                audit_record(user=request.user, action="view", subscriber_id=subscriber.pk, detail="suppression page")
        return response
