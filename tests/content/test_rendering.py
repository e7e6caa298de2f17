"""The article renderer: Markdown to email-safe HTML, and the checks on article Markdown."""
from __future__ import annotations

import re

import pytest

from content.rendering import ALLOWED_TAGS, markdown_problems, render_article_html, sanitise_html


def tags_in(html: str) -> set[str]:
    return set(re.findall(r"<([a-z][a-z0-9]*)", html))


def test_markdown_renders_the_tags_articles_use():
    html = render_article_html("Intro with **bold** and *em*.\n\n## Part\n\n### Sub\n\n- one\n- two\n\n1. first\n\n> quoted\n")
    assert {"p", "strong", "em", "h2", "h3", "ul", "ol", "li", "blockquote"} <= tags_in(html)


def test_external_links_kept_with_noopener_and_article_links_become_bold_text():
    html = render_article_html("See [NCI](https://www.cancer.gov) or [mail](mailto:help@example.org) and [the list](article:drug-history).")
    assert '<a href="https://www.cancer.gov" rel="noopener">NCI</a>' in html
    assert 'href="mailto:help@example.org"' in html
    assert "<strong>the list</strong>" in html
    assert "article:" not in html


@pytest.mark.parametrize(
    "dirty, forbidden",
    [
        ('<script>alert("x")</script><p>ok</p>', ["<script", "alert"]),
        ('<p>hi<img src="https://t.example/pixel.gif" width="1" height="1"></p>', ["<img", "pixel.gif"]),
        ('<p onclick="steal()">x</p><a href="https://ok.example" onerror="bad()">y</a>', ["onclick", "onerror", "steal", "bad()"]),
        ('<p style="background:url(https://t.example/p.gif)">x</p><style>p{color:red}</style>', ["style", "t.example", "color:red"]),
        ('<a href="javascript:alert(1)">click</a>', ["javascript", "href"]),
        ('<a href="JaVaScRiPt:alert(1)">click</a>', ["javascript", "href"]),
        ('<a href="/relative/path">x</a>', ["href"]),
        ('<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>', ["data:", "href"]),
        ('<iframe src="https://evil.example"></iframe><form><input></form>', ["iframe", "evil", "<form", "<input"]),
        ("<!-- tracking --><p>x</p>", ["tracking", "<!--"]),
    ],
)
def test_sanitiser_strips_what_emails_must_not_carry(dirty, forbidden):
    clean = sanitise_html(dirty)
    for needle in forbidden:
        assert needle.lower() not in clean.lower(), clean
    assert tags_in(clean) <= ALLOWED_TAGS


def test_raw_html_in_markdown_never_survives_rendering():
    """Even if a body skipped the checks (e.g. an old row), rendering cleans it."""
    html = render_article_html('Hello <script>x()</script> <img src=x onerror=y()> [a](javascript:alert(1))\n\n<div style="x">d</div>')
    assert tags_in(html) <= ALLOWED_TAGS
    for needle in ("script", "onerror", "javascript", "style", "<img", "<div"):
        assert needle not in html


@pytest.mark.parametrize(
    "body, message",
    [
        ("", "empty"),
        ("   \n\n", "empty"),
        ("Text <b>bold</b>", "raw HTML"),
        ("Text\n\n<!-- note -->", "raw HTML"),
        ("# Title", "top-level heading"),
        ("#### Deep", "### only"),
        ("![x](https://example.org/x.png)", "images"),
        ("[x](ftp://example.org)", "only http(s)"),
        ("[x](/relative)", "must be http(s)"),
        ("[x](article:Not A Slug)", "article:<slug>"),
        ("[x](article:)", "article:<slug>"),
        ("Para\n\n---\n\nMore", "<hr>"),
    ],
)
def test_markdown_problems_name_what_is_wrong(body, message):
    problems = markdown_problems(body)
    assert problems, body
    assert any(message in text for _, text in problems), problems


def test_markdown_problems_give_the_line():
    problems = markdown_problems("Fine.\n\nStill fine.\n\n# Oops\n")
    assert problems == [(5, problems[0][1])]


def test_autolinks_and_emails_in_angle_brackets_are_not_raw_html():
    assert markdown_problems("Visit <https://www.cancer.gov> or write to <help@example.org>.") == []


def test_the_real_library_has_no_problems(library_dir):
    for path in library_dir.glob("*/*.md"):
        body = path.read_text(encoding="utf-8").split("\n---\n", 1)[1]
        assert markdown_problems(body) == [], path
