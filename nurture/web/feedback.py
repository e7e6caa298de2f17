"""/feedback/<token>/: a reader answers "Was this email helpful?" (or the impact question).

GET shows the question with one button and an optional comment box, and records nothing (mail
scanners open links; they do not press buttons). POST records one answer per delivery and
question; a later one replaces it. The token is purpose-bound (tokens.FEEDBACK), carries the
delivery and the question, expires and is revoked like a preference link. Nothing here is logged:
not the answer, not the comment."""
from __future__ import annotations

from django.shortcuts import render
from django.utils import translation
from django.views.decorators.http import require_http_methods

from nurture import tokens
from nurture.models import Delivery, Feedback
from nurture.services import feedback as feedback_services
from nurture.services import subscribers as subscriber_services
from nurture.web.forms import FeedbackForm
from nurture.web.links import _bad_link, _private

PRESET_ANSWERS = {"yes": "1", "no": "0"}


def _read(token: str) -> tuple[object, Delivery, str]:
    """(subscriber, their delivery, question) for a feedback token; tokens.TokenError otherwise."""
    subscriber = subscriber_services.subscriber_from_token(purpose=tokens.FEEDBACK, token=token)
    _subscriber_id, extra = tokens.read_token(purpose=tokens.FEEDBACK, token=token)
    delivery_id, _, question = extra.partition(":")
    delivery = (
        Delivery.objects.filter(pk=int(delivery_id), subscriber_id=subscriber.pk).only("pk", "step_id").first()
        if delivery_id.isdigit() else None
    )
    if delivery is None or question not in Feedback.Question.values:
        raise tokens.TokenRevoked()
    return subscriber, delivery, question


@require_http_methods(["GET", "POST"])
def feedback(request, token: str):
    try:
        subscriber, delivery, question = _read(token)
    except tokens.TokenError as error:
        return _bad_link(request, tokens.FEEDBACK, token, error)
    with translation.override(subscriber.language):
        context = {"question": question, "impact": question == Feedback.Question.IMPACT}
        if request.method == "GET":
            preset = PRESET_ANSWERS.get(request.GET.get("answer", ""))
            form = FeedbackForm(question=question, initial={"delivery": delivery.pk, "answer": preset})
            return _private(render(request, "nurture/feedback.html", {**context, "form": form}))
        form = FeedbackForm(request.POST, question=question)
        if form.is_valid() and form.cleaned_data["delivery"] != delivery.pk:
            form.add_error("delivery", "This answer is for another email.")
        if not form.is_valid():
            return _private(render(request, "nurture/feedback.html", {**context, "form": form}, status=400))
        feedback_services.feedback_record(
            delivery_id=delivery.pk, question=question, value=form.cleaned_data["answer"],
            comment=form.cleaned_data["comment"],
        )
        return _private(render(request, "nurture/feedback_thanks.html", context))
