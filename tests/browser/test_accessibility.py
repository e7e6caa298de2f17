"""Accessibility as tests: axe-core (WCAG 2.0/2.1 A and AA, and best practice; tests/helpers/axe.py)
over every public page in English and Spanish at phone width in light and dark, every email as a
mail client shows it and as its web version, and the staff pages people work in. Zero violations.

To cover a new page or email, add one entry to PUBLIC_PAGES, EMAILS or STAFF_PAGES: a name and a
function that opens it in the given browser page (making whatever data it needs first).

Each list is checked in one test (per language), in one browser for the whole run: each page is
loaded once, checked with every rule in light, then redrawn dark (emulated media, no reload) for
the colour rules. A failure lists every page, language, scheme and rule that failed, and a page
that cannot be opened is reported by name while the others are still checked."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.utils import timezone

from nurture import tokens
from nurture.models import CarerHandoff, Delivery, Series, Subscriber
from tests.helpers.axe import axe_context, axe_violations, mail_client_page, violations_in_both_schemes
from tests.helpers.browser import logged_in_page
from tests.helpers.scheduler import active_subscriber, series

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
LANGUAGES = ("en", "es")
SCHEMES = ("light", "dark")
LOCALES = {"en": "en-GB", "es": "es-ES"}


@dataclass(frozen=True)
class Visit:
    """What an entry's `open` is given: the browser page, the site's address and the language."""

    page: object
    site: str
    language: str

    def go(self, path: str) -> None:
        response = self.page.goto(self.site + path)
        assert response is not None and response.status < 500, (path, response and response.status)

    def press(self, selector: str) -> None:
        with self.page.expect_navigation():
            self.page.click(selector)


def reading_series(language: str) -> Series:
    """The series readers here follow: the default library's when a check loaded it, else a small one."""
    found = Series.objects.filter(stage="in_treatment", language=language).first()
    return found or series("in_treatment", [(0, ["a1"]), (7, ["a2"])], language=language)


def reader(language: str, *, status: str = Subscriber.Status.ACTIVE, **extra) -> Subscriber:
    subscriber = active_subscriber(f"ana.{language}@example.org", reading_series(language), first_name="Ana", **extra)
    if status != Subscriber.Status.ACTIVE:
        Subscriber.objects.filter(pk=subscriber.pk).update(status=status)
        subscriber.refresh_from_db()
    return subscriber


def link(route: str, purpose: str, subscriber: Subscriber, extra: str = "") -> str:
    token = tokens.make_token(purpose=purpose, subscriber_id=subscriber.pk, extra=extra)
    return f"/{route}/{token}/"


def preferences(visit: Visit, subscriber: Subscriber | None = None) -> None:
    visit.go(link("preferences", tokens.PREFERENCES, subscriber or reader(visit.language)))


def preferences_action(action: str) -> Callable[[Visit], None]:
    def open_(visit: Visit) -> None:
        preferences(visit)
        visit.press(f"button[value={action}]")

    return open_


def signup_with_errors(visit: Visit) -> None:
    visit.go("/")
    visit.page.fill("#id_email", "not an email")
    visit.press("#main button[type=submit]")


def preferences_with_errors(visit: Visit) -> None:
    preferences(visit)
    visit.page.fill("input[name=carer_email]", "not an email")
    visit.press("button[value=carer]")


def confirm_ask(visit: Visit) -> None:
    visit.go(link("confirm", tokens.CONFIRM, reader(visit.language, status=Subscriber.Status.PENDING)))


def confirm_done(visit: Visit) -> None:
    confirm_ask(visit)
    visit.press("#main button[type=submit]")


def pause_ask(visit: Visit) -> None:
    visit.go(link("pause", tokens.PAUSE, reader(visit.language)))


def pause_done(visit: Visit) -> None:
    pause_ask(visit)
    visit.press("#main button[type=submit]")


def paused_preferences(visit: Visit) -> None:
    subscriber = reader(visit.language)
    from nurture.services.subscribers import subscriber_pause

    subscriber_pause(subscriber_id=subscriber.pk, weeks=4)
    preferences(visit, subscriber)


def unsubscribe_ask(visit: Visit) -> None:
    visit.go(link("unsubscribe", tokens.UNSUBSCRIBE, reader(visit.language)))


def unsubscribe_paused_instead(visit: Visit) -> None:
    unsubscribe_ask(visit)
    visit.page.check("input[name=weeks][value='4']")
    visit.press("button[value=pause]")


def unsubscribe_done(visit: Visit) -> None:
    unsubscribe_ask(visit)
    visit.press("#main button[type=submit]")


def handoff(language: str, *, status: str = CarerHandoff.Status.PENDING) -> tuple[Subscriber, CarerHandoff]:
    subscriber = reader(language)
    return subscriber, CarerHandoff.objects.create(subscriber=subscriber, carer_email="tom@example.org", status=status)


def carer_ask(visit: Visit) -> None:
    subscriber, made = handoff(visit.language)
    visit.go(link("carer/confirm", tokens.CARER_CONFIRM, subscriber, str(made.pk)))


def carer_done(visit: Visit) -> None:
    carer_ask(visit)
    visit.press("#main button[type=submit]")


def carer_stop(visit: Visit) -> None:
    subscriber, made = handoff(visit.language, status=CarerHandoff.Status.ACTIVE)
    visit.go(link("carer/stop", tokens.CARER_STOP, subscriber, str(made.pk)))


def preferences_with_carer(visit: Visit) -> None:
    subscriber, _made = handoff(visit.language, status=CarerHandoff.Status.ACTIVE)
    preferences(visit, subscriber)


def export_page(visit: Visit) -> None:
    visit.go(link("preferences", tokens.PREFERENCES, reader(visit.language)) + "export/?format=html")


def delivery_for(language: str) -> Delivery:
    subscriber = reader(language)
    step = subscriber.series.steps.get(position=0)
    return Delivery.objects.create(
        subscriber=subscriber, step=step, status="sent", sent_at=timezone.now(),
        article_versions={str(a.pk): a.version for a in step.articles.all()},
    )


def view_online_token(language: str) -> str:
    delivery = delivery_for(language)
    return tokens.make_token(purpose=tokens.VIEW_ONLINE, subscriber_id=delivery.subscriber_id, extra=str(delivery.pk))


def web_version(visit: Visit) -> None:
    visit.go(f"/email/{view_online_token(visit.language)}/")


def new_links_ask(visit: Visit) -> None:
    visit.go(f"/links/{view_online_token(visit.language)}/")


def new_links_sent(visit: Visit) -> None:
    new_links_ask(visit)
    visit.press("#main button[type=submit]")


def bad_link(visit: Visit) -> None:
    reader(visit.language)  # the page speaks the visitor's language: there is no subscriber to ask
    visit.go("/preferences/not-a-real-token/")


def replaced_link(visit: Visit) -> None:
    subscriber = reader(visit.language)
    old = link("preferences", tokens.PREFERENCES, subscriber)
    Subscriber.objects.filter(pk=subscriber.pk).update(link_version=subscriber.link_version + 1)
    visit.go(old)


# --- pages that came later: the subscriber's carer links, a carer's web copy, feedback, bereavement,
# check-ins, the guide --------------------------------------------------------------------------------


def carer_link(route: str, purpose: str, *, status: str = CarerHandoff.Status.PENDING) -> Callable[[Visit], None]:
    def open_(visit: Visit) -> None:
        subscriber, made = handoff(visit.language, status=status)
        visit.go(link(route, purpose, subscriber, str(made.pk)))

    return open_


def pressed(open_: Callable[[Visit], None]) -> Callable[[Visit], None]:
    """The page, then its one button."""
    def open_and_press(visit: Visit) -> None:
        open_(visit)
        visit.press("#main button[type=submit]")

    return open_and_press


def carer_delivery(language: str) -> Delivery:
    subscriber, made = handoff(language, status=CarerHandoff.Status.ACTIVE)
    step = subscriber.series.steps.get(position=0)
    return Delivery.objects.create(
        subscriber=subscriber, step=step, carer_handoff=made, status="sent", sent_at=timezone.now(),
        article_versions={str(a.pk): a.version for a in step.articles.all()},
    )


def carer_web_version(visit: Visit) -> None:
    delivery = carer_delivery(visit.language)
    visit.go(f"/carer/email/{tokens.make_token(purpose=tokens.CARER_VIEW, subscriber_id=delivery.subscriber_id, extra=str(delivery.pk))}/")


def feedback_page(question: str, query: str = "") -> Callable[[Visit], None]:
    def open_(visit: Visit) -> None:
        delivery = delivery_for(visit.language)
        visit.go(link("feedback", tokens.FEEDBACK, delivery.subscriber, f"{delivery.pk}:{question}") + query)

    return open_


def feedback_without_answer(visit: Visit) -> None:
    feedback_page("helpful")(visit)
    visit.press("#main button[type=submit]")


def bereavement_page(query: str = "") -> Callable[[Visit], None]:
    def open_(visit: Visit) -> None:
        visit.go(link("preferences", tokens.PREFERENCES, reader(visit.language)) + "bereavement/" + query)

    return open_


def carer_bereavement(visit: Visit) -> None:
    subscriber, made = handoff(visit.language, status=CarerHandoff.Status.ACTIVE)
    visit.go(link("carer/bereavement", tokens.CARER_STOP, subscriber, str(made.pk)))


def checkin_answer(visit: Visit) -> None:
    visit.go(link("checkin", tokens.CHECKIN, reader(visit.language), "in_remission"))


def guide(path: str) -> Callable[[Visit], None]:
    def open_(visit: Visit) -> None:
        from support.library import load_default_library

        load_default_library()
        visit.go(f"/guide/{visit.language}/{path}")

    return open_



@dataclass(frozen=True)
class Entry:
    name: str
    open: Callable[[Visit], None]


PUBLIC_PAGES = [
    Entry("signup", lambda visit: visit.go("/")),
    Entry("signup-errors", signup_with_errors),
    Entry("signup-done", lambda visit: visit.go("/thanks/")),
    Entry("privacy-notice", lambda visit: visit.go("/privacy/")),
    Entry("confirm", confirm_ask),
    Entry("confirmed", confirm_done),
    Entry("preferences", preferences),
    Entry("preferences-errors", preferences_with_errors),
    Entry("preferences-paused", paused_preferences),
    Entry("preferences-carer", preferences_with_carer),
    Entry("preferences-saved", preferences_action("save")),
    Entry("new-links-sent", preferences_action("new_links")),
    Entry("erase-confirm", preferences_action("erase")),
    Entry("stop-all-asks-first", preferences_action("unsubscribe")),
    Entry("preferences-pause-without-length", preferences_action("pause")),
    Entry("unsubscribe", unsubscribe_ask),
    Entry("unsubscribe-paused-instead", unsubscribe_paused_instead),
    Entry("unsubscribed", unsubscribe_done),
    Entry("pause", pause_ask),
    Entry("paused", pause_done),
    Entry("carer-confirm", carer_ask),
    Entry("carer-confirmed", carer_done),
    Entry("carer-stop", carer_stop),
    Entry("export", export_page),
    Entry("web-version", web_version),
    Entry("new-links", new_links_ask),
    Entry("new-links-sent", new_links_sent),
    Entry("bad-link", bad_link),
    Entry("replaced-link", replaced_link),
    Entry("carer-stopped", pressed(carer_stop)),
    Entry("carer-approve", carer_link("carer/approve", tokens.CARER_APPROVE)),
    Entry("carer-approved", pressed(carer_link("carer/approve", tokens.CARER_APPROVE))),
    Entry("carer-cancel", carer_link("carer/cancel", tokens.CARER_CANCEL)),
    Entry("carer-cancelled", pressed(carer_link("carer/cancel", tokens.CARER_CANCEL))),
    Entry("carer-web-version", carer_web_version),
    Entry("feedback", feedback_page("helpful", "?answer=yes")),
    Entry("feedback-impact", feedback_page("impact")),
    Entry("feedback-errors", feedback_without_answer),
    Entry("feedback-thanks", pressed(feedback_page("helpful", "?answer=no"))),
    Entry("bereavement", bereavement_page()),
    Entry("bereavement-confirm", bereavement_page("?step=confirm")),
    Entry("bereavement-done", pressed(bereavement_page("?step=confirm"))),
    Entry("carer-bereavement", carer_bereavement),
    Entry("checkin", checkin_answer),
    Entry("checkin-done", pressed(checkin_answer)),
    Entry("guide-index", guide("")),
    Entry("guide-article", guide("welcome/")),
]


def open_context(browser, *, language: str | None = None, viewport: dict, navigated: bool = True):
    """navigated: the page is opened by going to addresses, so axe can be loaded with each page
    (tests/helpers/axe.py axe_context); a page written with set_content gets it when checked."""
    options = {"viewport": viewport, "color_scheme": "light", **({"locale": LOCALES[language]} if language else {})}
    return axe_context(browser, **options) if navigated else browser.new_context(**options)


def afresh() -> None:
    """Between two entries: no reader left, nothing counted by the rate limits."""
    from django.core.cache import cache

    from nurture.services import throttle

    Subscriber.objects.all().delete()
    cache.clear()
    throttle.forget_in_process_limiters()


def checked(where: str, open_and_check: Callable[[], list[str]]) -> list[str]:
    """What open_and_check finds; if opening the entry fails, one line naming it and why."""
    try:
        return open_and_check()
    except Exception as error:  # noqa: BLE001 - reported with the entry's name; the other entries still run
        return [f"{where}: could not be opened and checked: {type(error).__name__}: {error}"[:1500]]


def check_public_page(page, site: str, entry: Entry, language: str) -> list[str]:
    """As a first visit: no cookie from the entries before (the site keeps nothing else in the
    browser), in light, the scheme the checks start in."""
    where = f"{entry.name} {language}"
    page.context.clear_cookies()
    page.emulate_media(color_scheme="light")

    def open_and_check() -> list[str]:
        entry.open(Visit(page, site, language))
        lang = page.locator("html").get_attribute("lang")
        if lang != language:
            return [f"{where}: <html lang> is {lang!r}, not {language!r} ({page.url})"]
        return violations_in_both_schemes(page, where)

    return checked(where, open_and_check)


@pytest.mark.parametrize("language", LANGUAGES)
def test_public_pages_have_no_accessibility_violations(language, browser, live_server, settings):
    """Every entry of PUBLIC_PAGES at phone width, light and dark."""
    settings.SITE_URL = live_server.url
    found = []
    context = open_context(browser, language=language, viewport=PHONE)
    try:
        page = context.new_page()  # one tab for every entry: each opens its page by going to it
        for entry in PUBLIC_PAGES:
            found += check_public_page(page, live_server.url, entry, language)
            afresh()
    finally:
        context.close()
    assert found == [], "\n".join(found)


# --- emails, as a mail client shows them --------------------------------------------------------------


def confirmation_email(language: str) -> str:
    from nurture.emails.messages import build_confirmation_email

    return build_confirmation_email(reader(language, status=Subscriber.Status.PENDING)).alternatives[0][0]


def links_email(reason: str) -> Callable[[str], str]:
    def build(language: str) -> str:
        from nurture.emails.messages import build_links_email

        return build_links_email(reader(language), reason=reason).alternatives[0][0]

    return build


def step_email(language: str) -> str:
    from nurture.emails.cache import render_cache
    from nurture.emails.messages import build_delivery_email
    from support.library import load_default_library

    if not Series.objects.filter(stage="recently_diagnosed", language=language).exists():
        load_default_library()
    render_cache.clear()
    the_series = Series.objects.get(stage="recently_diagnosed", language=language)
    subscriber = active_subscriber(f"lee.{language}@example.org", the_series, first_name="Lee")
    delivery = Delivery.objects.create(subscriber=subscriber, step=the_series.steps.get(position=0))
    return build_delivery_email(delivery).alternatives[0][0]


def carer_confirmation_email(language: str) -> str:
    from nurture.emails.messages import build_carer_confirmation_email

    _subscriber, made = handoff(language)
    return build_carer_confirmation_email(made).alternatives[0][0]


def carer_copy_email(language: str) -> str:
    from nurture.emails.messages import build_delivery_email

    delivery = Delivery.objects.select_related("subscriber", "step__series", "carer_handoff").get(pk=carer_delivery(language).pk)
    return build_delivery_email(delivery).alternatives[0][0]


def carer_notice_email(event: str, *, status: str = CarerHandoff.Status.PENDING) -> Callable[[str], str]:
    def build(language: str) -> str:
        from nurture.emails.messages import build_carer_notice_email

        _subscriber, made = handoff(language, status=status)
        if status == CarerHandoff.Status.STOPPED:
            CarerHandoff.objects.filter(pk=made.pk).update(stopped_by="carer", stopped_at=timezone.now())
            made.refresh_from_db()
        return build_carer_notice_email(made, event=event).alternatives[0][0]

    return build


def checkin_email(language: str) -> str:
    from nurture.emails.messages import build_checkin_email

    return build_checkin_email(reader(language), answers=["in_treatment", "in_remission", "same"]).alternatives[0][0]


def reply_unsubscribed_email(language: str) -> str:
    from nurture.emails.messages import build_reply_unsubscribed_email

    return build_reply_unsubscribed_email(reader(language, status=Subscriber.Status.UNSUBSCRIBED)).alternatives[0][0]


def bereavement_support_email(language: str) -> str:
    from nurture.emails.messages import build_bereavement_support_email
    from nurture.models import Bereavement

    from django.test import override_settings

    subscriber, made = handoff(language, status=CarerHandoff.Status.STOPPED)
    told = Bereavement.objects.create(subscriber=subscriber, source=Bereavement.Source.CARER_PAGE, support_email_to=made.carer_email)
    with override_settings(NURTURE_BEREAVEMENT_SUPPORT="Bereavement line: 0800 000 0000\nhttps://support.example.org/"):
        return build_bereavement_support_email(told).alternatives[0][0]



EMAILS = [
    Entry("confirmation", confirmation_email),
    Entry("already-subscribed", links_email("already")),
    Entry("new-links", links_email("fresh")),
    Entry("series-step", step_email),
    Entry("carer-confirmation", carer_confirmation_email),
    Entry("carer-copy", carer_copy_email),
    Entry("carer-notice-requested", carer_notice_email("requested")),
    Entry("carer-notice-active", carer_notice_email("active", status=CarerHandoff.Status.ACTIVE)),
    Entry("carer-notice-stopped", carer_notice_email("stopped", status=CarerHandoff.Status.STOPPED)),
    Entry("checkin", checkin_email),
    Entry("reply-unsubscribed", reply_unsubscribed_email),
    Entry("bereavement-support", bereavement_support_email),
]


def check_email(browser, entry: Entry, language: str) -> list[str]:
    where = f"{entry.name} email {language}"
    context = open_context(browser, language=language, viewport=PHONE, navigated=False)
    try:
        page = context.new_page()

        def open_and_check() -> list[str]:
            page.set_content(mail_client_page(entry.open(language), language=language, title=entry.name))
            if page.frames[1].locator("[role=article]").count() != 1:
                return [f"{where}: the email is not in the mail client's frame"]
            return violations_in_both_schemes(page, where)

        return checked(where, open_and_check)
    finally:
        context.close()


@pytest.mark.parametrize("language", LANGUAGES)
def test_emails_have_no_accessibility_violations(language, browser, live_server, settings):
    """Every entry of EMAILS: the HTML part as a mail client shows it (in a frame of the client's
    page: tests/helpers/axe.py mail_client_page), at phone width in light and dark. Its web version
    is a public page (PUBLIC_PAGES "web-version")."""
    from support.library import load_default_library

    settings.SITE_URL = live_server.url
    load_default_library()  # the series-step email carries the real articles; readers follow its series
    found = []
    for entry in EMAILS:
        found += check_email(browser, entry, language)
        afresh()
    assert found == [], "\n".join(found)


# --- the staff pages people work in -------------------------------------------------------------------


def first_pk(model) -> int:
    return model.objects.order_by("pk").values_list("pk", flat=True).first()


def staff_subscriber(site: str) -> str:
    from nurture.models import Series

    subscriber = active_subscriber("reader@example.org", Series.objects.get(stage="in_treatment", language="en"))
    return f"/admin/nurture/subscriber/{subscriber.pk}/change/"


def staff_article(site: str) -> str:
    from content.models import Article

    return f"/admin/content/article/{first_pk(Article)}/change/"


def staff_series(site: str) -> str:
    from nurture.models import Series

    return f"/admin/nurture/series/{first_pk(Series)}/change/"


def staff_step_preview(site: str) -> str:
    from nurture.models import Step

    return f"/admin/nurture/email-preview/step/{first_pk(Step)}/"


STAFF_PAGES = [
    Entry("admin-index", lambda site: "/admin/"),
    Entry("article-edit", staff_article),
    Entry("series-edit", staff_series),
    Entry("subscriber", staff_subscriber),
    Entry("results", lambda site: "/admin/nurture/results/"),
    Entry("overview", lambda site: "/admin/nurture/overview/"),
    Entry("email-previews", lambda site: "/admin/nurture/email-preview/"),
    Entry("email-preview-step", staff_step_preview),
    Entry("journey", lambda site: "/admin/nurture/email-preview/journey/?stage=recently_diagnosed&language=en"),
    Entry("step-list", lambda site: "/admin/nurture/step/"),
    Entry("step-edit", lambda site: staff_step_preview(site).replace("email-preview/step/", "step/") + "change/"),
]


def test_staff_pages_have_no_accessibility_violations(browser, live_server, client, django_user_model, settings):
    """All of STAFF_PAGES in one test: loading the guide for the admin costs more than the checks."""
    settings.SITE_URL = live_server.url
    staff = django_user_model.objects.create_superuser("lead", "lead@example.org", "pw-long-enough")
    page = logged_in_page(browser=browser, live_server=live_server, client=client, user=staff, viewport=DESKTOP,
                          new_context=axe_context)
    found = []

    def open_and_check(entry: Entry) -> list[str]:
        path = entry.open(live_server.url)
        response = page.goto(live_server.url + path)
        if response.status != 200:
            return [f"{entry.name}: {path} answered {response.status}"]
        return violations_in_both_schemes(page, entry.name)

    try:
        for entry in STAFF_PAGES:
            found += checked(entry.name, lambda entry=entry: open_and_check(entry))
    finally:
        page.context.close()
    assert found == [], "\n".join(found)


def test_staff_login_page_has_no_accessibility_violations(browser, live_server):
    context = open_context(browser, viewport=DESKTOP)
    try:
        page = context.new_page()
        page.goto(live_server.url + "/admin/login/")
        assert page.locator("h1").count() == 1
        found = violations_in_both_schemes(page, "login")
    finally:
        context.close()
    assert found == [], "\n".join(found)


def test_the_checks_see_a_fault_inside_an_email_and_on_a_page(browser):
    """The harness itself, both ways it loads axe: a picture without a text alternative inside the
    email's frame, a field without a label on a page, and a picture without a text alternative in
    a frame of a page gone to (as the staff email preview) are all reported (so a clean run means
    something)."""
    email = '<!doctype html><html lang="en"><head><title>t</title></head><body><div role="article"><p>Hi</p><img src="x.png"></div></body></html>'
    context = open_context(browser, viewport=PHONE, navigated=False)  # as the email checks
    try:
        page = context.new_page()
        page.set_content(mail_client_page(email, language="en", title="t"))
        assert any(line.startswith("image-alt ") for line in axe_violations(page))
        page.set_content('<!doctype html><html lang="en"><head><title>t</title></head><body><main><h1>t</h1><input type="text"></main></body></html>')
        assert any(line.startswith("label ") for line in axe_violations(page))
    finally:
        context.close()
    context = open_context(browser, viewport=PHONE)  # as the page checks: axe loaded with each page
    try:
        page = context.new_page()
        # Answered inside the browser: nothing leaves the machine.
        page.route("http://checks.test/", lambda route: route.fulfill(
            body=mail_client_page(email, language="en", title="t"), content_type="text/html"))
        page.goto("http://checks.test/")
        assert any(line.startswith("checks light: image-alt ") for line in violations_in_both_schemes(page, "checks"))
    finally:
        context.close()
