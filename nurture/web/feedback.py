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
from nurture.selectors.deliveries import delivery_question_from_token
from nurture.services import feedback as feedback_services
from nurture.web.answers import private
from nurture.web.forms import FeedbackForm
from nurture.web.token_view import token_view

PRESET_ANSWERS = {"yes": "1", "no": "0"}


@require_http_methods(["GET", "POST"])
@token_view(tokens.FEEDBACK, read=delivery_question_from_token)
def feedback(request, found: tuple[Delivery, str], token: str):
    delivery, question = found
    subscriber = delivery.subscriber
    with translation.override(subscriber.language):
        context = {"question": question, "impact": question == Feedback.Question.IMPACT}
        if request.method == "GET":
            preset = PRESET_ANSWERS.get(request.GET.get("answer", ""))
            form = FeedbackForm(question=question, initial={"delivery": delivery.pk, "answer": preset})
            return private(render(request, "nurture/feedback.html", {**context, "form": form}))
        form = FeedbackForm(request.POST, question=question)
        if form.is_valid() and form.cleaned_data["delivery"] != delivery.pk:
            form.add_error("delivery", "This answer is for another email.")
        if not form.is_valid():
            return private(render(request, "nurture/feedback.html", {**context, "form": form}, status=400))
        feedback_services.feedback_record(
            delivery_id=delivery.pk, question=question, value=form.cleaned_data["answer"],
            comment=form.cleaned_data["comment"],
        )
        return private(render(request, "nurture/feedback_thanks.html", context))
