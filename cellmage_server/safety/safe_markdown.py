"""Safe answer Markdown: a model's answer rewritten so that any Markdown renderer, trusted or not,
shows it as formatted text and nothing more — no script, no fetched URL, no page restyling.

A model's answer is untrusted: the prompt may carry a prompt injection from anything pasted or
interpolated into it. JupyterLab renders a trusted output's Markdown (a kernel's, a signed
notebook's, a cell it created) without sanitizing it, and never checks ``src`` even when it does.
So the Markdown stored in a notebook must be safe by itself. This module is the one definition of
that; ``labextension/src/safemd.ts`` is the same algorithm for the lab plugin, and both are tested
against ``tests/safety_cases.json``.

The rules are context-free, so their safety does not depend on how a renderer parses Markdown;
only *what is code* comes from a CommonMark parse (markdown-it), because code must stay exactly
as written (``#include <stdio.h>``, ``a < b && c``, backslashes). Outside code:

- ``<`` becomes ``&lt;``: no raw HTML, no ``<scheme:...>`` autolinks;
- ``&`` before ``#`` or a letter becomes ``&amp;``: no entity-obfuscated ``&#106;avascript:``;
- ``![`` becomes ``🖼[``: an image becomes a link, fetched only if the user clicks it — unless it
  is an inline image ``![alt](url)`` whose URL starts with an origin the admin allowed
  (``image_origins``) followed by ``/``;
- ``javascript:``, ``vbscript:``, ``livescript:``, ``data:`` and ``file:`` (any case, also with a
  backslash before the colon) get a zero-width space before the colon: no such link can run;
- TeX commands that link, load, restyle or build commands (``\\href``, ``\\style``, ``\\bbox``,
  ``\\fcolorbox``, ``\\require``, ...) and those that define commands (``\\def``, ``\\newcommand``,
  ``\\let``, ...: JupyterLab's MathJax keeps definitions for every later formula) get a zero-width
  space after the backslash: MathJax cannot run them.

Code is what markdown-it finds: fenced and indented code blocks by line, and code spans inside
each paragraph, heading or table cell by CommonMark's backtick rule. Escaping can change block
structure (a line that opened an HTML block becomes a paragraph that may absorb an indented line
after it), so the result is parsed again and any code kept raw that is no longer code in the
result is escaped too, until nothing changes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

ZWSP = "\u200b"
IMAGE_MARK = "\U0001f5bc"  # 🖼

_ENTITY_START = re.compile(r"&(?=[#A-Za-z])")
_SCHEME = re.compile(r"(?i)(?<![a-z0-9+.\-])(javascript|vbscript|livescript|data|file)(?=\\?:)")
_TEX = re.compile(
    r"\\(?=(?:href|url|require|class|cssId|style|data|html|bbox|csname|unicode|mmlToken|mathtip|texttip|"
    r"toggle|enclose|tooltip|action|fbox|mbox|fcolorbox|definecolor|"
    # commands that define commands: a definition outlives its answer in JupyterLab's MathJax
    r"def|gdef|edef|xdef|let|newcommand|renewcommand|providecommand|newenvironment|renewenvironment|"
    r"DeclareMathOperator|empheqset)(?![A-Za-z]))"
)
_INLINE_IMAGE = re.compile(r"!\[[^\[\]\n\\]*\]\((https?://[^\x00-\x20)]*)")
_ASCII_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def break_tex(text: str) -> str:
    """TeX link, load and style commands made inert (MathJax finds math in the rendered page's text,
    so escaping its delimiters in Markdown is not enough)."""
    return _TEX.sub("\\\\" + ZWSP, text)


def _unallowed_images(text: str, origins: tuple[str, ...]) -> str:
    """Every ``![`` becomes a link's ``🖼[``, but for an inline image from an allowed origin."""
    if not origins:
        return text.replace("![", IMAGE_MARK + "[")
    prefixes = tuple(origin + "/" for origin in origins)

    def mark(match: re.Match[str]) -> str:
        image = _INLINE_IMAGE.match(text, match.start())
        return "![" if image and image.group(1).lower().startswith(prefixes) else IMAGE_MARK + "["

    return re.sub(r"!\[", mark, text)


def defang(text: str, image_origins: tuple[str, ...] = ()) -> str:
    """The context-free rules, for text that is not code."""
    text = _ENTITY_START.sub("&amp;", text)
    text = text.replace("<", "&lt;")
    text = _unallowed_images(text, image_origins)
    text = _SCHEME.sub(lambda m: m.group(1) + ZWSP, text)
    return break_tex(text)


def code_spans(text: str) -> list[tuple[int, int]]:
    """CommonMark code spans in one inline block: a backtick run up to the next run of the same
    length; a backslash escapes a backtick outside code. (HTML tags and autolinks, which would take
    precedence, cannot exist once ``<`` outside code is escaped.)"""
    spans = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in _ASCII_PUNCT:
            i += 2
        elif c == "`":
            run = i
            while i < n and text[i] == "`":
                i += 1
            length = i - run
            j = i
            while j < n:
                if text[j] != "`":
                    j += 1
                    continue
                close = j
                while j < n and text[j] == "`":
                    j += 1
                if j - close == length:
                    spans.append((run, j))
                    i = j
                    break
        else:
            i += 1
    return spans


def _table_cells(line: str) -> list[tuple[int, int]]:
    """A table row's cells, split at every unescaped ``|`` (finer than or equal to GFM's split)."""
    cells, start, i = [], 0, 0
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        if line[i] == "|":
            cells.append((start, i))
            start = i + 1
        i += 1
    cells.append((start, len(line)))
    return cells


@lru_cache(maxsize=1)
def _parser() -> Any:
    from markdown_it import MarkdownIt

    # CommonMark with GFM tables and strikethrough: the block structure JupyterLab's parser sees.
    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def code_regions(text: str) -> list[tuple[int, int]]:
    """Character ranges of ``text`` that a CommonMark renderer shows as code."""
    starts = [0]
    for i, c in enumerate(text):
        if c == "\n":
            starts.append(i + 1)
    ends = [s - 1 for s in starts[1:]] + [len(text)]  # each line's end, before its newline

    def span(first: int, last: int) -> tuple[int, int]:  # lines first..last-1
        return starts[first], ends[last - 1]

    regions: list[tuple[int, int]] = []
    for token in _parser().parse(text):
        if token.map is None or token.type not in _LEAVES:
            continue
        first, last = token.map
        if token.type in ("fence", "code_block"):
            regions.append(span(first, last))
        elif token.type == "table_open":
            for line in range(first, last):
                base = starts[line]
                row = text[base : ends[line]]
                for a, b in _table_cells(row):
                    regions += [(base + a + s, base + a + e) for s, e in code_spans(row[a:b])]
        else:  # paragraph_open, heading_open: code spans over the block's lines
            a, b = span(first, last)
            regions += [(a + s, a + e) for s, e in code_spans(text[a:b])]
    return sorted(regions)


_LEAVES = frozenset({"fence", "code_block", "table_open", "paragraph_open", "heading_open"})


def _rewrite(text: str, raw: list[tuple[int, int]], rules: Callable[[str], str]) -> tuple[str, list[tuple[int, int, int, int]]]:
    """``text`` with ``rules`` applied outside ``raw``; and where each raw range landed."""
    out: list[str] = []
    landed = []
    pos = length = 0
    for a, b in raw:
        if a < pos:
            continue
        piece = rules(text[pos:a])
        out.append(piece)
        length += len(piece)
        out.append(text[a:b])
        landed.append((a, b, length, length + b - a))
        length += b - a
        pos = b
    out.append(rules(text[pos:]))
    return "".join(out), landed


def _covered(regions: list[tuple[int, int]], a: int, b: int) -> bool:
    return a == b or any(s <= a and b <= e for s, e in regions)


def safe_markdown(text: str, image_origins: tuple[str, ...] | list[str] = ()) -> str:
    """``text`` (a model's Markdown answer) as Markdown that is safe to render as trusted.

    ``image_origins``: lower-case origins (``https://host[:port]``) whose inline images may load.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    origins = tuple(image_origins)
    raw = code_regions(text)
    # Each round can only demote code to escaped text, so this ends within len(raw) + 1 rounds.
    for _ in range(len(raw) + 1):
        out, landed = _rewrite(text, raw, lambda piece: defang(piece, origins))
        result_code = code_regions(out)
        lost = {(a, b) for a, b, oa, ob in landed if not _covered(result_code, oa, ob)}
        if not lost:
            return out
        raw = [r for r in raw if r not in lost]
    return defang(text, origins)  # not reached; escaping everything is safe


_SENTINEL = "\n\n\u2063"  # an invisible separator, as the first line after the answer


def close_open_fence(markdown: str) -> str:
    """``markdown`` with a fenced code block it leaves open closed, so that what is appended after
    it (a marker, an error, the status line) is not shown inside the code block.

    Only a fence at the top level can swallow what follows (a container's end closes its fences),
    so it is closed with its own fence string."""
    probe = markdown + _SENTINEL
    if not _covered(code_regions(probe), len(probe) - 1, len(probe)):
        return markdown
    fences = [t for t in _parser().parse(markdown) if t.type == "fence" and t.level == 0]
    closing = fences[-1].markup if fences else "```"
    return markdown.rstrip("\n") + "\n" + closing
