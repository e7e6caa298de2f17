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
from nurture.services import checkins
from nurture.web.links import _bad_link, _private


@require_http_methods(["GET", "POST"])
def checkin(request, token: str):
    try:
        subscriber_id, answer = tokens.read_token(purpose=tokens.CHECKIN, token=token)
    except tokens.TokenError as error:
        return _bad_link(request, tokens.CHECKIN, token, error)
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None or answer not in (*Stage.values, checkins.NOTHING_CHANGED):
        return _bad_link(request, tokens.CHECKIN, token, tokens.TokenRevoked())
    with translation.override(subscriber.language):
        if request.method == "POST":
            _subscriber, moved = checkins.checkin_answer(subscriber_id=subscriber.pk, answer=answer)
            return _private(render(request, "nurture/checkin.html", {"done": True, "moved": moved}))
        label = Stage(answer).label if answer in Stage.values else _("Nothing has changed")
        return _private(render(request, "nurture/checkin.html", {"label": label}))
