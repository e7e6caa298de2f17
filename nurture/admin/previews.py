"""Staff tools for the emails: preview a step, see a stage's journey, send a test to yourself, and
see exactly what one delivery showed (its "view in browser" page, with links that do nothing).

Mounted at /admin/nurture/email-preview/ (config/urls.py includes these before admin.site.urls).
All views are staff-only and thin: the email comes from the same builder the sender uses
(nurture.emails.build_step_email). Previews and test sends use links that do nothing
(SAMPLE_TOKEN), so a click in a preview can never unsubscribe a real person, and a test
send never creates a Delivery.
"""
from __future__ import annotations

import datetime

import logging

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from content.models import Article, Language, Stage
from nurture import selectors
from nurture.emails.messages import build_step_email, delivery_web_html
from nurture.models import Delivery, Series, Step, Subscriber

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
    """(subscriber, note) from ?subscriber=<id or email>; the sample one when absent or unknown."""
    wanted = (request.GET.get("subscriber") or "").strip()
    first_name = request.GET.get("first_name")
    if not wanted:
        sample = _sample_subscriber(step)
        if first_name is not None:
            sample.first_name = first_name[:100]
        return sample, ""
    found = (
        Subscriber.objects.filter(pk=int(wanted)).first() if wanted.isascii() and wanted.isdigit() and len(wanted) < 19 else selectors.subscriber_by_email(email=wanted)
    )
    if found is None:
        return _sample_subscriber(step), f"No subscriber matches {wanted!r}; showing a sample subscriber instead."
    return found, ""


def _context(request, **extra) -> dict:
    return {**admin.site.each_context(request), **extra}


@staff_member_required
def index(request):
    series = Series.objects.order_by("language", "stage").prefetch_related("steps")
    return render(
        request,
        "admin/nurture/email_preview/index.html",
        _context(request, title="Email previews", series_list=series, stages=Stage.choices, languages=Language.choices),
    )


@staff_member_required
def step_preview(request, step_id: int):
    step = get_object_or_404(Step.objects.select_related("series"), pk=step_id)
    subscriber, note = _chosen_subscriber(request, step)
    message = build_step_email(step=step, subscriber=subscriber, sample_links=True)
    if note:
        messages.warning(request, note)
    html_url = reverse("email_preview:step_html", args=[step.pk]) + ("?" + request.GET.urlencode() if request.GET else "")
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
        ),
    )


@staff_member_required
@xframe_options_sameorigin  # shown in an iframe on the preview page
def step_html(request, step_id: int):
    step = get_object_or_404(Step.objects.select_related("series"), pk=step_id)
    subscriber, _note = _chosen_subscriber(request, step)
    message = build_step_email(step=step, subscriber=subscriber, sample_links=True)
    response = HttpResponse(message.alternatives[0][0])
    # The email has no scripts; make sure none could run inside the admin's origin.
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:"
    return response


@staff_member_required
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


@staff_member_required
def journey(request):
    stage = request.GET.get("stage") or Stage.RECENTLY_DIAGNOSED
    language = request.GET.get("language") or Language.EN
    if stage not in Stage.values or language not in Language.values:
        messages.error(request, "Choose a stage and a language from the lists.")
        return redirect("email_preview:index")
    series = selectors.series_for(stage=stage, language=language)
    start = timezone.now()
    # A sample treatment date (recently diagnosed only): the plan around it, as the planner makes it.
    raw_date = (request.GET.get("treatment_date") or "").strip()
    treatment_date, date_error = None, ""
    if raw_date and stage == Stage.RECENTLY_DIAGNOSED:
        try:
            treatment_date = datetime.date.fromisoformat(raw_date)
        except ValueError:
            date_error = "Give the sample treatment date as YYYY-MM-DD."
    emails_planned = (
        selectors.series_journey(series_id=series.pk, start=start, treatment_date=treatment_date) if series else []
    )
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
            stages=Stage.choices,
            languages=Language.choices,
            chosen_stage=stage,
            chosen_language=language,
            treatment_date=treatment_date,
            treatment_date_raw=raw_date,
            date_error=date_error,
        ),
    )


def _delivery_or_none(delivery_id: int) -> Delivery | None:
    return Delivery.objects.select_related("subscriber", "step__series").filter(pk=delivery_id).first()


@staff_member_required
def delivery_preview(request, delivery_id: int):
    """What one delivery showed: the same page as its "view in browser" link (the articles and
    versions it went out with), for staff, with links that do nothing."""
    delivery = _delivery_or_none(delivery_id)
    if delivery is None:
        messages.error(request, f"There is no delivery with id {delivery_id}.")
        return redirect("admin:nurture_delivery_changelist")
    articles = selectors.delivery_articles(delivery=delivery)
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


@staff_member_required
@xframe_options_sameorigin  # shown in an iframe on the delivery page
def delivery_html(request, delivery_id: int):
    delivery = _delivery_or_none(delivery_id)
    if delivery is None:
        return HttpResponse("There is no such delivery.", status=404, content_type="text/plain; charset=utf-8")
    response = HttpResponse(delivery_web_html(delivery, sample_links=True))
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:"
    return response


urlpatterns = [
    path("", index, name="index"),
    path("step/<int:step_id>/", step_preview, name="step"),
    path("step/<int:step_id>/html/", step_html, name="step_html"),
    path("step/<int:step_id>/test-send/", step_test_send, name="step_test_send"),
    path("journey/", journey, name="journey"),
    path("delivery/<int:delivery_id>/", delivery_preview, name="delivery"),
    path("delivery/<int:delivery_id>/html/", delivery_html, name="delivery_html"),
]
