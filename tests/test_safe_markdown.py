"""Safe answer Markdown against the shared table of hostile answers (the lab plugin's safemd.ts is
tested against the same table), checked by an independent oracle: the result rendered by a
CommonMark renderer that passes raw HTML and every link through, as a trusted output would be."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from cellmage_server.answer.ending import ANSWER_MIME
from cellmage_server.safety.answer_html import answer_html
from cellmage_server.safety.safe_markdown import code_spans, safe_markdown

CASES = json.loads((Path(__file__).parent / "safety_cases.json").read_text())["cases"]
HOSTILE = [c for c in CASES if not c.get("harmless_as_written")]
# Answers whose danger shows in a CommonMark renderer (the oracle's); the attack review's cases
# are dangerous to marked's differences from CommonMark, which the stored HTML does not depend on.
COMMONMARK_HOSTILE = [c for c in HOSTILE if "found_by" not in c]

SAFE_SCHEMES = ("http:", "https:", "mailto:")
FORBIDDEN_TAGS = {"script", "img", "svg", "iframe", "object", "embed", "form", "button", "meta", "base", "link",
                  "style", "video", "audio", "source", "details", "body", "input", "math", "animate"}
TEX_ACTIVE = re.compile(
    r"\\(href|url|require|class|cssId|style|bbox|csname|unicode|html|data|fcolorbox|definecolor|def|gdef|edef|let|"
    r"newcommand|renewcommand|providecommand)(?![A-Za-z])"
)


class Findings(HTMLParser):
    """What a browser would run or fetch from this HTML, and its visible text."""

    def __init__(self, allowed_images: tuple[str, ...] = ()) -> None:
        super().__init__(convert_charrefs=True)
        self.allowed_images = allowed_images
        self.problems: list[str] = []
        self.text: list[str] = []
        self.prose: list[str] = []  # text outside code, where MathJax would look
        self._code = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("code", "pre"):
            self._code += 1
        if tag == "img" and dict(attrs).get("src") in self.allowed_images:
            attrs = [(n, v) for n, v in attrs if n not in ("src", "alt")]
        elif tag in FORBIDDEN_TAGS:
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            if name == "style" and re.fullmatch(r"text-align:(left|right|center)", value or ""):
                continue  # a table column's alignment, written by markdown-it itself
            if name.startswith("on") or name in ("style", "src", "srcset", "poster", "srcdoc", "action", "formaction"):
                self.problems.append(f"{tag}[{name}]")
            if name == "href" and value is not None:
                scheme = re.match(r"\s*([A-Za-z][A-Za-z0-9+.\-]*):", value)
                if scheme and not value.strip().lower().startswith(SAFE_SCHEMES):
                    self.problems.append(f"href={value[:40]}")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("code", "pre"):
            self._code -= 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if not self._code:
            self.prose.append(data)


def render_trusted(markdown: str, allowed_images: tuple[str, ...] = ()) -> Findings:
    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    md.validateLink = lambda url: True  # a trusted renderer that checks no link
    found = Findings(allowed_images)
    found.feed(md.render(markdown))
    prose = "".join(found.prose)
    if TEX_ACTIVE.search(prose):
        found.problems.append("active TeX command")
    return found


@pytest.mark.parametrize("case", COMMONMARK_HOSTILE, ids=[c["name"] for c in COMMONMARK_HOSTILE])
def test_the_oracle_sees_each_hostile_answer_as_dangerous(case):
    # Guards the oracle itself: without the rules, every hostile answer is caught running or fetching.
    assert render_trusted(case["answer"]).problems


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_safe_markdown_gives_the_shared_result(case):
    assert safe_markdown(case["answer"], case.get("image_origins", ())) == case["expected"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_nothing_in_the_result_runs_or_fetches_and_code_reads_as_written(case):
    allowed = tuple(case.get("allowed_images", ()))
    found = render_trusted(safe_markdown(case["answer"], case.get("image_origins", ())), allowed)
    assert found.problems == []
    if allowed:  # the allowed image is really shown, not turned into a link
        assert '<img src="' + allowed[0] in MarkdownIt("commonmark").render(case["expected"])
    text = "".join(found.text)
    for visible in case["visible"]:
        assert visible in text


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_stored_html_is_the_shared_result(case):
    assert answer_html(case["answer"], case.get("image_origins", ())) == case["expected_html"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_nothing_in_the_stored_html_runs_or_fetches_and_code_reads_as_written(case):
    found = Findings(tuple(case.get("allowed_images", ())))
    found.feed(answer_html(case["answer"], case.get("image_origins", ())))
    assert found.problems == []
    assert not TEX_ACTIVE.search("".join(found.prose))
    for visible in case["visible"]:
        assert visible in "".join(found.text)


def test_the_stored_html_links_open_apart_and_images_are_links():
    html = answer_html("[docs](https://example.org/a) and ![chart](https://example.org/c.png) and <https://example.org/x>")
    assert html.count('target="_blank" rel="noopener noreferrer"') == 3
    assert "<img" not in html and "🖼 chart</a>" in html


def test_math_keeps_its_text_for_mathjax_and_loses_its_links():
    html = answer_html("Energy $E = m c^2$, $a_1 * b_2 * c$ and $$\\href{https://x.org}{y}$$")
    assert "$E = m c^2$" in html and "$a_1 * b_2 * c$" in html  # no emphasis inside math
    assert "\\\u200bhref" in html


def _pieces(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_kernels_live_display_fed_delta_by_delta_ends_as_the_whole_answer(case):
    # The magic's live view (magics/display.py): the deltas go out as plain stdout, each once, and
    # the stored output that replaces them is the whole answer's. (The lab plugin's live Markdown,
    # livemd.ts, is fed the same table delta by delta in safemd.test.ts and render.test.ts.)
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    from cellmage_server.answer.ending import Ending, answer_bundle
    from cellmage_server.magics.display import AnswerDisplay

    InteractiveShell.instance()
    origins = tuple(case.get("image_origins", ()))
    ending = Ending(model="fake-fast")
    for deltas in (case.get("deltas") or _pieces(case["answer"], 13), _pieces(case["answer"], 1)):
        with capture_output() as shown:
            display = AnswerDisplay(live=True, interval=0)
            display.start("0123456789abcdef0123456789abcdef")
            for delta in deltas:
                display.delta(delta)
            display.finish(ending, origins)
        streamed = shown.stdout.split("\x1b[2K")[0]  # what clear_output(wait=True) then replaced
        assert streamed == case["answer"]
        assert [o.data for o in shown.outputs] == [
            answer_bundle(case["answer"], ending, origins, answer_id="0123456789abcdef0123456789abcdef")
        ]
        found = render_trusted(shown.outputs[0].data[ANSWER_MIME]["markdown"], tuple(case.get("allowed_images", ())))
        assert found.problems == []


def test_normal_markdown_keeps_its_formatting():
    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    normal = next(c for c in CASES if c["name"] == "normal answer")
    html = md.render(safe_markdown(normal["answer"]))
    for element in ("<h1>Title</h1>", "<li>one</li>", "<table>", '<code class="language-c">', "<code>List&lt;String&gt;</code>",
                    '<a href="https://example.org/docs?a=1">docs</a>'):
        assert element in html


@pytest.mark.parametrize(
    ("text", "spans"),
    [
        ("a `b` c", [(2, 5)]),
        ("``a ` b`` c", [(0, 9)]),
        ("\\`a` b", []),  # an escaped backtick opens nothing; the lone one after `a` has no partner
        ("`a\\`b", [(0, 4)]),  # no escapes inside code: the span ends at the second backtick
        ("```a``", []),
    ],
)
def test_code_spans_follow_commonmark_backtick_rules(text, spans):
    assert code_spans(text) == spans


def test_result_is_stable_on_long_mixed_answers():
    answer = "\n\n".join(c["answer"] for c in CASES) * 20
    once = safe_markdown(answer)
    assert render_trusted(once).problems == []


def test_loading_the_magics_does_not_import_the_markdown_parser():
    code = "import sys, cellmage_server.magics.magics; print('markdown_it' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("case", HOSTILE, ids=[c["name"] for c in HOSTILE])
def test_the_magics_stored_answer_is_safe_with_hostile_text_in_the_error_too(case):
    from cellmage_server.answer.ending import Ending, final_markdown

    ending = Ending(model=case["answer"][:30], error_code="upstream", error_message=case["answer"], stopped=True)
    found = render_trusted(final_markdown(case["answer"], ending))
    assert found.problems == []
