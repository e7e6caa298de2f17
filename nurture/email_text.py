"""Plain text from an article's sanitised HTML, for the text/plain twin of every email.

The input is the small, known subset that content rendering lets through nh3 (paragraphs,
headings, lists, links, emphasis, block quotes, code), so a stdlib HTMLParser walk is enough:
paragraphs stay paragraphs, headings are underlined, lists become "- " / "1. " lines, links
become "text (url)".
Lines are not hard-wrapped: phones reflow plain text, and wrapping would break long links.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCKS = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "blockquote", "pre", "table", "tr", "hr"}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}


class _TextWriter(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []  # finished blocks, joined by blank lines
        self.current: list[str] = []
        self.lists: list[list] = []  # stack of [kind, counter]
        self.links: list[tuple[str, int]] = []  # (href, position in current where its text starts)
        self.quote_depth = 0
        self.in_pre = False
        self.heading: str | None = None

    # -- helpers
    def _flush(self):
        text = "".join(self.current)
        if not self.in_pre:
            text = re.sub(r"[ \t\r\f\v]+", " ", text)
            text = "\n".join(line.strip() for line in text.split("\n")).strip("\n")
        self.current = []
        if not text.strip():
            return
        if self.heading:  # underlined, as plain-text mail has done for decades
            text = f"{text}\n{'-' * len(text)}"
        if self.quote_depth:
            text = "\n".join("> " * self.quote_depth + line for line in text.split("\n"))
        self.blocks.append(text)

    def _list_prefix(self) -> str:
        kind, counter = self.lists[-1]
        indent = "  " * (len(self.lists) - 1)
        return f"{indent}{counter}. " if kind == "ol" else f"{indent}- "

    # -- parser callbacks
    def handle_starttag(self, tag, attrs):
        if tag in _BLOCKS:
            self._flush()
            if tag in _HEADINGS:
                self.heading = tag
            elif tag in {"ul", "ol"}:
                self.lists.append([tag, 0])
            elif tag == "blockquote":
                self.quote_depth += 1
            elif tag == "pre":
                self.in_pre = True
        elif tag == "li":
            self._flush()
            if not self.lists:
                self.lists.append(["ul", 0])
            self.lists[-1][1] += 1
            self.current.append(self._list_prefix())
        elif tag == "br":
            self.current.append("\n")
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            self.links.append((href, len(self.current)))
        elif tag == "img":
            alt = dict(attrs).get("alt") or ""
            if alt:
                self.current.append(f"[{alt}]")

    def handle_endtag(self, tag):
        if tag == "a" and self.links:
            href, start = self.links.pop()
            text = "".join(self.current[start:]).strip()
            if href and not href.startswith("#") and href.rstrip("/") != text.rstrip("/"):
                self.current.append(f" ({href.removeprefix('mailto:')})")
        elif tag == "li":
            self._flush()
            self._join_list_items()
        elif tag in _BLOCKS:
            self._flush()
            if tag in _HEADINGS:
                self.heading = None
            elif tag in {"ul", "ol"} and self.lists:
                self.lists.pop()
            elif tag == "blockquote":
                self.quote_depth = max(0, self.quote_depth - 1)
            elif tag == "pre":
                self.in_pre = False

    def _join_list_items(self):
        # List items are lines of one block, not paragraphs of their own.
        if len(self.blocks) >= 2 and self._is_item(self.blocks[-1]) and self._is_item(self.blocks[-2]):
            last = self.blocks.pop()
            self.blocks[-1] += "\n" + last

    @staticmethod
    def _is_item(block: str) -> bool:
        first = block.split("\n", 1)[0].lstrip("> ").lstrip()
        return first.startswith("- ") or bool(re.match(r"\d+\. ", first))

    def handle_data(self, data):
        self.current.append(data)

    def text(self) -> str:
        self._flush()
        return "\n\n".join(self.blocks)


def html_to_text(html: str) -> str:
    writer = _TextWriter()
    writer.feed(html)
    writer.close()
    return writer.text()
