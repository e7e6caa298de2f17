"""Readers' feedback: "Was this email helpful?" and the impact question. GET records nothing, POST records one
answer per delivery (a later one replaces it), bad input gets a 400 and stores nothing, the results
page and its CSV count answers under the small-cell rule, editors read comments without identity,
and comments are purged after their retention period."""
from __future__ import annotations

import csv
import io
import logging
import re
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
import time_machine
from django.core import mail

from nurture import tokens
from nurture.emails.links import feedback_urls
from nurture.models import Delivery, Feedback, Subscriber
from nurture.services import feedback as feedback_services
from nurture.services import planning, retention
from tests.helpers.scheduler import active_subscriber, article, series, send_one
from tests.helpers.staff import CONTENT_EDITORS, staff_user, verified_login

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=dt_timezone.utc)


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def sent_deliveries(n: int, *, steps=((0, ["helpful-article"]),), prefix="reader") -> list[Delivery]:
    the_series = series("in_treatment", list(steps))
    for i in range(n):
        active_subscriber(f"{prefix}{i}@private.example", the_series, first_name=f"Secretname{i}")
    planning.deliveries_plan_due()
    for delivery_id in Delivery.objects.order_by("pk").values_list("pk", flat=True):
        send_one(delivery_id=delivery_id)
    return list(Delivery.objects.select_related("subscriber").order_by("pk"))


def url_for(delivery: Delivery, question: str = "feedback") -> str:
    urls = feedback_urls(subscriber_id=delivery.subscriber_id, delivery_id=delivery.pk,
                         link_version=delivery.subscriber.link_version)
    return urls[f"{question}_url"].removeprefix("https://guide.example.org")


def test_every_series_email_has_yes_and_no_links_that_open_a_one_button_page_which_records_nothing(client):
    [delivery] = sent_deliveries(1)
    email = mail.outbox[-1]
    html = email.alternatives[0][0]
    links = re.findall(r'href="(https://guide\.example\.org/feedback/[^"]+)"', html)
    # Yes, No, and (the series' only step is its last) the impact question.
    assert len(links) == 3 and links[0].endswith("?answer=yes") and links[1].endswith("?answer=no")
    assert links[0].split("?")[0] == links[1].split("?")[0] != links[2]
    assert "Was this email helpful?" in email.body and "<img" not in html
    page = client.get(links[0].removeprefix("https://guide.example.org"))
    body = page.content.decode()
    assert page.status_code == 200 and body.count('type="submit"') == 1 and 'name="comment"' in body
    assert 'value="1" checked' in body.replace("\n", " ") or 'checked value="1"' in body or re.search(r'value="1"[^>]*checked', body)
    assert not Feedback.objects.exists()  # a mail scanner opening the link records nothing
    assert page["Cache-Control"] == "private, no-store"


def test_post_records_one_answer_per_delivery_and_a_later_answer_replaces_it(client):
    [delivery] = sent_deliveries(1)
    url = url_for(delivery)
    assert client.post(url, {"delivery": delivery.pk, "answer": "1", "comment": "Clear, thank you"}).status_code == 200
    assert client.post(url, {"delivery": delivery.pk, "answer": "0", "comment": ""}).status_code == 200
    [answer] = Feedback.objects.all()
    assert (answer.value, answer.comment, answer.question, answer.step_id) == (0, "", "helpful", delivery.step_id)
    assert answer.article_ids == [article("helpful-article").pk]


@pytest.mark.parametrize("data, field", [
    ({"answer": "7"}, "answer"),
    ({"answer": "yes"}, "answer"),
    ({"answer": "1", "comment": "x" * 501}, "comment"),
    ({"answer": "1", "comment": "<b>bold</b> words"}, "comment"),
    ({"answer": "1", "comment": "nul\x00byte"}, "comment"),
])
def test_bad_input_gets_a_400_naming_the_field_and_stores_nothing(client, data, field):
    [delivery] = sent_deliveries(1)
    response = client.post(url_for(delivery), {"delivery": delivery.pk, **data})
    assert response.status_code == 400
    assert 'class="errorlist"' in response.content.decode() and f'id="id_{field}_error"' in response.content.decode()
    assert not Feedback.objects.exists()


def test_a_vote_for_another_delivery_or_with_another_purposes_token_is_refused(client):
    first, second = sent_deliveries(2)
    response = client.post(url_for(first), {"delivery": second.pk, "answer": "1"})
    assert response.status_code == 400 and "another email" in response.content.decode()
    # A preference token for the same subscriber is not a feedback token.
    prefs = tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=first.subscriber_id, link_version=first.subscriber.link_version)
    assert client.post(f"/feedback/{prefs}/", {"delivery": first.pk, "answer": "1"}).status_code == 400
    # A feedback token naming someone else's delivery.
    forged = tokens.make_token(purpose=tokens.FEEDBACK, subscriber_id=first.subscriber_id, extra=f"{second.pk}:helpful",
                               link_version=first.subscriber.link_version)
    assert client.post(f"/feedback/{forged}/", {"delivery": second.pk, "answer": "1"}).status_code == 400
    assert not Feedback.objects.exists()


def test_feedback_links_expire_and_die_with_new_links(client, settings):
    [delivery] = sent_deliveries(1)
    url = url_for(delivery)
    Subscriber.objects.filter(pk=delivery.subscriber_id).update(link_version=delivery.subscriber.link_version + 1)
    assert client.get(url).status_code == 400
    [delivery] = Delivery.objects.select_related("subscriber").all()
    url = url_for(delivery)
    with time_machine.travel(datetime.now(dt_timezone.utc) + timedelta(days=settings.NURTURE_LINK_MAX_AGE_DAYS + 1)):
        assert client.get(url).status_code == 400


def test_feedback_paths_and_comments_never_reach_the_log(client, caplog):
    from nurture.log_redaction import redact_text

    [delivery] = sent_deliveries(1)
    url = url_for(delivery)
    assert "[token]" in redact_text(f"GET {url} 200") and url.split("/")[2] not in redact_text(f"GET {url} 200")
    with caplog.at_level(logging.DEBUG):
        client.post(url, {"delivery": delivery.pk, "answer": "1", "comment": "my private words"})
    assert "my private words" not in caplog.text


def test_the_impact_question_closes_the_last_email_of_the_series_and_is_recorded(client, settings):
    sent_deliveries(1, steps=((0, ["one"]), (0, ["two"])))
    last = None
    planning.deliveries_plan_due(now=datetime.now(dt_timezone.utc) + timedelta(days=3))
    for delivery_id in Delivery.objects.filter(status="queued").values_list("pk", flat=True):
        send_one(delivery_id=delivery_id)
    first_email, last_email = mail.outbox[-2:]
    assert "second opinion?" not in first_email.body.split("--")[0].split("Was this email helpful?")[1]
    assert "One last question: do you feel more able to decide about a second opinion?" in last_email.body
    last = Delivery.objects.select_related("subscriber").order_by("-pk").first()
    page = client.get(url_for(last, "impact")).content.decode()
    assert "Do you feel more able to decide about a second opinion?" in page and page.count('name="answer"') == 5
    assert client.post(url_for(last, "impact"), {"delivery": last.pk, "answer": "6"}).status_code == 400
    assert client.post(url_for(last, "impact"), {"delivery": last.pk, "answer": "4"}).status_code == 200
    assert Feedback.objects.get(question="impact").value == 4
    settings.NURTURE_IMPACT_QUESTION = False
    from nurture.emails.layout import asks_impact

    assert not asks_impact(last.step)


def test_spanish_readers_get_the_question_in_spanish(client):
    the_series = series("in_treatment", [(0, ["uno"])], language="es")
    active_subscriber("lector@private.example", the_series)
    planning.deliveries_plan_due()
    delivery = Delivery.objects.select_related("subscriber").get()
    send_one(delivery_id=delivery.pk)
    assert "¿Le resultó útil este correo?" in mail.outbox[-1].body
    page = client.get(url_for(delivery) + "?answer=no").content.decode()
    assert "Enviar mi respuesta" in page


def answer(deliveries, value: int, comment: str = "") -> None:
    for delivery in deliveries:
        feedback_services.feedback_record(delivery_id=delivery.pk, question="helpful", value=value, comment=comment)


def test_results_page_and_csv_count_answers_per_step_and_article_under_the_small_cell_rule(client):
    deliveries = sent_deliveries(9)
    with time_machine.travel(NOW - timedelta(days=1), tick=False):
        answer(deliveries[:6], 1, "Helpful <script>alert(1)</script> note")
        answer(deliveries[6:8], 0)
    editor = staff_user("editor", CONTENT_EDITORS)
    verified_login(client, editor)
    series_id = deliveries[0].step.series_id
    with time_machine.travel(NOW, tick=False):
        page = client.get(f"/admin/nurture/results/?series={series_id}&period=7d").content.decode()
        exported = client.get(f"/admin/nurture/results/?series={series_id}&period=7d&format=csv").content.decode()
    table = page.split('id="results-feedback-steps"')[1].split("</table>")[0]
    # 6 "yes" shown rounded to 5 (every count is); 2 "no" shown as <5, so no share.
    assert re.search(r"<td>5</td><td>&lt;5</td><td>—</td>", table), table
    rows = list(csv.reader(io.StringIO(exported)))
    assert ["Was this email helpful? Per step"] in rows and ["#1 Step 1", "5", "<5", "—"] in rows
    assert ["Helpful Article", "5", "<5", "—"] in rows
    for text in (page, exported):
        assert "private.example" not in text and "Secretname" not in text

    # The comments page: text and day only, escaped; nothing that leads to the person.
    link = re.search(r'href="(/admin/nurture/results/comments/\?[^"]+)"', page).group(1).replace("&amp;", "&")
    with time_machine.travel(NOW, tick=False):
        comments = client.get(link).content.decode()
    assert comments.count("Helpful &lt;script&gt;alert(1)&lt;/script&gt; note") == 6 and "<script>alert" not in comments
    assert "private.example" not in comments and "Secretname" not in comments and "in_treatment" not in comments
    assert f"/admin/nurture/delivery/{deliveries[0].pk}" not in comments


def test_staff_without_the_comment_permission_get_a_403(client):
    verified_login(client, staff_user("nobody-special"))
    assert client.get("/admin/nurture/results/comments/?article=1").status_code == 403


def test_comments_are_purged_after_their_retention_and_at_erasure(settings):
    settings.NURTURE_FEEDBACK_COMMENT_RETENTION_DAYS = 30
    old, recent, erased = sent_deliveries(3)
    with time_machine.travel(NOW - timedelta(days=31), tick=False):
        answer([old], 1, "old words")
    with time_machine.travel(NOW - timedelta(days=29), tick=False):
        answer([recent, erased], 0, "recent words")
    result = retention.expired_data_purge(now=NOW)
    assert result.feedback_comments == 1
    assert dict(Feedback.objects.values_list("delivery_id", "comment")) == {
        old.pk: "", recent.pk: "recent words", erased.pk: "recent words"}
    retention.subscriber_erase(subscriber_id=erased.subscriber_id)
    kept = Feedback.objects.get(value=0, delivery__isnull=True)
    assert kept.comment == "" and kept.step_id == erased.step_id  # the answer stays for the counts
    assert Feedback.objects.count() == 3


def test_the_impact_answers_and_their_total_are_protected_as_one_line(client, monkeypatch):
    """Two people answering "3" and seven answering "5": the "<5" cannot be worked out as All minus
    the rest, because one more cell of the line is hidden too, and the rest are rounded."""
    from nurture.selectors import results
    series_id = sent_deliveries(1)[0].step.series_id
    monkeypatch.setattr(results, "series_impact", lambda **kw: {1: 0, 2: 0, 3: 2, 4: 0, 5: 7})
    verified_login(client, staff_user("editor", CONTENT_EDITORS))
    with time_machine.travel(NOW, tick=False):
        page = client.get(f"/admin/nurture/results/?series={series_id}&period=7d").content.decode()
    row = page.split('id="results-impact"')[1].split("</table>")[0]
    cells = re.findall(r"<td>([^<]*)</td>", row.split("People", 1)[1])
    assert cells == ["0", "0", "&lt;5", "0", "x", "10"], cells  # 7 hidden with the 2; 9 shown rounded
