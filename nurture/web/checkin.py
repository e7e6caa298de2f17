""""Has anything changed?": the page behind each answer's button in the check-in email. GET shows the
answer and a button (mail scanners open links); only the POST applies it (services/checkins.py)."""
from __future__ import annotations

from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from content.models import Stage
from nurture import tokens
from nurture.models import Subscriber
from nurture.selectors.subscribers import subscriber_and_extra_from_token
from nurture.services import checkins
from nurture.web.answers import private
from nurture.web.token_view import token_view


def _subscriber_and_answer(*, purpose: str, token: str) -> tuple[Subscriber, str]:
    """A check-in button's link names the subscriber and the answer (a stage, or "nothing has changed")."""
    subscriber, answer = subscriber_and_extra_from_token(purpose=purpose, token=token)
    if answer not in (*Stage.values, checkins.NOTHING_CHANGED):
        raise tokens.TokenRevoked()
    return subscriber, answer


@require_http_methods(["GET", "POST"])
@token_view(tokens.CHECKIN, read=_subscriber_and_answer)
def checkin(request, found: tuple[Subscriber, str], token: str):
    subscriber, answer = found
    with translation.override(subscriber.language):
        if request.method == "POST":
            _subscriber, moved = checkins.checkin_answer(subscriber_id=subscriber.pk, answer=answer)
            return private(render(request, "nurture/checkin.html", {"done": True, "moved": moved}))
        label = Stage(answer).label if answer in Stage.values else _("Nothing has changed")
        return private(render(request, "nurture/checkin.html", {"label": label}))
