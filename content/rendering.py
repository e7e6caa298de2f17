"""Article Markdown -> email-safe HTML, and the checks that keep article Markdown within what emails support.

One function renders an article body for every use (import, admin save, admin preview, the email), so
what staff preview is what subscribers get. Python-Markdown turns the text into HTML; nh3 then keeps only
the few tags articles need, links only to http(s)/mailto, with rel="noopener". Anything else (script,
img/tracking pixels, style, on* attributes, javascript: links) is removed even if it slipped past the checks.

Links between articles are written `[text](article:slug)`. Given `article_url` (slug -> absolute URL of the
article's public guide page, or None), they become real links to that page; without one, or where it gives
None (an article outside the reader's series), the link text stays, in bold, with no link.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Callable
import xml.etree.ElementTree as etree

import markdown
import nh3
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

ALLOWED_TAGS = frozenset({"p", "h2", "h3", "ul", "ol", "li", "strong", "em", "a", "blockquote", "br"})
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
ALLOWED_URL_SCHEMES = frozenset({"http", "https", "mailto"})
ARTICLE_SCHEME = "article"

# `[text](article:slug)`: the slug group may be empty or malformed; the checks report that.
ARTICLE_LINK_RE = re.compile(r"\]\(\s*article:([^)\s]*)\s*\)")
_RAW_HTML_RE = re.compile(r"<!--|<\s*/?\s*[A-Za-z][A-Za-z0-9-]*(?:\s[^>]*)?/?>")
_H1_ATX_RE = re.compile(r"^ {0,3}#(?!#)(?:\s|$)")
_DEEP_HEADING_RE = re.compile(r"^ {0,3}#{4,}(?:\s|$)")
_SETEXT_H1_RE = re.compile(r"^ {0,3}=+\s*$")
_IMAGE_RE = re.compile(r"!\[[^\]]*\]\s*[(\[]")
_LINK_TARGET_RE = re.compile(r"\]\(\s*<?([^)\s>]*)")
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


ArticleUrl = Callable[[str], "str | None"]


class _ArticleLinks(Treeprocessor):
    """Point <a href="article:slug"> at the article's guide page, or turn it into <strong>text</strong>."""

    article_url: ArticleUrl | None = None

    def run(self, root: etree.Element) -> None:
        for element in root.iter("a"):
            href = element.get("href", "").strip()
            if not href.lower().startswith(f"{ARTICLE_SCHEME}:"):
                continue
            url = self.article_url(href.split(":", 1)[1]) if self.article_url else None
            element.attrib.clear()
            if url:
                element.set("href", url)
            else:
                element.tag = "strong"


class _ArticleLinksExtension(Extension):
    def extendMarkdown(self, md: markdown.Markdown) -> None:
        # Below "inline" (priority 20) so links already exist as elements.
        md.treeprocessors.register(_ArticleLinks(md), "article_links", 5)


def _keep_safe_urls(tag: str, attribute: str, value: str) -> str | None:
    """nh3 attribute filter: hrefs must be absolute http(s)/mailto; relative URLs mean nothing in an email."""
    if tag == "a" and attribute == "href":
        match = _SCHEME_RE.match(value.strip())
        if not match or match.group(1).lower() not in ALLOWED_URL_SCHEMES:
            return None
    return value


def sanitise_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags={"script", "style"},
        attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_keep_safe_urls,
        url_schemes=set(ALLOWED_URL_SCHEMES),
        link_rel="noopener",
        strip_comments=True,
    )


_local = threading.local()


def _markdown_to_html(text: str, article_url: ArticleUrl | None = None) -> str:
    # Building a Markdown instance costs far more than a conversion; keep one per thread (they are not thread-safe).
    converter = getattr(_local, "converter", None)
    if converter is None:
        converter = _local.converter = markdown.Markdown(extensions=["sane_lists", _ArticleLinksExtension()],
                                                         output_format="html")
    converter.treeprocessors["article_links"].article_url = article_url
    try:
        return converter.reset().convert(text)
    finally:
        converter.treeprocessors["article_links"].article_url = None


def render_article_html(markdown_text: str, *, article_url: ArticleUrl | None = None) -> str:
    """The article body as HTML: Markdown rendered, sanitised; article links to their guide pages when
    `article_url` gives one (it must be absolute http(s): the sanitiser drops anything else), else bold."""
    return sanitise_html(_markdown_to_html(normalise_markdown(markdown_text), article_url))


def normalise_markdown(markdown_text: str) -> str:
    """One form for stored bodies: LF line ends (browsers submit CRLF), no trailing blank space."""
    return markdown_text.replace("\r\n", "\n").replace("\r", "\n").strip() + "\n" if markdown_text.strip() else ""


def article_link_slugs(markdown_text: str) -> list[tuple[int, str]]:
    """(line within the text, 1-based; slug) for every `article:` link."""
    found = []
    for number, line in enumerate(markdown_text.splitlines(), start=1):
        found.extend((number, match.group(1)) for match in ARTICLE_LINK_RE.finditer(line))
    return found


def markdown_problems(markdown_text: str) -> list[tuple[int, str]]:
    """What the emails cannot carry, as (line within the text, 1-based; message). Empty list: fine.

    Rejected: an empty body, raw HTML, an h1 (the email gives the article's title), headings below h3,
    images (tracking pixels; emails carry none), links other than http(s), mailto or article:slug,
    and any Markdown that renders to a tag outside ALLOWED_TAGS (e.g. an indented code block).
    """
    text = markdown_text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        return [(1, "the article body is empty")]
    problems: list[tuple[int, str]] = []
    lines = text.split("\n")
    previous = ""
    for number, line in enumerate(lines, start=1):
        raw = _RAW_HTML_RE.search(line)
        if raw:
            problems.append((number, f"raw HTML is not allowed ({raw.group(0)[:40]!r}); write Markdown"))
        if _H1_ATX_RE.match(line) or (_SETEXT_H1_RE.match(line) and previous.strip()):
            problems.append((number,
                "a top-level heading (# ...) is not allowed in the body; the title is the heading, use ## or ###"))
        if _DEEP_HEADING_RE.match(line):
            problems.append((number, "headings go down to ### only"))
        if _IMAGE_RE.search(line):
            problems.append((number, "images are not allowed in articles"))
        for target in _LINK_TARGET_RE.findall(line):
            scheme = _SCHEME_RE.match(target)
            if scheme is None:
                problems.append((number, f"link {target!r} must be http(s)://, mailto: or article:<slug>"))
            elif scheme.group(1).lower() == ARTICLE_SCHEME:
                slug = target.split(":", 1)[1]
                if not _SLUG_RE.match(slug):
                    problems.append((number,
                        f"link {target!r}: article links are written article:<slug>, e.g. article:drug-history"))
            elif scheme.group(1).lower() not in ALLOWED_URL_SCHEMES:
                problems.append((number, f"link {target!r}: only http(s)://, mailto: and article: links are allowed"))
        previous = line
    if not problems:
        rendered = _markdown_to_html(text)
        unsupported = sorted(set(re.findall(r"<([a-z][a-z0-9]*)", rendered)) - ALLOWED_TAGS)
        if unsupported:
            tags = ", ".join(f"<{tag}>" for tag in unsupported)
            problems.append((_likely_line(lines, unsupported),
                f"this Markdown renders to {tags}, which emails here do not carry (indented text becomes a code block; "
                "'---' a rule)"))
    return problems


_RULE_RE = re.compile(r"^ {0,3}([-*_])(?:\s*\1){2,}\s*$")
_INDENTED_RE = re.compile(r"^(?: {4}|\t)\S")


def _likely_line(lines: list[str], tags: list[str]) -> int:
    """The line that most likely produced an unsupported tag: a rule, an indented block, else the first text."""
    for number, line in enumerate(lines, start=1):
        if "hr" in tags and _RULE_RE.match(line):
            return number
        if {"pre", "code"} & set(tags) and _INDENTED_RE.match(line) and (number == 1 or not lines[number - 2].strip()):
            return number
    return next((n for n, line in enumerate(lines, start=1) if line.strip()), 1)
