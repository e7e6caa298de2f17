"""The staff overview at /admin/nurture/overview/: is sending healthy, and where does it need a hand?

Per series: deliveries of the last 7 days by status, held-back steps, subscribers by status; then
deliveries stuck in `sending` and those that failed in the last 24 hours, with their reasons.
A thin view over nurture.selectors' set-based reads (a fixed number of queries, whatever the size).
Needs nurture.view_overview (Auditors and Subscriber care); the lists of single deliveries and their
failure reasons (which may quote an address) show only with nurture.view_delivery too. Without it
(Auditors), the per-series counts are protected as the results page's are: 1 to 4 shows as "<5",
one more cell of its row, column or total as "x", and the rest rounded to 5 (nurture.small_cells.counts_shown).
"""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import admin
from django.shortcuts import render
from django.utils import timezone

from django.db.models import Count, Min

from nurture.models import Delivery, Reply, Subscriber
from nurture import small_cells
from nurture.selectors.deliveries import (
    OVERVIEW_ROW_LIMIT,
    deliveries_failed_since,
    deliveries_stuck_sending,
    failure_reasons_since,
    sending_brake_engaged,
    series_mail_health,
)
from nurture.selectors.series import series_overview

from nurture.admin.base import VIEW_DELIVERY, VIEW_OVERVIEW, staff_view

DELIVERY_WINDOW = timedelta(days=7)
FAILURE_WINDOW = timedelta(hours=24)


@staff_view(VIEW_OVERVIEW)
def overview(request):
    now = timezone.now()
    series_rows = series_overview(since=now - DELIVERY_WINDOW)
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
    if not request.user.has_perm(VIEW_DELIVERY):  # those who may not see the people behind the counts
        _protect_small_counts(table, totals)
    sending_timeout = timedelta(seconds=settings.NURTURE_SENDING_TIMEOUT_SECONDS)
    # Replies waiting for a person: how many, and since when the oldest has waited.
    replies = Reply.objects.filter(state=Reply.State.WAITING).aggregate(waiting=Count("id"), oldest=Min("received_at"))
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
            "stuck": deliveries_stuck_sending(older_than=now - sending_timeout),
            "sending_timeout_minutes": int(sending_timeout.total_seconds() // 60),
            "failed": deliveries_failed_since(since=now - FAILURE_WINDOW),
            "failure_reasons": failure_reasons_since(since=now - FAILURE_WINDOW),
            "row_limit": OVERVIEW_ROW_LIMIT,
            "show_deliveries": request.user.has_perm(VIEW_DELIVERY),
            # The complaint brake (services/brake.py): its state and the day's figures.
            "brake": sending_brake_engaged(),
            "mail_health": series_mail_health(since=now - FAILURE_WINDOW),
            "replies_waiting": replies["waiting"],
            "oldest_reply_at": replies["oldest"],
        },
    )


def _protect_small_counts(table: list[dict], totals: dict) -> None:
    """Replace each count the reader may not see exactly by "<5" or "x", in place: the lines are each
    row's deliveries and subscribers, and each column with its total."""
    counts, lines = {}, []
    for group in ("deliveries", "subscribers"):
        for row_index, row in enumerate(table):
            keys = [(group, row_index, i) for i in range(len(row[group]))]
            counts.update(zip(keys, row[group]))
            lines.append(keys)
        for i, total in enumerate(totals[group]):
            counts[("total", group, i)] = total
            lines.append([(group, row_index, i) for row_index in range(len(table))] + [("total", group, i)])
        lines.append([("total", group, i) for i in range(len(totals[group]))])
    shown = small_cells.counts_shown(counts, lines).__getitem__
    for group in ("deliveries", "subscribers"):
        for row_index, row in enumerate(table):
            row[group] = [shown((group, row_index, i)) for i in range(len(row[group]))]
        totals[group] = [shown(("total", group, i)) for i in range(len(totals[group]))]
