"""The staff overview at /admin/nurture/overview/: is sending healthy, and where does it need a hand?

Per series: deliveries of the last 7 days by status, held-back steps, subscribers by status; then
deliveries stuck in `sending` and those that failed in the last 24 hours, with their reasons.
A thin view over nurture.selectors' set-based reads (a fixed number of queries, whatever the size).
Needs nurture.view_overview (Auditors and Subscriber care); the lists of single deliveries and their
failure reasons (which may quote an address) show only with nurture.view_delivery too.
"""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import admin
from django.shortcuts import render
from django.utils import timezone

from nurture import selectors
from nurture.models import Delivery, Subscriber

from nurture.admin.base import VIEW_DELIVERY, VIEW_OVERVIEW, staff_view

DELIVERY_WINDOW = timedelta(days=7)
FAILURE_WINDOW = timedelta(hours=24)


@staff_view(VIEW_OVERVIEW)
def overview(request):
    now = timezone.now()
    series_rows = selectors.series_overview(since=now - DELIVERY_WINDOW)
    delivery_statuses = Delivery.Status.choices
    subscriber_statuses = Subscriber.Status.choices
    table = [
        {
            "series": row.series,
            "deliveries": [row.deliveries.get(value, 0) for value, _label in delivery_statuses],
            "subscribers": [row.subscribers.get(value, 0) for value, _label in subscriber_statuses],
            "held_back": row.held_back,
            "hold_reasons": row.hold_reasons,
        }
        for row in series_rows
    ]
    totals = {
        "deliveries": [sum(r["deliveries"][i] for r in table) for i in range(len(delivery_statuses))],
        "subscribers": [sum(r["subscribers"][i] for r in table) for i in range(len(subscriber_statuses))],
    }
    sending_timeout = timedelta(seconds=settings.NURTURE_SENDING_TIMEOUT_SECONDS)
    return render(
        request,
        "admin/nurture/overview/index.html",
        {
            **admin.site.each_context(request),
            "title": "Sending overview",
            "now": now,
            "table": table,
            "totals": totals,
            "delivery_statuses": delivery_statuses,
            "subscriber_statuses": subscriber_statuses,
            "stuck": selectors.deliveries_stuck_sending(older_than=now - sending_timeout),
            "sending_timeout_minutes": int(sending_timeout.total_seconds() // 60),
            "failed": selectors.deliveries_failed_since(since=now - FAILURE_WINDOW),
            "failure_reasons": selectors.failure_reasons_since(since=now - FAILURE_WINDOW),
            "row_limit": selectors.OVERVIEW_ROW_LIMIT,
            "show_deliveries": request.user.has_perm(VIEW_DELIVERY),
        },
    )
