"""axe-core in the browser tests: the WCAG 2.0/2.1 A and AA rules and axe's best practices, run on
the page a test has open (and every frame in it). axe-core itself comes pinned from PyPI
(axe-playwright-python vendors axe.min.js); we inject it ourselves so the options below are the only
ones in force."""
from __future__ import annotations

import html
from functools import cache

AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
# What a change of colour scheme can break: the page's structure is the same in light and dark.
COLOUR_RULES = ["color-contrast", "link-in-text-block"]


@cache
def axe_script() -> str:
    from axe_playwright_python.base import AXE_SCRIPT

    return AXE_SCRIPT


# A page opened with set_content and its srcdoc frames have the opaque origin "null", from which
# axe would refuse the frames' answers; these are test pages of our own.
_CONFIGURE = "axe.configure({allowedOrigins: ['<unsafe_all_origins>']})"


def axe_context(browser, **options):
    """A browser context whose every page has axe loaded before its own scripts run: the script
    crosses to the browser once per context, not once per page checked. (Frames get it from
    _inject: axe loaded this way inside a frame does not answer the page's axe.)"""
    context = browser.new_context(**options)
    context.add_init_script(script=f"if (window === window.top) {{\n{axe_script()}\n;{_CONFIGURE};\n}}")
    return context


def _inject(page) -> None:
    for frame in page.frames:  # axe checks a frame's content only with axe loaded in that frame
        if not frame.evaluate("typeof window.axe !== 'undefined'"):  # a page not opened by axe_context
            frame.evaluate(axe_script())
            frame.evaluate(_CONFIGURE)


def axe_violations(page, *, colour_only: bool = False) -> list[str]:
    """One line per rule broken on the open page: the rule, its impact, how many elements and the
    first few of them, so a failing test says what to fix without a second run. colour_only: just
    the rules a colour scheme affects (for the same page redrawn in the other scheme)."""
    _inject(page)
    run_only = {"type": "rule", "values": COLOUR_RULES} if colour_only else {"type": "tag", "values": AXE_TAGS}
    results = page.evaluate("options => axe.run(document, options)", {"runOnly": run_only, "resultTypes": ["violations"]})
    lines = []
    for violation in results["violations"]:
        targets = [" ".join(map(str, node["target"])) for node in violation["nodes"]]
        summary = violation["nodes"][0].get("failureSummary", "").replace("\n", " ")[:300]
        lines.append(
            f"{violation['id']} ({violation['impact']}) x{len(targets)}: {violation['help']}; "
            f"at {targets[:4]}; {summary}"
        )
    return lines


# Resolves once the style change has been drawn (two frames) and every finite animation or
# transition running then (the admin's colour transitions) has ended; at most 2 s.
_SETTLED = """async () => {
    await new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));
    const running = document.getAnimations().filter(a => Number.isFinite(a.effect?.getComputedTiming().endTime));
    const ended = Promise.all(running.map(a => a.finished.catch(() => null)));
    await Promise.race([ended, new Promise(done => setTimeout(done, 2000))]);
}"""


def redraw(page, scheme: str) -> None:
    """Switch the page to `scheme` and let colour transitions (the admin has some) finish."""
    page.emulate_media(color_scheme=scheme)
    page.evaluate(_SETTLED)


def violations_in_both_schemes(page, where: str, *, schemes=("light", "dark")) -> list[str]:
    """Every rule in the first scheme, then the colour rules again in the others (the same page,
    redrawn with emulated media, not reloaded). Each line starts with `where` and the scheme."""
    found = []
    for scheme in schemes:
        redraw(page, scheme)
        found += [f"{where} {scheme}: {line}" for line in axe_violations(page, colour_only=scheme != schemes[0])]
    return found


def mail_client_page(email_html: str, *, language: str, title: str) -> str:
    """A reading pane, as a mail client shows an email: the client's page (its own main landmark and
    heading) and the email in a frame, a document of its own. The email's wrapper is an article."""
    return (
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8"><title>Mail</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
        '<body><main><h1>Mail</h1>'
        f'<iframe title="{html.escape(title)}" srcdoc="{html.escape(email_html)}" '
        'style="width:100%;height:2400px;border:0"></iframe></main></body></html>'
    )
