"""A small structural reader for rendered email HTML, shared by the email tests."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Element:
    tag: str
    attrs: dict
    in_body: bool


@dataclass
class EmailHtml:
    elements: list[Element] = field(default_factory=list)
    styles: list[str] = field(default_factory=list)  # contents of <style> blocks
    text: str = ""

    def all(self, tag: str) -> list[Element]:
        return [e for e in self.elements if e.tag == tag]


class _Reader(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.result = EmailHtml()
        self.in_body = False
        self.in_style = False
        self.text_parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "body":
            self.in_body = True
        if tag == "style":
            self.in_style = True
            self.result.styles.append("")
        self.result.elements.append(Element(tag, dict(attrs), self.in_body))

    def handle_endtag(self, tag):
        if tag == "style":
            self.in_style = False

    def handle_data(self, data):
        if self.in_style:
            self.result.styles[-1] += data
        elif self.in_body:
            self.text_parts.append(data)


def read_html(html: str) -> EmailHtml:
    reader = _Reader()
    reader.feed(html)
    reader.close()
    reader.result.text = " ".join(" ".join(reader.text_parts).split())
    return reader.result


def css_outside_at_rules(css: str) -> str:
    """What is left of a style block once its @media blocks are removed (should be nothing)."""
    out, depth, i = [], 0, 0
    while i < len(css):
        if depth == 0 and css.startswith("@media", i):
            j = css.index("{", i)
            depth, i = 1, j + 1
            continue
        ch = css[i]
        if depth:
            depth += (ch == "{") - (ch == "}")
        else:
            out.append(ch)
        i += 1
    return re.sub(r"\s+", "", "".join(out))
