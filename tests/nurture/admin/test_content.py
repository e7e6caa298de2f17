"""Admin for articles, series, steps, subscribers and deliveries, driven through the admin client."""
from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from content.models import Article, ArticleVersion
from content.services import articles_approve
from nurture.services.library import library_import
from support.library import sample_reviewer
from nurture.models import Delivery, Series, Step, Subscriber

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def _library_for_module(module_transaction):
    """The library as imported (not yet approved), once for the module (tests/conftest.py)."""
    from support.library import LIBRARY

    module_transaction(lambda: library_import(library_dir=LIBRARY))


@pytest.fixture
def library(_library_for_module):
    pass


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # admin_client logs in per test


class _FormFields(HTMLParser):
    """Collect what a browser would submit from the page's main form."""

    def __init__(self):
        super().__init__()
        self.data: list[tuple[str, str]] = []
        self._textarea: str | None = None
        self._select: str | None = None
        self._select_default: tuple[str, str] | None = None
        self._selected = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in {"submit", "button", "file"}:
            if a.get("type") in {"checkbox", "radio"} and "checked" not in a:
                return
            self.data.append((name, a.get("value", "on" if a.get("type") == "checkbox" else "")))
        elif tag == "textarea" and name:
            self._textarea = name
            self.data.append((name, ""))
        elif tag == "select" and name:
            self._select, self._selected, self._select_default = name, False, None
        elif tag == "option" and self._select:
            if self._select_default is None:
                self._select_default = (self._select, a.get("value", ""))
            if "selected" in a:
                self.data.append((self._select, a.get("value", "")))
                self._selected = True

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "select" and self._select:
            if not self._selected and self._select_default:
                self.data.append(self._select_default)
            self._select = None

    def handle_data(self, data):
        if self._textarea:
            name, value = self.data[-1]
            self.data[-1] = (name, value + data)


def form_data(html: str) -> dict:
    parser = _FormFields()
    parser.feed(html)
    data: dict[str, list[str]] = {}
    for name, value in parser.data:
        if name in {"csrfmiddlewaretoken", "_selected_action"}:
            continue
        data.setdefault(name, []).append(value.lstrip("\n") if name == "body_markdown" else value)
    return data


def article(slug, language="en") -> Article:
    return Article.objects.get(slug=slug, language=language)


def approve_all() -> None:
    """A clinical reviewer approves the whole library, as an operator does before production."""
    articles_approve(user=sample_reviewer())


def make_overdue(slug="drug-history", language="en") -> Article:
    """Approved, but past its next review date."""
    articles_approve(user=sample_reviewer(), language=language, slugs=[slug])
    Article.objects.filter(slug=slug, language=language).update(next_review_on=dt.date(2020, 1, 1))
    return article(slug, language)


def test_changelist_shows_review_columns_and_warnings(admin_client, library):
    make_overdue()
    response = admin_client.get(reverse("admin:content_article_changelist"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "awaiting review by a qualified translator" in html
    assert "⚠ Review overdue</strong><br><small>next review was 2020-01-01</small>" in html
    assert html.count("next review was") == 1
    assert html.count("<small>never approved</small>") == Article.objects.count() - 1  # the starter library as shipped
    for header in ("column-language", "column-status", "column-reviewer_display", "column-next_review_on", "column-version", "column-review_flag"):
        assert header in html


def test_english_reviewer_is_shown_not_the_translator_note(admin_client, library):
    articles_approve(user=sample_reviewer(), language="en", role="oncology nurse")
    response = admin_client.get(reverse("admin:content_article_changelist"), {"language": "en"})
    html = response.content.decode()
    assert "Dana Reviewer<br><small>oncology nurse</small>" in html
    assert "Nurture content team" not in html  # the file's claim is not an approval
    assert "awaiting review by a qualified translator" not in html


FILTER_CASES = [
    ({"stage": "in_remission"}, ["Keep your own copies"], ["Check your insurance first"]),
    ({"stage": "recently_diagnosed", "language": "es"}, ["Primero, averigüe qué cubre su seguro médico"], ["Check your insurance first", "Welcome to your guide"]),
    ({"q": "NCCN"}, ["Finding trusted treatment guidelines"], ["Welcome to your guide"]),
    ({"q": "drug-history"}, ["Keeping a list of your medicines"], ["Welcome to your guide"]),
    ({"status": "draft"}, ["Keeping a list of your medicines"], ["Welcome to your guide"]),
    ({"review": "overdue"}, ["Keeping a list of your medicines"], ["Welcome to your guide"]),
    ({"review": "current"}, ["Welcome to your guide"], ["Keeping a list of your medicines"]),
]


def test_changelist_filters_and_search(admin_client, library):
    approve_all()
    make_overdue("drug-history", "en")
    Article.objects.filter(slug="drug-history", language="en").update(status=Article.Status.DRAFT)
    for params, included, excluded in FILTER_CASES:
        response = admin_client.get(reverse("admin:content_article_changelist"), params)
        assert response.status_code == 200
        html = response.content.decode()
        for title in included:
            assert title in html, (params, title)
        for title in excluded:
            assert title not in html, (params, title)


BAD_QUERIES = [
    ("admin:content_article_changelist", {"stage": "<script>"}),
    ("admin:content_article_changelist", {"review": "sometime"}),
    ("admin:content_article_changelist", {"status": "nonsense", "language": "xx"}),
    ("admin:content_article_changelist", {"o": "99.abc"}),
    ("admin:nurture_step_changelist", {"series__id__exact": "abc"}),
    ("admin:nurture_step_changelist", {"language": "zz"}),
    ("admin:nurture_delivery_changelist", {"status": "nope"}),
    ("admin:nurture_subscriber_changelist", {"q": "%' OR 1=1"}),
]


def test_bad_query_strings_never_500(admin_client, library):
    for url_name, params in BAD_QUERIES:
        response = admin_client.get(reverse(url_name), params)
        assert response.status_code in {200, 302, 400}, (url_name, params, response.status_code)


def test_bad_object_ids_are_not_found_not_errors(admin_client, library):
    for url in ("/admin/content/article/abc/change/", "/admin/content/article/abc/preview/",
                "/admin/content/article/999999/preview/", "/admin/nurture/step/x/change/"):
        response = admin_client.get(url, follow=True)
        assert response.status_code in {200, 404}, url
        assert response.status_code != 500


def test_change_form_shows_warning_preview_and_history(admin_client, library):
    overdue = make_overdue("drug-history", "es")
    response = admin_client.get(reverse("admin:content_article_change", args=[overdue.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Review overdue: the next review was due 2020-01-01" in html
    assert "is past its review date (2020-01-01)" in html
    unreviewed = admin_client.get(reverse("admin:content_article_change", args=[article("welcome", "es").pk])).content.decode()
    assert "awaiting review by a qualified translator" in unreviewed
    assert reverse("admin:content_article_preview", args=[overdue.pk]) in html
    assert "ersion history (every saved version" in html
    messages = [str(m) for m in response.context["messages"]]
    assert any("Review overdue" in m for m in messages)


def test_preview_is_the_article_in_the_email_layout(admin_client, library):
    target = article("research-guidelines")
    Article.objects.filter(pk=target.pk).update(status=Article.Status.DRAFT)  # drafts can be previewed too
    response = admin_client.get(reverse("admin:content_article_preview", args=[target.pk]))
    assert response.status_code == 200
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    html = response.content.decode()
    assert target.title in html
    assert "Two good places to start" in html and 'href="https://www.nccn.org"' in html
    assert "article:" not in html and "<script" not in html
    # The email layout itself: its footer links, which in a preview act on no one.
    assert "Stop these emails" in html
    assert "/unsubscribe/sample-link/" in html


def test_spanish_preview_uses_the_spanish_layout(admin_client, library):
    target = article("drug-history", "es")
    html = admin_client.get(reverse("admin:content_article_preview", args=[target.pk])).content.decode()
    assert target.title in html
    assert 'lang="es"' in html
    # A reference to another article is a link to its public guide page, in the article's language.
    assert re.search(r'<a href="[^"]*/guide/es/getting-your-records/"[^>]*>cómo obtener copias de sus registros médicos</a>', html)


def test_preview_needs_staff(client, library):
    target = article("welcome")
    response = client.get(reverse("admin:content_article_preview", args=[target.pk]))
    assert response.status_code == 302 and "/login/" in response.headers["Location"]


def test_admin_edit_goes_through_versions(admin_client, library):
    target = article("welcome")
    url = reverse("admin:content_article_change", args=[target.pk])
    data = form_data(admin_client.get(url).content.decode())
    assert data["stages"] == ["recently_diagnosed", "in_treatment", "in_remission"]
    data["body_markdown"] = [target.body_markdown.replace("Thank you for joining us.", "Thank you for joining us today.")]
    data["reviewer"] = ["Dr. A. Reviewer"]
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    target.refresh_from_db()
    assert target.version == 2
    assert "joining us today" in target.body_html
    assert ArticleVersion.objects.filter(article=target).count() == 2
    # An unchanged save keeps the version (the browser sends CRLF line ends).
    data = form_data(admin_client.get(url).content.decode())
    data["body_markdown"] = [data["body_markdown"][0].replace("\n", "\r\n")]
    assert admin_client.post(url, data).status_code == 302
    target.refresh_from_db()
    assert target.version == 2
    # And the history shows on the page.
    assert "Thank you for joining us today." in admin_client.get(url).content.decode()


@pytest.mark.parametrize(
    "body, message",
    [
        ("Hi <img src=https://t.example/p.gif>", "Line 1: raw HTML is not allowed"),
        ("Fine.\n\n# Big", "Line 3: a top-level heading"),
        ("See [x](article:no-such-article).", "Line 1: link to article:no-such-article"),
        ("", "This field is required"),
    ],
)
def test_admin_refuses_markdown_the_emails_cannot_carry(admin_client, library, body, message):
    target = article("welcome")
    url = reverse("admin:content_article_change", args=[target.pk])
    data = form_data(admin_client.get(url).content.decode())
    data["body_markdown"] = [body]
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert message in response.content.decode()
    target.refresh_from_db()
    assert target.version == 1


def test_admin_add_article(admin_client, library):
    url = reverse("admin:content_article_add")
    data = form_data(admin_client.get(url).content.decode())
    data.update({
        "slug": ["new-note"], "language": ["es"], "title": ["Una nota"], "stages": ["in_treatment"],
        "source_section": ["Seeking a Second Opinion"], "body_markdown": ["Texto. Vea [la lista](article:drug-history)."],
        "status": ["draft"], "reviewer": [""], "last_reviewed": [""],
    })
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    created = article("new-note", "es")
    assert created.version == 1 and "<strong>la lista</strong>" in created.body_html


def test_steps_show_what_is_held_back_and_why(admin_client, library):
    approve_all()
    Article.objects.filter(slug="drug-history", language="es").update(status=Article.Status.DRAFT)
    Article.objects.filter(slug="keeping-your-records", language="es").update(status=Article.Status.IN_REVIEW)
    response = admin_client.get(reverse("admin:nurture_step_changelist"), {"language": "es"})
    assert response.status_code == 200
    html = response.content.decode()
    # in_remission has a step with drug-history only: held back.
    assert html.count("Held back: “Cómo llevar una lista de sus medicamentos” (es) is in draft") == 1
    assert "Held back: “Guarde sus propias copias” (es) is in review" in html
    # recently_diagnosed and in_treatment have drug-history alongside records-to-gather: sent without it.
    assert "Sent without: “Cómo llevar una lista de sus medicamentos” (es) is in draft" in html

    series = Series.objects.get(stage="in_remission", language="es")
    response = admin_client.get(reverse("admin:nurture_series_change", args=[series.pk]))
    assert response.status_code == 200
    assert "Held back: “Guarde sus propias copias” (es) is in review" in response.content.decode()
    step = Step.objects.get(series=series, position=1)
    assert reverse("email_preview:step", args=[step.pk]) in html
    listing = admin_client.get(reverse("admin:nurture_series_changelist")).content.decode()
    # in_remission/es: steps 2 (keeping-your-records) and 3 (drug-history), each with its reason
    assert "#2: “Guarde sus propias copias” (es) is in review" in listing
    assert "#3: “Cómo llevar una lista de sus medicamentos” (es) is in draft" in listing


def test_step_change_page_and_language_check(admin_client, library):
    step = Step.objects.get(series__stage="in_treatment", series__language="en", position=0)
    url = reverse("admin:nurture_step_change", args=[step.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    data = form_data(page.content.decode())
    total = int(data["steparticle_set-TOTAL_FORMS"][0])
    spanish = article("welcome", "es")
    data[f"steparticle_set-{total - 1}-article"] = [str(spanish.pk)]
    data[f"steparticle_set-{total - 1}-order"] = ["9"]
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "is in &#x27;es&#x27;, but this series is in &#x27;en&#x27;" in response.content.decode()
    assert not step.articles.filter(language="es").exists()


def test_subscriber_and_delivery_admin_are_read_only_lists(admin_client, library):
    series = Series.objects.get(stage="in_treatment", language="en")
    subscriber = Subscriber.objects.create(email="reader@example.org", stage="in_treatment", language="en", series=series)
    delivery = Delivery.objects.create(subscriber=subscriber, step=series.steps.first(), status=Delivery.Status.SENT)
    for name, params in (("nurture_subscriber", {}), ("nurture_delivery", {"status__exact": "sent"}), ("nurture_series", {})):
        response = admin_client.get(reverse(f"admin:{name}_changelist"), params)
        assert response.status_code == 200
    response = admin_client.get(reverse("admin:nurture_delivery_change", args=[delivery.pk]))
    assert response.status_code == 200
    assert 'name="status"' not in response.content.decode()  # view only
    assert admin_client.get(reverse("admin:nurture_delivery_add")).status_code == 403
    response = admin_client.get(reverse("admin:nurture_subscriber_change", args=[subscriber.pk]))
    assert response.status_code == 200 and 'name="email"' not in response.content.decode()


def test_deleting_an_article_used_by_a_step_is_refused_not_an_error(admin_client, library):
    target = article("welcome")
    response = admin_client.post(reverse("admin:content_article_delete", args=[target.pk]), {"post": "yes"})
    assert response.status_code == 200
    assert "protected" in response.content.decode().lower()
    assert Article.objects.filter(pk=target.pk).exists()


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"slug": ["welcome"], "language": ["en"]}, "already exists"),
        ({"title": [""]}, "This field is required"),
        ({"stages": ["cured"]}, "Select a valid choice"),
        ({"status": ["live"]}, "Select a valid choice"),
        ({"slug": ["Not a slug!"]}, "Enter a valid"),
    ],
)
def test_admin_add_with_bad_input_shows_errors_not_500(admin_client, library, changes, message):
    url = reverse("admin:content_article_add")
    data = form_data(admin_client.get(url).content.decode())
    data.update({
        "slug": ["another-note"], "language": ["en"], "title": ["A note"], "stages": ["in_treatment"],
        "source_section": ["Seeking a Second Opinion"], "body_markdown": ["Text."],
        "status": ["draft"], "reviewer": [""], "last_reviewed": [""],
    })
    data.update(changes)
    before = Article.objects.count()
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert Article.objects.count() == before


def test_series_form_refuses_two_steps_at_one_position(admin_client, library):
    series = Series.objects.get(stage="in_remission", language="en")
    url = reverse("admin:nurture_series_change", args=[series.pk])
    data = form_data(admin_client.get(url).content.decode())
    data["steps-1-position"] = data["steps-0-position"]
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "Please correct the duplicate data for position" in response.content.decode()
    assert sorted(series.steps.values_list("position", flat=True)) == list(range(series.steps.count()))


def test_deleting_a_delivered_step_in_the_series_form_is_refused(admin_client, library):
    series = Series.objects.get(stage="in_remission", language="en")
    step = series.steps.get(position=0)
    subscriber = Subscriber.objects.create(email="reader@example.org", stage="in_remission", language="en", series=series)
    Delivery.objects.create(subscriber=subscriber, step=step, status=Delivery.Status.SENT)
    url = reverse("admin:nurture_series_change", args=[series.pk])
    data = form_data(admin_client.get(url).content.decode())
    index = next(k.split("-")[1] for k, v in data.items() if k.endswith("-id") and v == [str(step.pk)])
    data[f"steps-{index}-DELETE"] = ["on"]
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "protected" in response.content.decode().lower()
    assert Step.objects.filter(pk=step.pk).exists()
