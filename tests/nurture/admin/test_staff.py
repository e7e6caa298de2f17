"""The staff side in admin: subscriber operations (through the services), deliveries and requeue,
"view as sent" for one delivery, and the sending overview. Driven through the admin client, with
the real services, planner and sender (locmem email backend)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from content.models import Article
from content.services import article_approve, article_save, articles_approve
from nurture.admin import base as admin_base
from nurture.emails.cache import render_cache
from nurture.emails.links import SAMPLE_TOKEN, view_online_url
from nurture.emails.messages import build_delivery_email
from nurture.models import Delivery, Series, Subscriber
from nurture.services import planning
from support.library import sample_reviewer
from tests.helpers.scheduler import active_subscriber, article, series, send_one
from tests.helpers.staff import verified_login

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:nurture_subscriber_changelist"
DELIVERIES = "admin:nurture_delivery_changelist"


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.NURTURE_MIN_DAYS_BETWEEN_EMAILS = 0
    settings.NURTURE_DAY_SECONDS = 1  # no daytime window, delays in seconds
    render_cache.clear()


@pytest.fixture
def two_series():
    """Treatment and remission series (en) that share the article 'shared'. Articles are saved
    through content.services.article_save, so version 1 has its snapshot as in real use."""
    for slug in ("welcome", "shared", "only-treatment", "only-remission", "later-remission"):
        article_save(article=Article(
            slug=slug, language="en", title=slug.replace("-", " ").title(), stages=["in_treatment", "in_remission"],
            source_section="test", body_markdown=f"Body of {slug}.", status=Article.Status.PUBLISHED,
        ))
    articles_approve(user=sample_reviewer())  # with DEBUG off only approved text is sent
    treatment = series("in_treatment", [(0, ["welcome"]), (0, ["shared"]), (0, ["only-treatment"])])
    remission = series("in_remission", [(0, ["shared", "only-remission"]), (0, ["later-remission"])])
    return treatment, remission


def _reader(email: str, the_series: Series, **changes) -> Subscriber:
    """An active subscriber of the series, then with `changes` (status, position...) applied."""
    subscriber = active_subscriber(email, the_series)
    if changes:
        Subscriber.objects.filter(pk=subscriber.pk).update(**changes)
        subscriber.refresh_from_db()
    return subscriber


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _action(client, action: str, ids, **extra):
    data = {"action": action, "_selected_action": [str(i) for i in ids], **extra}
    return client.post(reverse(CHANGELIST), data, follow=True)


def _send_everything_due() -> None:
    planning.deliveries_plan_due()
    for delivery_id in Delivery.objects.filter(status="queued").values_list("id", flat=True):
        send_one(delivery_id=delivery_id, wait_for_slot=lambda: None)


# --- change stage ----------------------------------------------------------------------------------


def test_change_stage_action_shows_a_form_then_moves_through_the_service(admin_client, two_series):
    treatment, remission = two_series
    reader = active_subscriber("reader@example.org", treatment)
    _send_everything_due()  # welcome
    Subscriber.objects.filter(pk=reader.pk).update(next_send_at=timezone.now())
    _send_everything_due()  # shared
    assert Delivery.objects.filter(subscriber=reader, status="sent").count() == 2

    page = admin_client.post(reverse(CHANGELIST), {"action": "change_stage", "_selected_action": [reader.pk]})
    assert page.status_code == 200 and 'name="stage"' in page.content.decode() and "#%d" % reader.pk in page.content.decode()
    assert Subscriber.objects.get(pk=reader.pk).stage == "in_treatment"  # the form alone changes nothing

    done = _action(admin_client, "change_stage", [reader.pk], stage="in_remission", language="", apply="1")
    assert any("Moved 1 subscriber" in m for m in _messages(done))
    reader.refresh_from_db()
    assert (reader.stage, reader.series_id, reader.next_step_position, reader.status) == ("in_remission", remission.pk, 0, "active")
    assert Delivery.objects.filter(subscriber=reader).count() == 2  # history kept

    # The planner, run for real: the remission series' first step goes with only the article they lack.
    _send_everything_due()
    newest = Delivery.objects.filter(subscriber=reader).order_by("-pk").first()
    assert newest.step.series_id == remission.pk
    assert set(newest.article_versions) == {str(article("only-remission").pk)}
    assert "Only Remission" in mail.outbox[-1].body and "Shared" not in mail.outbox[-1].body


def test_a_stage_without_a_series_is_a_form_error_and_changes_nothing(admin_client, two_series):
    treatment, _remission = two_series
    reader = active_subscriber("reader@example.org", treatment)
    response = _action(admin_client, "change_stage", [reader.pk], stage="recently_diagnosed", language="", apply="1")
    assert response.status_code == 200
    assert "There is no series for Recently diagnosed in English" in response.content.decode()
    assert Subscriber.objects.get(pk=reader.pk).stage == "in_treatment"


def test_keeping_languages_refuses_the_whole_change_when_one_language_has_no_series(admin_client, two_series):
    treatment, _remission = two_series
    english = active_subscriber("en@example.org", treatment)
    spanish_series = series("in_treatment", [(0, ["bienvenida"])], language="es")
    spanish = active_subscriber("es@example.org", spanish_series)
    response = _action(admin_client, "change_stage", [english.pk, spanish.pk], stage="in_remission", language="", apply="1")
    assert "There is no series for In remission in Español" in response.content.decode()
    assert set(Subscriber.objects.values_list("stage", flat=True)) == {"in_treatment"}  # all or nothing
    # Choosing the language explicitly moves both (Spanish readers into the English series).
    _action(admin_client, "change_stage", [english.pk, spanish.pk], stage="in_remission", language="en", apply="1")
    assert set(Subscriber.objects.values_list("stage", "language")) == {("in_remission", "en")}


def test_a_series_with_no_steps_is_refused(admin_client, two_series):
    treatment, _remission = two_series
    Series.objects.create(stage="recently_diagnosed", language="en", name="empty")
    reader = active_subscriber("reader@example.org", treatment)
    response = _action(admin_client, "change_stage", [reader.pk], stage="recently_diagnosed", language="en", apply="1")
    assert "has no steps" in response.content.decode()
    assert Subscriber.objects.get(pk=reader.pk).series_id == treatment.pk


def test_unsubscribed_subscribers_are_left_as_they_were(admin_client, two_series):
    treatment, remission = two_series
    stays = active_subscriber("stays@example.org", treatment)
    left = _reader("left@example.org", treatment, status="unsubscribed")
    response = _action(admin_client, "change_stage", [stays.pk, left.pk], stage="in_remission", language="", apply="1")
    [message] = _messages(response)
    assert "Moved 1 subscriber" in message and "1 left as they were: unsubscribed or suppressed" in message
    assert Subscriber.objects.get(pk=left.pk).series_id == treatment.pk
    assert Subscriber.objects.get(pk=stays.pk).series_id == remission.pk


def test_bad_stage_value_is_a_form_error(admin_client, two_series):
    treatment, _ = two_series
    reader = active_subscriber("reader@example.org", treatment)
    for stage, language in (("cured", "en"), ("in_remission", "xx"), ("", "")):
        response = _action(admin_client, "change_stage", [reader.pk], stage=stage, language=language, apply="1")
        assert response.status_code == 200
        assert "Select a valid choice" in response.content.decode() or "This field is required" in response.content.decode()
    assert Subscriber.objects.get(pk=reader.pk).stage == "in_treatment"


def test_tampered_ids_get_a_message_not_a_500(admin_client, two_series):
    treatment, _ = two_series
    reader = active_subscriber("reader@example.org", treatment)
    for ids in (["abc"], [str(reader.pk), "1 OR 1=1"], ["-1"], ["²"]):
        response = _action(admin_client, "pause", ids)
        assert response.status_code == 200
        assert any("not valid ids" in m for m in _messages(response))
    assert _action(admin_client, "pause", [999999]).status_code == 200  # unknown id: nothing to do
    assert Subscriber.objects.get(pk=reader.pk).status == "active"
    response = admin_client.post(reverse(DELIVERIES), {"action": "requeue", "_selected_action": ["x"]}, follow=True)
    assert response.status_code == 200 and any("not valid ids" in m for m in _messages(response))


def test_more_than_the_action_limit_is_refused_before_anything_changes(admin_client, two_series, monkeypatch):
    treatment, _ = two_series
    readers = [active_subscriber(f"r{i}@example.org", treatment) for i in range(3)]
    monkeypatch.setattr(admin_base, "ACTION_LIMIT", 2)
    response = admin_client.post(
        reverse(CHANGELIST), {"action": "pause", "select_across": "1", "index": "0", "_selected_action": [readers[0].pk]}, follow=True
    )
    assert any("at most 2 rows" in m for m in _messages(response))
    assert set(Subscriber.objects.values_list("status", flat=True)) == {"active"}


# --- pause, resume, unsubscribe ---------------------------------------------------------------------


def test_pause_resume_and_unsubscribe_actions_go_through_the_services(admin_client, two_series):
    treatment, _ = two_series
    first = _reader("a@example.org", treatment, next_step_position=2)
    second = active_subscriber("b@example.org", treatment)

    response = _action(admin_client, "pause", [first.pk, second.pk])
    assert "Paused 2 subscribers." in _messages(response)
    assert set(Subscriber.objects.values_list("status", flat=True)) == {"paused"}

    response = _action(admin_client, "pause", [first.pk])
    assert any("Paused 0" in m and "only active subscribers can be paused" in m for m in _messages(response))

    response = _action(admin_client, "resume", [first.pk])
    first.refresh_from_db()
    assert first.status == "active" and first.next_step_position == 2 and first.next_send_at <= timezone.now()
    assert "Resumed 1 subscriber." in _messages(response)

    confirm = admin_client.post(reverse(CHANGELIST), {"action": "unsubscribe", "_selected_action": [first.pk, second.pk]})
    assert confirm.status_code == 200 and "Yes, unsubscribe them" in confirm.content.decode()
    assert Subscriber.objects.filter(status="unsubscribed").count() == 0  # not before confirming
    response = _action(admin_client, "unsubscribe", [first.pk, second.pk], apply="1")
    assert "Unsubscribed 2 subscribers." in _messages(response)
    first.refresh_from_db()
    assert first.status == "unsubscribed" and first.unsubscribed_at is not None and first.next_send_at is None


def test_unsubscribing_a_suppressed_subscriber_keeps_them_suppressed(admin_client, two_series):
    treatment, _ = two_series
    bounced = _reader("bounced@example.org", treatment, status="suppressed")
    response = _action(admin_client, "unsubscribe", [bounced.pk], apply="1")
    assert any("already unsubscribed or suppressed" in m for m in _messages(response))
    assert Subscriber.objects.get(pk=bounced.pk).status == "suppressed"


def test_one_subscribers_manage_page(admin_client, two_series):
    treatment, remission = two_series
    reader = active_subscriber("reader@example.org", treatment)
    url = reverse("admin:nurture_subscriber_manage", args=[reader.pk])
    change = admin_client.get(reverse("admin:nurture_subscriber_change", args=[reader.pk])).content.decode()
    assert url in change  # linked from their page

    page = admin_client.get(url)
    assert page.status_code == 200 and 'value="pause"' in page.content.decode() and 'value="resume"' not in page.content.decode()

    bad = admin_client.post(url, {"operation": "change_stage", "stage": "recently_diagnosed", "language": ""})
    assert bad.status_code == 400 and "There is no series" in bad.content.decode()

    moved = admin_client.post(url, {"operation": "change_stage", "stage": "in_remission", "language": "en"}, follow=True)
    assert moved.status_code == 200 and Subscriber.objects.get(pk=reader.pk).series_id == remission.pk

    admin_client.post(url, {"operation": "pause"})
    assert Subscriber.objects.get(pk=reader.pk).status == "paused"
    admin_client.post(url, {"operation": "resume"})
    assert Subscriber.objects.get(pk=reader.pk).status == "active"

    nonsense = admin_client.post(url, {"operation": "delete-everything"})
    assert nonsense.status_code == 200 and Subscriber.objects.get(pk=reader.pk).status == "active"

    for missing in ("999999", "abc"):
        response = admin_client.get(f"/admin/nurture/subscriber/{missing}/manage/", follow=True)
        assert response.status_code == 200 and any("There is no subscriber" in m for m in _messages(response))


def test_subscriber_page_shows_deliveries_and_place_and_never_an_email_field(admin_client, two_series):
    treatment, _ = two_series
    reader = active_subscriber("reader@example.org", treatment)
    _send_everything_due()
    failed = Delivery.objects.create(subscriber=reader, step=treatment.steps.get(position=2), status="failed",
                                     failure_reason="HTTP 400: bad address")
    url = reverse("admin:nurture_subscriber_change", args=[reader.pk])
    page = admin_client.get(url).content.decode()
    assert "#1: Step 1" in page and "#3: Step 3" in page  # their deliveries, by step
    assert "HTTP 400: bad address" in page and reverse("email_preview:delivery", args=[failed.pk]) in page
    assert "#2: Step 2" in page and "(position" not in page  # the next step
    assert 'name="email"' not in page and 'name="_save"' not in page
    # Saving the change form is not possible at all: the email comes from the confirmed address.
    response = admin_client.post(url, {"email": "someone-else@example.org", "stage": "in_remission"})
    assert response.status_code == 403
    assert Subscriber.objects.get(pk=reader.pk).email == "reader@example.org"


def test_staff_with_view_permission_only_get_no_actions(client, django_user_model, two_series):
    treatment, _ = two_series
    reader = active_subscriber("reader@example.org", treatment)
    viewer = django_user_model.objects.create_user("viewer", "viewer@example.org", "pw-long-enough", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__in=["view_subscriber", "view_delivery"]))
    verified_login(client, viewer)
    page = client.get(reverse(CHANGELIST)).content.decode()
    assert "reader@example.org" in page and 'value="change_stage"' not in page
    response = client.post(reverse(CHANGELIST), {"action": "pause", "index": "0", "_selected_action": [reader.pk]})
    assert Subscriber.objects.get(pk=reader.pk).status == "active"
    response = client.post(reverse("admin:nurture_subscriber_manage", args=[reader.pk]), {"operation": "pause"}, follow=True)
    assert any("may view subscribers but not change them" in m for m in _messages(response))
    assert Subscriber.objects.get(pk=reader.pk).status == "active"
    assert 'value="requeue"' not in client.get(reverse(DELIVERIES)).content.decode()


# --- deliveries ------------------------------------------------------------------------------------


def test_delivery_list_columns_and_filters(admin_client, two_series):
    treatment, remission = two_series
    a = active_subscriber("a@example.org", treatment)
    b = active_subscriber("b@example.org", remission)
    failed = Delivery.objects.create(subscriber=a, step=treatment.steps.get(position=0), status="failed", attempts=6,
                                     failure_reason="gave up after 6 attempts: HTTP 503", message_id="<m1@nurture>")
    sent = Delivery.objects.create(subscriber=b, step=remission.steps.get(position=0), status="sent", provider_message_id="prov-77")
    page = admin_client.get(reverse(DELIVERIES)).content.decode()
    for text in ("gave up after 6 attempts: HTTP 503", "&lt;m1@nurture&gt;", "prov-77", "provider call started at", "next attempt at"):
        assert text in page.lower() or text in page, text
    by_status = admin_client.get(reverse(DELIVERIES), {"status__exact": "failed"})
    assert [d.pk for d in by_status.context["cl"].result_list] == [failed.pk]
    by_series = admin_client.get(reverse(DELIVERIES), {"step__series__id__exact": remission.pk})
    assert [d.pk for d in by_series.context["cl"].result_list] == [sent.pk]


def test_requeue_moves_only_failed_deliveries_and_they_are_sent(admin_client, two_series, django_capture_on_commit_callbacks):
    treatment, _ = two_series
    reader = active_subscriber("reader@example.org", treatment)
    failed = Delivery.objects.create(subscriber=reader, step=treatment.steps.get(position=0), status="failed", unanswered=True,
                                     failure_reason="unknown outcome: worker lost mid-send", article_versions={str(article("welcome").pk): 1})
    sent = Delivery.objects.create(subscriber=reader, step=treatment.steps.get(position=1), status="sent")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse(DELIVERIES), {"action": "requeue", "index": "0", "_selected_action": [failed.pk, sent.pk]}, follow=True
        )
    [message] = _messages(response)
    assert "Requeued 1 failed delivery" in message and "1 not requeued: only failed deliveries can be" in message
    failed.refresh_from_db()
    assert failed.status == "sent" and failed.attempts == 1  # enqueued on commit; the eager task sent it
    assert not failed.unanswered
    assert Delivery.objects.get(pk=sent.pk).status == "sent"
    assert len(mail.outbox) == 1 and "Welcome" in mail.outbox[0].body


def test_delivery_page_links_to_its_view_as_sent(admin_client, two_series):
    treatment, _ = two_series
    reader = active_subscriber("reader@example.org", treatment)
    delivery = Delivery.objects.create(subscriber=reader, step=treatment.steps.get(position=0))
    page = admin_client.get(reverse("admin:nurture_delivery_change", args=[delivery.pk])).content.decode()
    assert reverse("email_preview:delivery", args=[delivery.pk]) in page
    assert "Welcome (version 1)" in page  # by title, as readers see it


# --- "view in browser": exactly the delivery's articles, as sent --------------------------------------


def _view_online_page(client, delivery: Delivery) -> str:
    delivery = Delivery.objects.select_related("subscriber", "step__series").get(pk=delivery.pk)
    url = view_online_url(subscriber_id=delivery.subscriber_id, delivery_id=delivery.pk)
    response = client.get(url.removeprefix("https://guide.example.org"))
    assert response.status_code == 200
    return response.content.decode()


def test_view_in_browser_shows_only_the_delivered_articles_at_their_sent_versions(client, admin_client, two_series):
    treatment, remission = two_series
    reader = active_subscriber("reader@example.org", remission)
    earlier = Delivery.objects.create(subscriber=reader, step=treatment.steps.get(position=1), status="sent",
                                      sent_at=timezone.now() - timedelta(hours=1), article_versions={str(article("shared").pk): 1})
    _send_everything_due()
    delivery = Delivery.objects.exclude(pk=earlier.pk).get(subscriber=reader)
    assert delivery.status == "sent" and delivery.step.articles.count() == 2  # a step of two, one had before
    emailed = mail.outbox[-1].alternatives[0][0]
    web = _view_online_page(client, delivery)
    for page in (emailed, web):
        assert "Only Remission" in page and "Shared" not in page
    # The email builder and the web page render the same articles.
    rebuilt = build_delivery_email(Delivery.objects.select_related("subscriber", "step__series").get(pk=delivery.pk))
    assert "Shared" not in rebuilt.alternatives[0][0]

    # Staff edit the article afterwards: a new version. The page still shows what was sent.
    edited = article("only-remission")
    edited.title = "Rewritten Title"
    edited.body_markdown = "A new body written later."
    article_save(article=edited)
    article_approve(article_id=edited.pk, user=sample_reviewer())  # an edit is sent once approved
    edited.refresh_from_db()
    assert edited.version == 2
    web = _view_online_page(client, delivery)
    assert "Only Remission" in web and "Body of only-remission" in web
    assert "Rewritten Title" not in web and "A new body written later" not in web

    staff_page = admin_client.get(reverse("email_preview:delivery", args=[delivery.pk])).content.decode()
    assert "Only Remission (version 1; now version 2)" in staff_page and "Shared" not in staff_page
    staff_html = admin_client.get(reverse("email_preview:delivery_html", args=[delivery.pk])).content.decode()
    assert "Only Remission" in staff_html and "Rewritten Title" not in staff_html and "Shared" not in staff_html
    assert SAMPLE_TOKEN in staff_html  # its links do nothing


def test_a_delivery_not_sent_yet_shows_what_it_would_send_now(client, two_series):
    treatment, remission = two_series
    reader = active_subscriber("reader@example.org", remission)
    queued = Delivery.objects.create(subscriber=reader, step=remission.steps.get(position=0),
                                     article_versions={str(article("only-remission").pk): 1})
    edited = article("only-remission")
    edited.title = "Rewritten Title"
    article_save(article=edited)
    web = _view_online_page(client, queued)
    assert "Rewritten Title" not in web  # a draft until a clinical reviewer approves it
    article_approve(article_id=edited.pk, user=sample_reviewer())
    web = _view_online_page(client, queued)
    assert "Rewritten Title" in web and "Shared" not in web


def test_a_sent_delivery_without_a_snapshot_shows_the_article_as_it_is(client, two_series):
    treatment, _ = two_series
    reader = active_subscriber("reader@example.org", treatment)
    welcome = article("welcome")
    welcome.versions.all().delete()  # e.g. a row from before snapshots were kept
    delivery = Delivery.objects.create(subscriber=reader, step=treatment.steps.get(position=0), status="sent",
                                       article_versions={str(welcome.pk): 1})
    assert "Welcome" in _view_online_page(client, delivery)


def test_delivery_preview_is_staff_only_and_a_missing_id_is_a_message(client, admin_client, two_series):
    treatment, _ = two_series
    reader = active_subscriber("reader@example.org", treatment)
    delivery = Delivery.objects.create(subscriber=reader, step=treatment.steps.get(position=0))
    for name in ("email_preview:delivery", "email_preview:delivery_html"):
        response = client.get(reverse(name, args=[delivery.pk]))
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    response = admin_client.get(reverse("email_preview:delivery", args=[999999]), follow=True)
    assert response.status_code == 200 and any("There is no delivery with id 999999" in m for m in _messages(response))
    assert admin_client.get(reverse("email_preview:delivery_html", args=[999999])).status_code == 404


# --- the overview ----------------------------------------------------------------------------------


def _fill(treatment, remission, *, readers: int, prefix: str = "") -> None:
    now = timezone.now()
    for i in range(readers):
        a = active_subscriber(f"{prefix}t{i}@example.org", treatment)
        b = _reader(f"{prefix}r{i}@example.org", remission, status="paused")
        Delivery.objects.create(subscriber=a, step=treatment.steps.get(position=0), status="sent", sent_at=now)
        Delivery.objects.create(subscriber=a, step=treatment.steps.get(position=1), status="failed", failed_at=now,
                                failure_reason="HTTP 422: inactive")
        Delivery.objects.create(subscriber=b, step=remission.steps.get(position=0), status="sending",
                                sending_started_at=now - timedelta(hours=2))


def test_overview_counts_per_series_and_lists_problems(admin_client, two_series):
    treatment, remission = two_series
    _fill(treatment, remission, readers=2)
    old = Delivery.objects.create(subscriber=Subscriber.objects.first(), step=treatment.steps.get(position=2), status="sent")
    Delivery.objects.filter(pk=old.pk).update(queued_at=timezone.now() - timedelta(days=8))  # outside the 7 days
    Subscriber.objects.create(email="pending@example.org", stage="in_treatment")  # no series yet
    held = article("only-treatment")
    held.status = "draft"
    held.save()

    response = admin_client.get(reverse("nurture_overview"))
    assert response.status_code == 200
    rows = {row["series"].pk if row["series"] else None: row for row in response.context["table"]}
    statuses = [value for value, _ in Delivery.Status.choices]
    assert dict(zip(statuses, rows[treatment.pk]["deliveries"])) == {"queued": 0, "sending": 0, "sent": 2, "failed": 2, "skipped": 0, "unknown": 0}
    assert dict(zip(statuses, rows[remission.pk]["deliveries"]))["sending"] == 2
    sub_statuses = [value for value, _ in Subscriber.Status.choices]
    assert dict(zip(sub_statuses, rows[treatment.pk]["subscribers"]))["active"] == 2
    assert dict(zip(sub_statuses, rows[remission.pk]["subscribers"]))["paused"] == 2
    assert dict(zip(sub_statuses, rows[None]["subscribers"]))["pending"] == 1
    assert rows[treatment.pk]["held_back"] == [(2, "Step 3")] and rows[remission.pk]["held_back"] == []
    assert response.context["stuck"].count == 2 and response.context["failed"].count == 2
    assert response.context["failure_reasons"] == [("HTTP 422: inactive", 2)]
    page = response.content.decode()
    assert "HTTP 422: inactive" in page and "⚠ #3 Step 3" in page


def test_overview_costs_the_same_queries_for_few_or_many_rows(admin_client, two_series):
    treatment, remission = two_series
    _fill(treatment, remission, readers=1)
    admin_client.get(reverse("nurture_overview"))  # warm the session and content types
    with CaptureQueriesContext(connection) as few:
        admin_client.get(reverse("nurture_overview"))
    _fill(treatment, remission, readers=5, prefix="more")
    Series.objects.create(stage="recently_diagnosed", language="en", name="third")
    more = [active_subscriber(f"m{i}@example.org", treatment) for i in range(10)]
    for reader in more:
        Delivery.objects.create(subscriber=reader, step=treatment.steps.get(position=0), status="failed",
                                failed_at=timezone.now(), failure_reason=f"reason {reader.pk}")
    with CaptureQueriesContext(connection) as many:
        admin_client.get(reverse("nurture_overview"))
    assert len(many.captured_queries) == len(few.captured_queries)


def test_overview_is_linked_from_the_admin_index_and_the_series_list_and_is_staff_only(client, admin_client):
    url = reverse("nurture_overview")
    assert url in admin_client.get(reverse("admin:index")).content.decode()
    assert url in admin_client.get(reverse("admin:nurture_series_changelist")).content.decode()
    response = client.get(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
