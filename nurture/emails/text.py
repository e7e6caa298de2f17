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
        self.block_kinds: list[int | None] = []  # per block: id of the list it is an item of
        self.in_item = False

    # -- helpers
    def _flush(self):
        text = "".join(self.current)
        if not self.in_pre:
            text = re.sub(r" +", " ", text)
            text = "\n".join(line.strip() for line in text.split("\n")).strip("\n")
        self.current = []
        if not text.strip():
            return
        if self.heading:  # underlined, as plain-text mail has done for decades
            text = f"{text}\n{'-' * len(text)}"
        if self.quote_depth:
            text = "\n".join("> " * self.quote_depth + line for line in text.split("\n"))
        # List items are lines of one block, not paragraphs of their own: an item joins the block
        # before it when that was an item of the same (outermost) list.
        kind = id(self.lists[0]) if self.lists and self.in_item else None
        if kind is not None and self.block_kinds and self.block_kinds[-1] == kind:
            self.blocks[-1] += "\n" + text
        else:
            self.blocks.append(text)
            self.block_kinds.append(kind)

    def _list_prefix(self) -> str:
        kind, counter = self.lists[-1]
        indent = "  " * (len(self.lists) - 1)
        return f"{indent}{counter}. " if kind == "ol" else f"{indent}- "

    # -- parser callbacks
    def handle_starttag(self, tag, attrs):
        if tag == "p" and self.in_item and not "".join(self.current).strip(" -.0123456789"):
            return  # a "loose" list item's paragraph continues the item's own line
        if tag in _BLOCKS:
            self._flush()
            if tag in _HEADINGS:
                self.heading = tag
            elif tag in {"ul", "ol"}:
                self.lists.append([tag, 0])
                self.in_item = False
            elif tag == "blockquote":
                self.quote_depth += 1
            elif tag == "pre":
                self.in_pre = True
        elif tag == "li":
            self._flush()
            self.in_item = True
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
            self.in_item = bool(self.lists)  # text after a nested list still belongs to the outer item
        elif tag in _BLOCKS:
            self._flush()
            if tag in _HEADINGS:
                self.heading = None
            elif tag in {"ul", "ol"} and self.lists:
                self.lists.pop()
                self.in_item = bool(self.lists)
            elif tag == "blockquote":
                self.quote_depth = max(0, self.quote_depth - 1)
            elif tag == "pre":
                self.in_pre = False

    def handle_data(self, data):
        # Outside <pre>, HTML whitespace (newlines included) is one space; only <br> breaks a line.
        self.current.append(data if self.in_pre else re.sub(r"\s+", " ", data))

    def text(self) -> str:
        self._flush()
        return "\n\n".join(self.blocks)


def html_to_text(html: str) -> str:
    writer = _TextWriter()
    writer.feed(html)
    writer.close()
    return writer.text()
