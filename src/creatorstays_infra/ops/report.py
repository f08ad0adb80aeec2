"""`csinfra report`: one self-contained HTML file built from the marts.

No network resource of any kind: the charts are inline SVG, the style and the small script are inline,
and the numbers shown are also embedded as JSON (`<script type="application/json" id="report-data">`)
so that a machine can read what a person sees. Every number shown carries `data-metric` (and, in a
table, `data-key`), which the browser test reads back from the rendered DOM.

The Content-Security-Policy allows no 'unsafe-inline': it lists the sha256 of each inline <script> and
<style> element's exact text, and the page has no `style="…"` or `on…="…"` attributes (hashes do not
cover those), so sizes are SVG attributes.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from ..errors import CsinfraError
from .catalog import table_exists
from .marts import MART_MODELS

FUNNEL_STEPS = (
    ("offers_sent", "Sent"),
    ("offers_viewed", "Viewed"),
    ("offers_responded", "Responded"),
    ("offers_accepted", "Accepted"),
    ("collabs_started", "Collaboration started"),
    ("collabs_completed", "Completed"),
)
ACTIVATION_STEPS = (
    ("creators_signed_up", "Signed up"),
    ("creators_profile_complete", "Profile complete"),
    ("creators_ready", "Ready"),
    ("creators_with_offer", "First offer"),
    ("creators_responded", "First response"),
    ("creators_completed_collab", "First completed collaboration"),
)
TIER_COLORS = {"NEW": "#9aa5b1", "VERIFIED": "#3b82f6", "PROVEN": "#16a34a"}
LINE_COLORS = ("#2563eb", "#16a34a", "#d97706", "#9333ea")
WEEKS_SHOWN = 26


@dataclass
class ReportData:
    generated_at: str
    schema: str
    funnel: dict[str, int]
    funnel_weeks: list[dict[str, Any]]
    activation: dict[str, int]
    activation_weeks: list[dict[str, Any]]
    blockers: list[dict[str, Any]]
    trust_days: list[dict[str, Any]]
    trust_latest: dict[str, int] = field(default_factory=dict)
    windows: dict[str, int] = field(default_factory=dict)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def _rows(conn: psycopg.Connection, query: sql.Composable) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query)
        return [{k: _plain(v) for k, v in row.items()} for row in cur.fetchall()]


def _totals(
    conn: psycopg.Connection, schema: sql.Identifier, table: str, steps: tuple[tuple[str, str], ...]
) -> dict[str, Any]:
    """Each step's column summed over all cohorts of a report mart."""
    columns = sql.SQL(", ").join(
        sql.SQL("coalesce(sum({c}), 0)::bigint as {c}").format(c=sql.Identifier(c)) for c, _ in steps
    )
    return _rows(conn, sql.SQL("select {} from {}.{}").format(columns, schema, sql.Identifier(table)))[0]


def _recent_weeks(
    conn: psycopg.Connection, schema: sql.Identifier, table: str, week: str, columns: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The last WEEKS_SHOWN cohorts of a report mart, oldest first."""
    return _rows(
        conn,
        sql.SQL(
            "select * from (select {week}, {columns} from {schema}.{table} order by {week} desc limit {limit}) as recent "
            "order by {week}"
        ).format(
            week=sql.Identifier(week),
            columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
            schema=schema,
            table=sql.Identifier(table),
            limit=sql.Literal(WEEKS_SHOWN),
        ),
    )


def load(conn: psycopg.Connection, schema: str) -> ReportData:
    """Read everything the report shows from the marts in `schema` (dbt's schema)."""
    missing = [m for m in MART_MODELS if not table_exists(conn, schema, m)]
    if missing:
        raise CsinfraError(
            f"marts missing in schema {schema}: {', '.join(missing)} (run `csinfra marts` first)"
        )
    s = sql.Identifier(schema)
    funnel = _totals(conn, s, "rpt_offer_funnel_by_sent_week", FUNNEL_STEPS)
    funnel_weeks = _recent_weeks(
        conn,
        s,
        "rpt_offer_funnel_by_sent_week",
        "sent_week",
        (
            "offers_sent",
            "offers_accepted",
            "responded_within_window_rate",
            "accepted_within_window_rate",
            "completed_within_window_rate",
            "median_hours_to_response",
            "responded_window_days",
            "accepted_window_days",
            "completed_window_days",
        ),
    )
    activation = _totals(conn, s, "rpt_creator_activation_by_signup_week", ACTIVATION_STEPS)
    activation_weeks = _recent_weeks(
        conn,
        s,
        "rpt_creator_activation_by_signup_week",
        "signup_week",
        (
            "creators_signed_up",
            "ready_rate",
            "offer_within_window_rate",
            "responded_within_window_rate",
            "completed_collab_within_window_rate",
            "offer_window_days",
            "response_window_days",
            "completed_collab_window_days",
        ),
    )
    blockers = _rows(
        conn,
        sql.SQL(
            "select display_order, blocker_code, message, creators_blocked, creators_blocked_only_by_this, "
            "share_of_creators, total_creators from {}.rpt_readiness_blockers order by display_order"
        ).format(s),
    )
    trust_days = _rows(
        conn,
        sql.SQL(
            "select calendar_day, trust_tier, creators from {}.rpt_trust_tier_distribution_daily "
            "order by calendar_day, trust_tier"
        ).format(s),
    )
    latest_day = max((r["calendar_day"] for r in trust_days), default=None)
    trust_latest = {
        r["trust_tier"]: int(r["creators"]) for r in trust_days if r["calendar_day"] == latest_day
    }
    windows = {}
    if funnel_weeks:
        w = funnel_weeks[-1]
        windows.update(
            responded=w["responded_window_days"],
            accepted=w["accepted_window_days"],
            completed=w["completed_window_days"],
        )
    if activation_weeks:
        a = activation_weeks[-1]
        windows.update(first_offer=a["offer_window_days"], first_response=a["response_window_days"])
    return ReportData(
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        schema=schema,
        funnel={k: int(v) for k, v in funnel.items()},
        funnel_weeks=funnel_weeks,
        activation={k: int(v) for k, v in activation.items()},
        activation_weeks=activation_weeks,
        blockers=blockers,
        trust_days=trust_days,
        trust_latest=trust_latest,
        windows=windows,
    )


# -- rendering -------------------------------------------------------------------------------------------
def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _n(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def csp_source(text: str) -> str:
    """The CSP hash source (`'sha256-…'`) of an inline element's exact text, as the browser hashes it (UTF-8)."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


# Inside <script>, the HTML tokenizer reacts to `</script`, `<!--` and `<script`; JSON escapes make none
# of them (nor `&`, `>`, or the line separators older JavaScript rejects) appear, and parse back unchanged.
_SCRIPT_SAFE = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def json_for_script(value: Any) -> str:
    """`value` as JSON that is safe as the text of a <script type="application/json"> element."""
    return json.dumps(value, default=str).translate(_SCRIPT_SAFE)


def _svg_open(title: str, width: int, height: int) -> str:
    return (
        f'<svg class="chart" role="img" aria-label="{_e(title)}" viewBox="0 0 {width} {height}" '
        f'width="100%" xmlns="http://www.w3.org/2000/svg">'
    )


def funnel_chart(
    metric_prefix: str, steps: tuple[tuple[str, str], ...], values: dict[str, int], title: str
) -> str:
    """Horizontal bars, one per step, with the count and the share of the first step."""
    width, bar_h, gap, label_w = 760, 30, 12, 210
    top = values[steps[0][0]] or 0
    height = len(steps) * (bar_h + gap) + 10
    parts = [_svg_open(title, width, height)]
    for i, (key, label) in enumerate(steps):
        v = values[key] or 0
        w = 0 if top == 0 else max(2, (width - label_w - 170) * v / top)
        y = 5 + i * (bar_h + gap)
        share = None if top == 0 else v / top
        parts.append(
            f'<text x="{label_w - 10}" y="{y + bar_h * 0.68:.1f}" text-anchor="end" class="lbl">{_e(label)}</text>'
            f'<rect class="bar" x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" rx="3" fill="#2563eb">'
            f"<title>{_e(label)}: {_n(v)}</title></rect>"
            f'<text x="{label_w + w + 8:.1f}" y="{y + bar_h * 0.68:.1f}" class="val" '
            f'data-metric="{_e(metric_prefix + key)}">{_n(v)}</text>'
            f'<text x="{label_w + w + 98:.1f}" y="{y + bar_h * 0.68:.1f}" class="pct">{_pct(share)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def line_chart(rows: list[dict[str, Any]], x_key: str, series: list[tuple[str, str]], title: str) -> str:
    """Rates (0..1) per cohort week as lines; NULL points (windows still open) are gaps."""
    width, height, left, right, top, bottom = 760, 260, 50, 20, 15, 45
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(rows)
    parts = [_svg_open(title, width, height)]
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        y = top + plot_h * (1 - tick)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{tick:.0%}</text>'
        )

    def x_at(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    for i, row in enumerate(rows):
        if i % 4 == 0 or (i == n - 1 and i % 4 >= 2):
            parts.append(
                f'<text x="{x_at(i):.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                f'class="axis">{_e(str(row[x_key])[5:])}</text>'
            )
    for s_i, (key, label) in enumerate(series):
        color = LINE_COLORS[s_i % len(LINE_COLORS)]
        segment: list[str] = []
        segments: list[list[str]] = []
        for i, row in enumerate(rows):
            v = row.get(key)
            if v is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            y = top + plot_h * (1 - min(max(float(v), 0.0), 1.0))
            segment.append(f"{x_at(i):.1f},{y:.1f}")
            parts.append(
                f'<circle class="point" cx="{x_at(i):.1f}" cy="{y:.1f}" r="2.5" fill="{color}">'
                f"<title>{_e(row[x_key])} {_e(label)}: {_pct(float(v))}</title></circle>"
            )
        if segment:
            segments.append(segment)
        for seg in segments:
            parts.append(
                f'<polyline class="line" fill="none" stroke="{color}" stroke-width="2" points="{" ".join(seg)}"/>'
            )
        lx = left + 10 + s_i * 240
        parts.append(
            f'<rect x="{lx}" y="{height - 14}" width="12" height="4" fill="{color}"/>'
            f'<text x="{lx + 18}" y="{height - 9}" class="axis">{_e(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def trust_chart(days: list[dict[str, Any]], title: str) -> str:
    """Stacked areas of creators per trust tier over time (one point per week and the last day)."""
    by_day: dict[str, dict[str, int]] = {}
    for r in days:
        by_day.setdefault(r["calendar_day"], {})[r["trust_tier"]] = int(r["creators"])
    all_days = sorted(by_day)
    if not all_days:
        return '<p class="empty">No creators yet.</p>'
    picked = [d for i, d in enumerate(all_days) if i % 7 == 0 or i == len(all_days) - 1]
    width, height, left, right, top, bottom = 760, 280, 70, 20, 15, 45
    plot_w, plot_h = width - left - right, height - top - bottom
    y_max = max(sum(by_day[d].values()) for d in picked) or 1
    n = len(picked)

    def x_at(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    parts = [_svg_open(title, width, height)]
    for tick in (0, 0.5, 1.0):
        y = top + plot_h * (1 - tick)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{_n(y_max * tick)}</text>'
        )
    base = [0.0] * n
    for tier, color in TIER_COLORS.items():
        upper = [base[i] + by_day[d].get(tier, 0) for i, d in enumerate(picked)]
        pts_up = [f"{x_at(i):.1f},{top + plot_h * (1 - upper[i] / y_max):.1f}" for i in range(n)]
        pts_down = [f"{x_at(i):.1f},{top + plot_h * (1 - base[i] / y_max):.1f}" for i in reversed(range(n))]
        parts.append(
            f'<polygon class="area" data-tier="{_e(tier)}" fill="{color}" fill-opacity="0.85" '
            f'points="{" ".join(pts_up + pts_down)}"><title>{_e(tier)}</title></polygon>'
        )
        base = upper
    step = max(1, -(-n // 6))  # at most about seven labels
    for i, d in enumerate(picked):
        if i % step == 0 or (i == n - 1 and i % step >= step // 2):
            anchor = "end" if i == n - 1 else ("start" if i == 0 else "middle")
            parts.append(
                f'<text x="{x_at(i):.1f}" y="{height - bottom + 16}" text-anchor="{anchor}" class="axis">{_e(d)}</text>'
            )
    for t_i, (tier, color) in enumerate(TIER_COLORS.items()):
        lx = left + 10 + t_i * 140
        parts.append(
            f'<rect x="{lx}" y="{height - 16}" width="12" height="8" fill="{color}"/>'
            f'<text x="{lx + 18}" y="{height - 9}" class="axis">{_e(tier)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def blocker_table(blockers: list[dict[str, Any]]) -> str:
    top = max((int(b["creators_blocked"]) for b in blockers), default=0) or 1
    rows = []
    for b in blockers:
        code = _e(b["blocker_code"])
        width = 100 * int(b["creators_blocked"]) / top
        rows.append(
            f'<tr data-key="{code}"><td>{_e(b["display_order"])}</td><td><code>{code}</code></td>'
            f"<td>{_e(b['message'])}</td>"
            f'<td class="num" data-metric="blocker.{code}.creators_blocked">{_n(b["creators_blocked"])}</td>'
            f'<td class="num" data-metric="blocker.{code}.creators_blocked_only_by_this">{_n(b["creators_blocked_only_by_this"])}</td>'
            f'<td class="num">{_pct(b["share_of_creators"])}</td>'
            f'<td class="barcell"><svg class="minibar" width="100%" height="10" aria-hidden="true">'
            f'<rect width="{width:.1f}%" height="10" rx="2" fill="#f59e0b"/></svg></td></tr>'
        )
    return (
        '<table class="data"><thead><tr><th>#</th><th>Blocker</th><th>Dashboard message</th>'
        "<th>Creators held back</th><th>Only blocker</th><th>Share</th><th></th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def weeks_table(rows: list[dict[str, Any]], x_key: str, columns: list[tuple[str, str, str]]) -> str:
    head = "".join(f"<th>{_e(label)}</th>" for _, label, _ in columns)
    body = []
    for r in rows:
        cells = []
        for key, _, kind in columns:
            v = r.get(key)
            text = _pct(v) if kind == "pct" else (_n(v) if kind == "n" else _e(v))
            cells.append(f'<td class="num" data-metric="{_e(x_key)}.{_e(r[x_key])}.{_e(key)}">{text}</td>')
        body.append(f'<tr data-key="{_e(r[x_key])}"><td>{_e(r[x_key])}</td>{"".join(cells)}</tr>')
    return (
        f'<table class="data"><thead><tr><th>{_e(x_key)}</th>{head}</tr></thead><tbody>'
        + "".join(body)
        + "</tbody></table>"
    )


STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2933;margin:0;background:#f5f7fa}
header{background:#1f2933;color:#fff;padding:22px 32px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;color:#cbd2d9;font-size:13px}main{max-width:900px;margin:0 auto;padding:16px 24px 48px}
section{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.08);padding:18px 22px;margin:18px 0}
h2{font-size:18px;margin:0 0 6px}p.note{color:#52606d;font-size:13px;margin:4px 0 12px}
.lbl{font-size:13px;fill:#323f4b}.val{font-size:13px;font-weight:600;fill:#1f2933}.pct{font-size:12px;fill:#616e7c}
.axis{font-size:11px;fill:#616e7c}.grid{stroke:#e4e7eb;stroke-width:1}
table.data{border-collapse:collapse;width:100%;font-size:13px}table.data th,table.data td{padding:5px 8px;border-bottom:1px solid #e4e7eb;text-align:left}
table.data td.num{text-align:right;font-variant-numeric:tabular-nums}.barcell{width:140px}
.minibar{display:inline-block}
details summary{cursor:pointer;color:#2563eb;font-size:13px;margin-top:8px}
.kpis{display:flex;gap:12px;flex-wrap:wrap}.kpi{flex:1;min-width:150px;background:#f0f4f8;border-radius:6px;padding:10px 12px}
.kpi b{display:block;font-size:20px}.kpi span{font-size:12px;color:#52606d}
"""

# Runs in the browser: counts what was drawn and records it on <body>, so a headless browser's DOM
# shows that the charts were parsed and laid out (the browser test reads these attributes).
SCRIPT = """
document.addEventListener('DOMContentLoaded', function () {
  var b = document.body;
  b.dataset.bars = document.querySelectorAll('svg rect.bar').length;
  b.dataset.areas = document.querySelectorAll('svg polygon.area').length;
  b.dataset.points = document.querySelectorAll('svg circle.point').length;
  var widths = Array.prototype.map.call(document.querySelectorAll('svg.chart'), function (s) {
    return Math.round(s.getBoundingClientRect().width);
  });
  b.dataset.chartWidths = widths.join(',');
  b.dataset.rendered = 'ok';
});
"""


def render(data: ReportData) -> str:
    f, a = data.funnel, data.activation
    w = data.windows
    sent = f["offers_sent"] or 0
    kpis = [
        ("kpi.offers_sent", _n(sent), "offers sent"),
        ("kpi.acceptance", _pct(f["offers_accepted"] / sent if sent else None), "of sent offers accepted"),
        ("kpi.completion", _pct(f["collabs_completed"] / sent if sent else None), "of sent offers completed"),
        (
            "kpi.ready",
            _pct(a["creators_ready"] / a["creators_signed_up"] if a["creators_signed_up"] else None),
            "of creators ready",
        ),
    ]
    kpi_html = "".join(
        f'<div class="kpi"><b data-metric="{k}">{v}</b><span>{_e(t)}</span></div>' for k, v, t in kpis
    )
    trust_latest = "".join(
        f'<div class="kpi"><b data-metric="trust.{_e(t)}">{_n(data.trust_latest.get(t, 0))}</b><span>{_e(t)} creators today</span></div>'
        for t in TIER_COLORS
    )
    payload = json_for_script(
        {
            "generatedAt": data.generated_at,
            "funnel": data.funnel,
            "activation": data.activation,
            "funnelWeeks": data.funnel_weeks,
            "activationWeeks": data.activation_weeks,
            "blockers": data.blockers,
            "trustLatest": data.trust_latest,
        }
    )
    # The JSON block is never executed (it is data); its hash is listed anyway, so every inline block is.
    csp = (
        f"default-src 'none'; style-src {csp_source(STYLE)}; "
        f"script-src {csp_source(SCRIPT)} {csp_source(payload)}; img-src data:; base-uri 'none'; form-action 'none'"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<title>Offer funnel and creator activation</title>
<style>{STYLE}</style></head>
<body>
<header><h1>Offer funnel and creator activation</h1>
<p>Built from the marts in schema <code>{_e(data.schema)}</code> at {
        _e(data.generated_at)
    }. Self-contained: no network resources.</p></header>
<main>
<section><div class="kpis">{kpi_html}</div></section>
<section id="offer-funnel"><h2>Offer funnel</h2>
<p class="note">Every sent offer, from being sent to a completed collaboration (fct_offer_funnel). A step counts when any
source records it: the offer's columns, its status history, analytics events or the audit trail.</p>
{funnel_chart("funnel.", FUNNEL_STEPS, f, "Offer funnel")}
</section>
<section id="offer-funnel-weekly"><h2>Offer conversion by week sent</h2>
<p class="note">Share of each week's offers responded within {
        _e(w.get("responded", "?"))
    } days, accepted within
{_e(w.get("accepted", "?"))} days and completed within {_e(w.get("completed", "?"))} days of sending
(rpt_offer_funnel_by_sent_week). Weeks whose window is still open have no point, rather than a falsely low one.</p>
{
        line_chart(
            data.funnel_weeks,
            "sent_week",
            [
                ("responded_within_window_rate", "Responded"),
                ("accepted_within_window_rate", "Accepted"),
                ("completed_within_window_rate", "Completed"),
            ],
            "Offer conversion by week",
        )
    }
<details><summary>The numbers</summary>
{
        weeks_table(
            data.funnel_weeks,
            "sent_week",
            [
                ("offers_sent", "Sent", "n"),
                ("offers_accepted", "Accepted (ever)", "n"),
                ("responded_within_window_rate", "Responded in window", "pct"),
                ("accepted_within_window_rate", "Accepted in window", "pct"),
                ("completed_within_window_rate", "Completed in window", "pct"),
                ("median_hours_to_response", "Median hours to response", "n"),
            ],
        )
    }
</details></section>
<section id="creator-activation"><h2>Creator activation</h2>
<p class="note">Creators from signup to their first completed collaboration (fct_creator_activation). Each bar counts
the creators who reached that step; hosts may send offers to creators who are not ready yet, so the steps need not shrink.</p>
{funnel_chart("activation.", ACTIVATION_STEPS, a, "Creator activation")}
</section>
<section id="creator-activation-weekly"><h2>Activation by signup week</h2>
<p class="note">Share of each signup week's creators who are ready now, got a first offer within {
        _e(w.get("first_offer", "?"))
    }
days and responded within {_e(w.get("first_response", "?"))} days (rpt_creator_activation_by_signup_week).</p>
{
        line_chart(
            data.activation_weeks,
            "signup_week",
            [
                ("ready_rate", "Ready now"),
                ("offer_within_window_rate", "First offer in window"),
                ("responded_within_window_rate", "First response in window"),
            ],
            "Activation by signup week",
        )
    }
<details><summary>The numbers</summary>
{
        weeks_table(
            data.activation_weeks,
            "signup_week",
            [
                ("creators_signed_up", "Signed up", "n"),
                ("ready_rate", "Ready", "pct"),
                ("offer_within_window_rate", "Offer in window", "pct"),
                ("responded_within_window_rate", "Response in window", "pct"),
            ],
        )
    }
</details></section>
<section id="readiness-blockers"><h2>Readiness blockers</h2>
<p class="note">How many creators each blocker holds back, with the message their dashboard shows (rpt_readiness_blockers).</p>
{blocker_table(data.blockers)}
</section>
<section id="trust-tiers"><h2>Trust tiers over time</h2>
<p class="note">Creators per trust tier at the end of each week, rebuilt from the audit trail of tier changes
(rpt_trust_tier_distribution_daily).</p>
<div class="kpis">{trust_latest}</div>
{trust_chart(data.trust_days, "Trust tiers over time")}
</section>
</main>
<script type="application/json" id="report-data">{payload}</script>
<script>{SCRIPT}</script>
</body></html>
"""


def write_report(conn: psycopg.Connection, schema: str, out: Path) -> ReportData:
    data = load(conn, schema)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(render(data), encoding="utf-8")
    tmp.replace(out)
    return data
