"""The audit trail in admin, for Auditors: read-only for everyone (no add, change or delete, not even
for a superuser), filterable by staff user, action and subscriber id, exportable as CSV (the rows the
current filters show). Entries are written by nurture.services.audit."""
from __future__ import annotations

import csv

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.urls import path, reverse

from nurture.models import AuditEntry

from nurture.admin.base import CheckedListAdmin, ListQueryRefused, ViewOnlyAdmin, require_permission

EXPORT_PERMISSION = "nurture.export_auditentry"
# "suppression id" came later (the suppression-list audit): appended, so the earlier columns keep their places.
CSV_HEADER = ["id", "at", "staff user", "action", "subscriber id", "delivery id", "detail", "suppression id"]


class SubscriberIdFilter(admin.SimpleListFilter):
    """A box for one subscriber id (?subscriber_id=123); anything but digits is ignored."""

    title = "subscriber id"
    parameter_name = "subscriber_id"  # also the field it filters
    template = "admin/nurture/auditentry/id_filter.html"

    def lookups(self, request, model_admin):
        return [("", "")]  # the template shows a text box instead of choices

    def has_output(self):
        return True

    def choices(self, changelist):
        # One "choice": the box's current value and the other filters, kept as hidden fields.
        hidden = []
        for name, value in changelist.params.items():
            if name not in (self.parameter_name, "p", "e"):
                hidden.extend((name, v) for v in (value if isinstance(value, list) else [value]))
        yield {"name": self.parameter_name, "value": self.value() or "", "hidden": hidden}

    def queryset(self, request, queryset):
        value = (self.value() or "").strip()
        if value.isascii() and value.isdigit() and len(value) <= 18:
            return queryset.filter(**{self.parameter_name: int(value)})
        return queryset


class SuppressionIdFilter(SubscriberIdFilter):
    """A box for one suppression-list row's id (?suppression_id=7): who looked at it, and when."""

    title = "suppression id"
    parameter_name = "suppression_id"


class _Echo:
    def write(self, value):
        return value


@admin.register(AuditEntry)
class AuditEntryAdmin(CheckedListAdmin, ViewOnlyAdmin):
    list_display = ["at", "username", "action", "subscriber_id", "delivery_id", "suppression_id", "article_id",
                    "detail"]
    declared_filters_only = True  # the filters beside the list, and the date hierarchy
    list_filter = [("user", admin.RelatedOnlyFieldListFilter), "action", SubscriberIdFilter, SuppressionIdFilter]
    date_hierarchy = "at"
    list_per_page = 100
    fields = ["at", "user_id", "username", "action", "subscriber_id", "delivery_id", "suppression_id", "article_id",
              "detail"]
    readonly_fields = fields
    actions = None

    def get_urls(self):
        export = self.admin_site.admin_view(self.export_view)
        return [path("export/", export, name="nurture_auditentry_export"), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        extra = {**(extra_context or {})}
        if request.user.has_perm(EXPORT_PERMISSION):
            query = request.GET.urlencode()
            extra["export_url"] = reverse("admin:nurture_auditentry_export") + (f"?{query}" if query else "")
        return super().changelist_view(request, extra)

    def export_view(self, request):
        """The entries the changelist shows with the same filters, as CSV (streamed, any size)."""
        require_permission(request, EXPORT_PERMISSION)
        try:
            entries = self.get_changelist_instance(request).get_queryset(request).order_by("at", "pk")
        except (IncorrectLookupParameters, ListQueryRefused):
            return HttpResponseBadRequest("These filters are not ones the audit trail has. Nothing was exported.",
                                          content_type="text/plain; charset=utf-8")
        writer = csv.writer(_Echo())

        def rows():
            yield writer.writerow(CSV_HEADER)
            columns = ("pk", "at", "username", "action", "subscriber_id", "delivery_id", "detail", "suppression_id")
            rows = entries.values_list(*columns).iterator(chunk_size=5000)
            for pk, at, username, action, subscriber_id, delivery_id, detail, suppression_id in rows:
                yield writer.writerow([pk, at.isoformat(), username, action, subscriber_id or "", delivery_id or "",
                                       detail,
                                       suppression_id or ""])

        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="audit-trail.csv"'
        return response
