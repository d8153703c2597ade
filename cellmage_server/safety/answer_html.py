"""The stored answer as HTML, the form every renderer shows safely: one parser (markdown-it, with
raw HTML off) writes every tag and escapes every text and attribute, so no second parser can read
the answer differently. JupyterLab without this extension, a signed notebook reopened, nbconvert
and GitHub render this ``text/html``; the lab plugin renders the answer's Markdown itself (with
JupyterLab's highlighting) through its sanitizer. ``labextension/src/answerhtml.ts`` is the same
for the lab plugin; both are tested against ``tests/safety_cases.json``.

What the HTML can do: links to ``http``, ``https`` and ``mailto`` only, opening in a new tab with
``rel="noopener noreferrer"``; images only from the admin's ``image_origins``, every other image a
link (🖼 alt); math kept as text between its delimiters for MathJax, its link, load and style
commands broken, as in all text.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from .safe_markdown import IMAGE_MARK, break_tex

_SAFE_LINK = re.compile(r"(https?:|mailto:)")
_MATH = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


def _plain(tokens: list[Any]) -> str:
    """An image's alt text: its inline tokens' text, without markup."""
    parts = []
    for token in tokens:
        if token.type in ("text", "text_special", "code_inline", "math_text"):
            parts.append(token.content)
        elif token.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif token.type == "image":
            parts.append(_plain(token.children or []))
    return "".join(parts)


def _math(state: Any, silent: bool) -> bool:
    """Inline math (``$...$``, ``$$...$$``, ``\\(...\\)``, ``\\[...\\]``) as one text token, so
    emphasis and escapes do not touch it (JupyterLab's own Markdown does the same)."""
    src, pos, end = state.src, state.pos, state.posMax
    for opening, closing in _MATH:
        if src.startswith(opening, pos):
            # Where each closing delimiter was last looked for in vain: no later opening of its kind
            # can close either, so many unclosed ones cost one scan, not one each (quadratic).
            if not hasattr(state, "cellmage_missing"):
                state.cellmage_missing = {}  # one inline block's state: {(delimiter, end): position}
            missing = state.cellmage_missing.setdefault(end, {})
            if pos >= missing.get(closing, end + 1):
                return False
            found = src.find(closing, pos + len(opening), end)
            if found == -1:
                missing[closing] = min(missing.get(closing, end + 1), pos)
            if found <= pos + len(opening):
                return False
            if not silent:
                state.push("math_text", "", 0).content = src[pos : found + len(closing)]
            state.pos = found + len(closing)
            return True
    return False


@lru_cache(maxsize=8)
def _renderer(image_origins: tuple[str, ...]) -> Any:
    from markdown_it import MarkdownIt
    from markdown_it.common.utils import escapeHtml

    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    md.validateLink = lambda url: bool(_SAFE_LINK.match(url.strip().lower()))
    md.inline.ruler.before("escape", "cellmage_math", _math)
    prefixes = tuple(origin + "/" for origin in image_origins)

    def text(self: Any, tokens: list, idx: int, options: Any, env: Any) -> str:
        return escapeHtml(break_tex(tokens[idx].content))

    def link_open(self: Any, tokens: list, idx: int, options: Any, env: Any) -> str:
        tokens[idx].attrSet("target", "_blank")
        tokens[idx].attrSet("rel", "noopener noreferrer")
        return self.renderToken(tokens, idx, options, env)

    def image(self: Any, tokens: list, idx: int, options: Any, env: Any) -> str:
        src = escapeHtml(tokens[idx].attrGet("src") or "")
        alt = escapeHtml(break_tex(_plain(tokens[idx].children or [])))
        if src.lower().startswith(prefixes):
            return f'<img src="{src}" alt="{alt}" referrerpolicy="no-referrer">'
        return f'<a href="{src}" target="_blank" rel="noopener noreferrer">{IMAGE_MARK} {alt}</a>'

    md.add_render_rule("text", text)
    md.add_render_rule("math_text", text)
    md.add_render_rule("link_open", link_open)
    md.add_render_rule("image", image)
    return md


def answer_html(markdown: str, image_origins: tuple[str, ...] | list[str] = ()) -> str:
    """``markdown`` (a model's answer, and our own ending) as HTML that runs and fetches nothing."""
    return _renderer(tuple(image_origins)).render(markdown.replace("\r\n", "\n").replace("\r", "\n"))
