"""Staff tools for the emails: preview a step, see a stage's journey, send a test to yourself, and
see exactly what one delivery showed (its "view in browser" page, with links that do nothing).

Mounted at /admin/nurture/email-preview/ (config/urls.py includes these before admin.site.urls).
Each view checks a named permission (nurture.admin.base.staff_view): previews, journeys and test
sends need nurture.preview_emails; previewing as a real subscriber (?subscriber=<id or address>)
needs nurture.preview_as_subscriber too, checked before any lookup, so a content editor learns
nothing about who is subscribed; "view as sent" needs nurture.view_delivery. Every look at one
person's data is in the audit trail (nurture.services.audit). All views are thin: the email comes from the same builder
the sender uses (nurture.emails.build_step_email). Previews and test sends use links that do nothing
(SAMPLE_TOKEN), so a click in a preview can never unsubscribe a real person, and a test
send never creates a Delivery.
"""
from __future__ import annotations

import datetime

import logging

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from content.models import Article, Language, Stage
from nurture import rules
from nurture.emails.messages import build_step_email, delivery_web_html
from nurture.models import Delivery, Series, Step, Subscriber
from nurture.selectors.deliveries import delivery_articles
from nurture.selectors.series import series_for, series_hold_reasons, series_journey
from nurture.selectors.subscribers import checkin_interval, subscriber_by_email
from nurture.services.audit import audit_record

from nurture.admin.base import (
    PREVIEW_AS_SUBSCRIBER, PREVIEW_EMAILS, VIEW_DELIVERY, BadQuery, require_permission, staff_view,
)

logger = logging.getLogger(__name__)

SAMPLE_FIRST_NAME = "Alex"
TEST_SUBJECT_PREFIX = "[TEST] "


def _sample_subscriber(step: Step) -> Subscriber:
    """An unsaved subscriber of the step's series: never stored, never sent to."""
    return Subscriber(
        email="sample.subscriber@example.invalid",
        first_name=SAMPLE_FIRST_NAME,
        stage=step.series.stage,
        language=step.series.language,
    )


def _chosen_subscriber(request, step: Step) -> tuple[Subscriber, str]:
    """(subscriber, note) from ?subscriber=<id or email>; the sample one when absent, or when no
    subscriber matches (said in the note). Asking for a real subscriber needs
    nurture.preview_as_subscriber, checked before the lookup; a value that is neither an id nor an
    address is a BadQuery (400)."""
    wanted = (request.GET.get("subscriber") or "").strip()
    first_name = request.GET.get("first_name")
    if not wanted:
        sample = _sample_subscriber(step)
        if first_name is not None:
            sample.first_name = first_name[:100]
        return sample, ""
    require_permission(request, PREVIEW_AS_SUBSCRIBER)
    if wanted.isascii() and wanted.isdigit():
        if len(wanted) > 18:
            raise BadQuery("“subscriber” is not a subscriber id (too long). Give an id or an email address.")
        found = Subscriber.objects.filter(pk=int(wanted)).first()
    else:
        try:
            validate_email(wanted)
        except ValidationError:
            raise BadQuery("“subscriber” must be a subscriber id or an email address.") from None
        found = subscriber_by_email(email=wanted)
    if found is None:
        return _sample_subscriber(step), f"No subscriber matches {wanted!r}; showing a sample subscriber instead."
    return found, ""


def _audit_as_subscriber(request, subscriber: Subscriber, detail: str) -> None:
    if subscriber.pk is not None:
        audit_record(user=request.user, action="view", subscriber_id=subscriber.pk, detail=detail)


def _email_html_response(html: str) -> HttpResponse:
    response = HttpResponse(html)
    # The email has no scripts; make sure none could run inside the admin's origin.
    response["Content-Security-Policy"] = settings.EMAIL_HTML_CSP
    return response


def _context(request, **extra) -> dict:
    return {**admin.site.each_context(request), **extra}


@staff_view(PREVIEW_EMAILS)
def index(request):
    series = Series.objects.order_by("language", "stage").prefetch_related("steps")
    return render(
        request,
        "admin/nurture/email_preview/index.html",
        _context(request, title="Email previews", series_list=series, stages=Stage.choices, languages=Language.choices),
    )


@staff_view(PREVIEW_EMAILS)
def step_preview(request, step_id: int):
    step = get_object_or_404(Step.objects.select_related("series"), pk=step_id)
    subscriber, note = _chosen_subscriber(request, step)
    _audit_as_subscriber(request, subscriber, "email preview as subscriber")
    message = build_step_email(step=step, subscriber=subscriber, sample_links=True)
    if note:
        messages.warning(request, note)
    html_url = reverse("email_preview:step_html",
                       args=[step.pk]) + ("?" + request.GET.urlencode() if request.GET else "")
    return render(
        request,
        "admin/nurture/email_preview/step.html",
        _context(
            request,
            title=f"Preview: {step.subject}",
            step=step,
            subscriber=subscriber,
            message=message,
            headers=sorted(message.extra_headers.items()),
            text_body=message.body,
            html_url=html_url,
            language_differs=subscriber.language != step.series.language,
            query=request.GET.urlencode(),
            can_preview_as_subscriber=request.user.has_perm(PREVIEW_AS_SUBSCRIBER),
        ),
    )


@staff_view(PREVIEW_EMAILS)
@xframe_options_sameorigin  # shown in an iframe on the preview page
def step_html(request, step_id: int):
    step = get_object_or_404(Step.objects.select_related("series"), pk=step_id)
    subscriber, _note = _chosen_subscriber(request, step)
    _audit_as_subscriber(request, subscriber, "email preview html as subscriber")
    message = build_step_email(step=step, subscriber=subscriber, sample_links=True)
    return _email_html_response(message.alternatives[0][0])


@staff_view(PREVIEW_EMAILS)
@require_POST
def step_test_send(request, step_id: int):
    step = get_object_or_404(Step.objects.select_related("series"), pk=step_id)
    back = reverse("email_preview:step", args=[step.pk]) + ("?" + request.GET.urlencode() if request.GET else "")
    address = (request.user.email or "").strip()
    if not address:
        messages.error(
            request,
            "Your staff account has no email address, so there is nowhere to send the test. "
            "Add one under Users in the admin, then try again.",
        )
        return redirect(back)
    subscriber, _note = _chosen_subscriber(request, step)
    _audit_as_subscriber(request, subscriber, "test send as subscriber")
    message = build_step_email(
        step=step, subscriber=subscriber, to=address, sample_links=True, subject_prefix=TEST_SUBJECT_PREFIX
    )
    try:
        message.send()
    except Exception as exc:  # the provider's error types vary; staff need the reason, not a 500
        logger.warning("test send of step=%s failed: %s", step.pk, type(exc).__name__)
        messages.error(request, f"The test email could not be sent: {exc}")
    else:
        messages.success(request, f"Test email sent to {address}. Its links are samples and do nothing.")
    return redirect(back)


@staff_view(PREVIEW_EMAILS)
def journey(request):
    stage = request.GET.get("stage") or Stage.RECENTLY_DIAGNOSED
    language = request.GET.get("language") or Language.EN
    if stage not in Stage.values or language not in Language.values:
        messages.error(request, "Choose a stage and a language from the lists.")
        return redirect("email_preview:index")
    series = series_for(stage=stage, language=language)
    start = timezone.now()
    # A sample treatment date (recently diagnosed only): the plan around it, as the planner makes it.
    raw_date = (request.GET.get("treatment_date") or "").strip()
    treatment_date, date_error = None, ""
    if raw_date and stage == Stage.RECENTLY_DIAGNOSED:
        try:
            treatment_date = datetime.date.fromisoformat(raw_date)
        except ValueError:
            date_error = "Give the sample treatment date as YYYY-MM-DD."
    # Sample days and hours that suit them: quiet weekdays and a part of the day.
    quiet = sorted({int(d) for d in request.GET.getlist("quiet_day") if d in {"0", "1", "2", "3", "4", "5", "6"}})
    time_of_day = request.GET.get("time_of_day", "") if request.GET.get("time_of_day", "") in rules.DAY_PARTS else ""
    emails_planned = series_journey(
        series_id=series.pk, start=start, treatment_date=treatment_date,
        quiet_days=",".join(map(str, quiet)), time_of_day=time_of_day,
    ) if series else []
    # The "Has anything changed?" check-ins the same person would get (services/checkins.py).
    interval = checkin_interval(stage)
    last = emails_planned[-1].send_at if emails_planned else start
    checkin_times = []
    while interval and (not checkin_times or checkin_times[-1] <= last) and len(checkin_times) < 50:
        checkin_times.append((checkin_times[-1] if checkin_times else start) + interval)
    return render(
        request,
        "admin/nurture/email_preview/journey.html",
        _context(
            request,
            title="Journey of a new subscriber",
            series=series,
            stage_label=Stage(stage).label,
            language_label=Language(language).label,
            start=start,
            journey=emails_planned,
            has_before_treatment=any(item.step.before_treatment for item in emails_planned),
            holds=series_hold_reasons(series_id=series.pk) if series else [],
            stages=Stage.choices,
            languages=Language.choices,
            chosen_stage=stage,
            chosen_language=language,
            treatment_date=treatment_date,
            treatment_date_raw=raw_date,
            date_error=date_error,
            weekdays=list(enumerate(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])),
            quiet_days=quiet,
            time_of_day=time_of_day,
            day_parts=rules.DAY_PARTS,
            checkin_times=checkin_times,
            checkin_weeks=settings.NURTURE_CHECKIN_WEEKS.get(stage, 0),
        ),
    )


def _delivery_or_none(delivery_id: int) -> Delivery | None:
    return Delivery.objects.select_related("subscriber", "step__series").filter(pk=delivery_id).first()


@staff_view(VIEW_DELIVERY)
def delivery_preview(request, delivery_id: int):
    """What one delivery showed: the same page as its "view in browser" link (the articles and
    versions it went out with), for staff, with links that do nothing."""
    delivery = _delivery_or_none(delivery_id)
    if delivery is None:
        messages.error(request, f"There is no delivery with id {delivery_id}.")
        return redirect("admin:nurture_delivery_changelist")
    audit_record(user=request.user, action="view", subscriber_id=delivery.subscriber_id, delivery_id=delivery.pk,
                 detail="view as sent")
    articles = delivery_articles(delivery=delivery)
    current = dict(Article.objects.filter(pk__in=[a.pk for a in articles]).values_list("pk", "version"))
    return render(
        request,
        "admin/nurture/email_preview/delivery.html",
        _context(
            request,
            title=f"Delivery #{delivery.pk}: {delivery.step.subject}",
            delivery=delivery,
            articles=[(a, current.get(a.pk)) for a in articles],
            html_url=reverse("email_preview:delivery_html", args=[delivery.pk]),
        ),
    )


@staff_view(VIEW_DELIVERY)
@xframe_options_sameorigin  # shown in an iframe on the delivery page
def delivery_html(request, delivery_id: int):
    delivery = _delivery_or_none(delivery_id)
    if delivery is None:
        return HttpResponse("There is no such delivery.", status=404, content_type="text/plain; charset=utf-8")
    audit_record(user=request.user, action="view", subscriber_id=delivery.subscriber_id, delivery_id=delivery.pk,
                 detail="view as sent html")
    return _email_html_response(delivery_web_html(delivery, sample_links=True))


urlpatterns = [
    path("", index, name="index"),
    path("step/<int:step_id>/", step_preview, name="step"),
    path("step/<int:step_id>/html/", step_html, name="step_html"),
    path("step/<int:step_id>/test-send/", step_test_send, name="step_test_send"),
    path("journey/", journey, name="journey"),
    path("delivery/<int:delivery_id>/", delivery_preview, name="delivery"),
    path("delivery/<int:delivery_id>/html/", delivery_html, name="delivery_html"),
]
