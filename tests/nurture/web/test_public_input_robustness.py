"""Odd and hostile input on every public URL gets a page or a field error, never a server error."""
import pytest
from nurture import tokens
from nurture.models import Subscriber

pytestmark = pytest.mark.django_db

ODD = ["", "\x00", "a" * 5000, "é", "<script>", "../../etc", "%00", "1:2:3", "abc/def"]


def test_public_pages_never_answer_500_to_odd_input(client):
    client.raise_request_exception = False
    s = Subscriber.objects.create(email="z@example.org", stage="in_treatment", status="active")
    good = {p: tokens.make_token(purpose=p, subscriber_id=s.pk) for p in ("confirm", "unsubscribe", "preferences", "view")}
    for odd in ODD:
        for field in ("email", "first_name", "stage", "language", "consent", "time_zone"):
            r = client.post("/", {"email": "a@example.org", "stage": "in_treatment", "language": "en", "consent": "on", field: odd})
            assert r.status_code < 500, (field, odd)
        for prefix in ("/confirm/", "/unsubscribe/", "/preferences/", "/email/"):
            r = client.get(prefix + odd.replace("/", "") + "/") if odd.replace("/", "") else None
            assert r is None or r.status_code < 500, (prefix, odd)
        for action in ("save", "pause", "resume", "unsubscribe", "erase", odd):
            r = client.post(f"/preferences/{good['preferences']}/", {"action": action, "first_name": odd, "stage": odd, "language": odd, "cadence": odd})
            assert r.status_code < 500, (action, odd)
    r = client.post("/", data=b"\xff\xfe garbage", content_type="application/x-www-form-urlencoded")
    assert r.status_code < 500
    r = client.generic("PUT", "/")
    assert r.status_code == 405
    r = client.post(f"/email/{good['view']}/")
    assert r.status_code < 500


def test_an_unknown_preferences_action_changes_nothing_and_says_so(client):
    from nurture.models import Subscriber
    from tests.helpers.scheduler import active_subscriber, series

    subscriber = active_subscriber("unknown-action@example.org", series("in_treatment", [(0, ["u-a"])]))
    before = Subscriber.objects.filter(pk=subscriber.pk).values().get()
    token = tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk)
    r = client.post(f"/preferences/{token}/", {"action": "bogus"})
    assert r.status_code == 400
    page = r.content.decode()
    assert "We did not recognise that request, so nothing was changed" in page
    assert 'class="errorlist"' not in page  # no field errors for fields nobody sent
    assert Subscriber.objects.filter(pk=subscriber.pk).values().get() == before


def test_a_choice_that_is_not_offered_is_refused_without_echoing_it(client):
    junk = "x" * 3000 + "<b>junk</b>"
    r = client.post("/", {"email": "echo@example.org", "first_name": "", "stage": junk, "language": junk, "consent": "on"})
    assert r.status_code == 400
    page = r.content.decode()
    assert "Please choose one of the options shown." in page
    assert "x" * 100 not in page and "junk" not in page
