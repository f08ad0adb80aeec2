"""The HTML report's Content-Security-Policy and its embedded JSON, checked on a page rendered from
in-memory data (no database): `report.render` is called directly with a small `ReportData`."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html.parser import HTMLParser

from creatorstays_infra.ops import report
from creatorstays_infra.ops.report import ACTIVATION_STEPS, FUNNEL_STEPS, ReportData

EVIL = "</script><script>alert(1)</script>"
NASTY = [
    EVIL,
    "<!--",
    "<script",
    "x\u2028y\u2029z",
    "a & b > c",
    "</SCRIPT >",
    "<!-- <script> </script> -->",
    "]]>",
]


class Page(HTMLParser):
    """Every start tag (name, attributes) and the raw text of every <script> and <style> element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.blocks: list[dict] = []  # {"tag", "attrs", "text"}
        self._open: dict | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))
        if tag in ("script", "style"):
            self._open = {"tag": tag, "attrs": dict(attrs), "text": ""}

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, attrs))

    def handle_data(self, data):
        if self._open is not None:
            self._open["text"] += data

    def handle_endtag(self, tag):
        if self._open is not None and tag == self._open["tag"]:
            self.blocks.append(self._open)
            self._open = None


def parse(page: str) -> Page:
    p = Page()
    p.feed(page)
    p.close()
    return p


def sample_data(text: str = "Plain") -> ReportData:
    """A small report; `text` goes into every free-text field that is shown and/or embedded as JSON."""
    funnel = {k: 100 - 10 * i for i, (k, _) in enumerate(FUNNEL_STEPS)}
    activation = {k: 50 - 5 * i for i, (k, _) in enumerate(ACTIVATION_STEPS)}
    funnel_weeks = [
        {
            "sent_week": f"2024-01-{d:02d}",
            "offers_sent": 10 + d,
            "offers_accepted": d,
            "responded_within_window_rate": 0.5,
            "accepted_within_window_rate": None if d > 20 else 0.25,
            "completed_within_window_rate": 0.1,
            "median_hours_to_response": 12.5,
            "responded_window_days": 7,
            "accepted_window_days": 14,
            "completed_window_days": 60,
            "note": text,
        }
        for d in (1, 8, 15, 22)
    ]
    activation_weeks = [
        {
            "signup_week": f"2024-01-{d:02d}",
            "creators_signed_up": 5 + d,
            "ready_rate": 0.4,
            "offer_within_window_rate": 0.3,
            "responded_within_window_rate": 0.2,
            "completed_collab_within_window_rate": 0.1,
            "offer_window_days": 14,
            "response_window_days": 21,
            "completed_collab_window_days": 60,
        }
        for d in (1, 8, 15)
    ]
    blockers = [
        {
            "display_order": 1,
            "blocker_code": "NO_PHOTO",
            "message": text,
            "creators_blocked": 30,
            "creators_blocked_only_by_this": 10,
            "share_of_creators": 0.3,
            "total_creators": 100,
        },
        {
            "display_order": 2,
            "blocker_code": f"CODE {text}",
            "message": "Add a bio " + text,
            "creators_blocked": 12,
            "creators_blocked_only_by_this": 0,
            "share_of_creators": 0.12,
            "total_creators": 100,
        },
        {
            "display_order": 3,
            "blocker_code": "NONE",
            "message": "nobody",
            "creators_blocked": 0,
            "creators_blocked_only_by_this": 0,
            "share_of_creators": 0.0,
            "total_creators": 100,
        },
    ]
    trust_days = [
        {"calendar_day": f"2024-01-{d:02d}", "trust_tier": t, "creators": n + d}
        for d in range(1, 16)
        for t, n in (("NEW", 40), ("VERIFIED", 20), ("PROVEN", 5))
    ]
    return ReportData(
        generated_at=f"2024-01-15 10:00 UTC {text}",
        schema=f"marts {text}",
        funnel=funnel,
        funnel_weeks=funnel_weeks,
        activation=activation,
        activation_weeks=activation_weeks,
        blockers=blockers,
        trust_days=trust_days,
        trust_latest={"NEW": 55, "VERIFIED": 35, text: 1},
        windows={"responded": 7, "accepted": 14, "completed": 60, "first_offer": 14, "first_response": text},
    )


def embedded(data: ReportData) -> dict:
    """What the page embeds as JSON (the same value json.loads must give back)."""
    return {
        "generatedAt": data.generated_at,
        "funnel": data.funnel,
        "activation": data.activation,
        "funnelWeeks": data.funnel_weeks,
        "activationWeeks": data.activation_weeks,
        "blockers": data.blockers,
        "trustLatest": data.trust_latest,
    }


def csp_directives(p: Page) -> dict[str, list[str]]:
    metas = [
        dict(a)
        for t, a in p.tags
        if t == "meta" and (dict(a).get("http-equiv") or "").lower() == "content-security-policy"
    ]
    assert len(metas) == 1, metas
    directives: dict[str, list[str]] = {}
    for part in metas[0]["content"].split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


# -- (a) the Content-Security-Policy -----------------------------------------------------------------------
def test_csp_has_no_unsafe_inline_and_hashes_every_inline_block():
    page = report.render(sample_data())
    p = parse(page)
    csp = csp_directives(p)
    assert "unsafe-inline" not in page
    assert csp["default-src"] == ["'none'"]
    for directive in ("script-src", "style-src"):
        assert directive in csp
        assert all(src.startswith("'sha256-") for src in csp[directive]), csp[directive]
    scripts = [b for b in p.blocks if b["tag"] == "script"]
    styles = [b for b in p.blocks if b["tag"] == "style"]
    assert len(scripts) == 2 and len(styles) == 1  # the JSON data, the small script; one stylesheet
    assert not any("src" in b["attrs"] for b in scripts)  # all inline
    for block in scripts:
        assert sha256_source(block["text"]) in csp["script-src"], block["attrs"]
    for block in styles:
        assert sha256_source(block["text"]) in csp["style-src"]
    # the executable script is the one the browser test relies on
    assert any("document.body" in b["text"] or "DOMContentLoaded" in b["text"] for b in scripts)


def test_no_style_or_event_handler_attributes():
    """Hashes do not cover `style="…"` or `on…="…"` attributes (CSP 3 without 'unsafe-hashes')."""
    p = parse(report.render(sample_data()))
    offending = [
        (tag, name)
        for tag, attrs in p.tags
        for name, _ in attrs
        if name.lower() == "style" or name.lower().startswith("on")
    ]
    assert offending == []
    # the blocker table still draws its bars, proportional to the largest
    page = report.render(sample_data())
    bars = re.findall(r'<svg class="minibar"[^>]*><rect width="([\d.]+)%"', page)
    assert bars == ["100.0", "40.0", "0.0"]


# -- (b) hostile text in the embedded JSON -----------------------------------------------------------------
def test_embedded_json_cannot_break_out_of_its_script_element():
    for text in NASTY:
        data = sample_data(text)
        page = report.render(data)
        p = parse(page)
        scripts = [b for b in p.blocks if b["tag"] == "script"]
        assert len(scripts) == 2, (text, [b["attrs"] for b in scripts])  # no element was injected
        assert sum(1 for t, _ in p.tags if t == "script") == 2
        payload = next(b for b in scripts if b["attrs"].get("type") == "application/json")
        assert payload["attrs"].get("id") == "report-data"
        raw = payload["text"]
        # what the HTML tokenizer looks for inside script data: none of it may appear
        for seq in ("<!--", "-->", "<script", "</script", "</"):
            assert seq not in raw.lower(), (text, seq)
        assert not set(raw) & {"<", ">", "&", "\u2028", "\u2029"}, text
        assert json.loads(raw) == embedded(data), text
        # the raw page: the text appears escaped in markup and nowhere raw, except where it is harmless
        assert EVIL not in page
        assert page.count("<script") == 2 and page.lower().count("</script") == 2


def test_embedded_json_round_trips_exactly():
    data = sample_data('quote " backslash \\ slash / \u2028\u2029 <b>&amp;</b> é ✓')
    raw = next(
        b["text"] for b in parse(report.render(data)).blocks if b["attrs"].get("type") == "application/json"
    )
    assert json.loads(raw) == embedded(data)
    assert (
        "\\u003c" in raw and "\\u003e" in raw and "\\u0026" in raw and "\\u2028" in raw and "\\u2029" in raw
    )


# -- (c) hostile text in the markup (the templates autoescape) -------------------------------------------
class Texts(HTMLParser):
    """Every attribute and every text node of a page, character references decoded (as a browser does)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.attrs.extend(attrs)

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.text.append(data)


def test_hostile_text_in_labels_and_attributes_is_escaped():
    """Database text shown in the page (a blocker's code and message, a cohort week, the schema) is
    escaped where it is text and where it is an attribute value: it reads back unchanged and injects nothing."""
    hostile = "\"'><script>alert(1)</script><iframe onload='x'>&amp;"
    data = sample_data(hostile)
    data.funnel_weeks[0]["sent_week"] = hostile  # a week label, a data-key and part of a data-metric
    page = report.render(data)
    p = parse(page)
    assert sum(1 for t, _ in p.tags if t == "script") == 2 and page.count("<script") == 2
    assert not any(t == "iframe" for t, _ in p.tags)  # no element was injected
    assert not any(name.lower().startswith("on") for _, attrs in p.tags for name, _ in attrs)
    # escaped in the markup: text, and attribute values whatever their quotes
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<td>" + hostile + "</td>" not in page
    assert "\"'>" not in page
    texts = Texts()
    texts.feed(page)
    texts.close()
    # and decoded back by the parser, exactly the database's text
    assert hostile in texts.text  # the blocker message cell and the weekly table's first cell
    assert f"marts {hostile}" in texts.text  # the schema
    values = {v for _, v in texts.attrs}
    assert {f"CODE {hostile}", f"blocker.CODE {hostile}.creators_blocked", hostile} <= values
    assert f"sent_week.{hostile}.offers_sent" in values
