"""`csinfra report`: one self-contained HTML file built from the marts.

No network resource of any kind: the charts are inline SVG, the style and the small script are inline,
and the numbers shown are also embedded as JSON (`<script type="application/json" id="report-data">`)
so that a machine can read what a person sees. Every number shown carries `data-metric` (and, in a
table, `data-key`), which the browser test reads back from the rendered DOM.

The Content-Security-Policy allows no 'unsafe-inline': it lists the sha256 of each inline <script> and
<style> element's exact text, and the page has no `style="…"` or `on…="…"` attributes (hashes do not
cover those), so sizes are SVG attributes.

Python loads the data and computes what is drawn (coordinates, scales, formatted numbers); the markup
is in the Jinja2 templates of `templates/` (the page, its chart macros, its style and script), rendered
with autoescaping on and undefined names as errors.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from ..errors import CsinfraError
from . import marts_compare
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
    source: str = "PostgreSQL"  # the engine that built the marts: PostgreSQL or Spark


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


# The report marts and the columns the report reads of each (all small: one row per week, blocker or day × tier).
REPORT_COLUMNS = {
    "rpt_offer_funnel_by_sent_week": (
        "sent_week",
        *(c for c, _ in FUNNEL_STEPS),
        "responded_within_window_rate",
        "accepted_within_window_rate",
        "completed_within_window_rate",
        "median_hours_to_response",
        "responded_window_days",
        "accepted_window_days",
        "completed_window_days",
    ),
    "rpt_creator_activation_by_signup_week": (
        "signup_week",
        *(c for c, _ in ACTIVATION_STEPS),
        "ready_rate",
        "offer_within_window_rate",
        "responded_within_window_rate",
        "completed_collab_within_window_rate",
        "offer_window_days",
        "response_window_days",
        "completed_collab_window_days",
    ),
    "rpt_readiness_blockers": (
        "display_order",
        "blocker_code",
        "message",
        "creators_blocked",
        "creators_blocked_only_by_this",
        "share_of_creators",
        "total_creators",
    ),
    "rpt_trust_tier_distribution_daily": ("calendar_day", "trust_tier", "creators"),
}
# A reader: (mart) -> its rows, each a dict of the mart's REPORT_COLUMNS.
MartReader = Callable[[str], list[dict[str, Any]]]


def postgres_reader(conn: psycopg.Connection, schema: str) -> MartReader:
    """Reads the report marts from PostgreSQL (dbt's schema)."""

    def read(mart: str) -> list[dict[str, Any]]:
        query = sql.SQL("select {} from {}").format(
            sql.SQL(", ").join(map(sql.Identifier, REPORT_COLUMNS[mart])), sql.Identifier(schema, mart)
        )
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query)
            return list(cur.fetchall())

    return read


def warehouse_reader(warehouse: Path, schema: str) -> MartReader:
    """Reads the report marts from the Parquet files of Spark's warehouse (`csinfra marts --engine spark`), with
    pyarrow, as marts_compare does: no Spark session."""

    def read(mart: str) -> list[dict[str, Any]]:
        _, rows = marts_compare.warehouse_rows(warehouse, schema, mart)
        return [{c: row[c] for c in REPORT_COLUMNS[mart]} for row in rows]

    return read


def _plain_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in rows]


def _totals(rows: list[dict[str, Any]], steps: tuple[tuple[str, str], ...]) -> dict[str, int]:
    """Each step's column summed over all cohorts of a report mart (NULL counts as 0)."""
    return {c: sum(int(r[c] or 0) for r in rows) for c, _ in steps}


def _recent_weeks(rows: list[dict[str, Any]], week: str, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """The last WEEKS_SHOWN cohorts of a report mart, oldest first."""
    recent = sorted(rows, key=lambda r: r[week])[-WEEKS_SHOWN:]
    return _plain_rows([{c: r[c] for c in (week, *columns)} for r in recent])


def load(conn: psycopg.Connection, schema: str) -> ReportData:
    """Read everything the report shows from the marts in `schema` (dbt's schema) on PostgreSQL."""
    missing = [m for m in MART_MODELS if not table_exists(conn, schema, m)]
    if missing:
        raise CsinfraError(
            f"marts missing in schema {schema}: {', '.join(missing)} (run `csinfra marts` first)"
        )
    return load_from(postgres_reader(conn, schema), schema, "PostgreSQL")


def load_from_warehouse(warehouse: Path, schema: str) -> ReportData:
    """Read everything the report shows from the marts Spark built (`csinfra marts --engine spark`) in its
    warehouse directory."""
    missing = [
        m for m in MART_MODELS if not marts_compare.warehouse_table_path(warehouse, schema, m).is_dir()
    ]
    if missing:
        raise CsinfraError(
            f"marts missing in the Spark warehouse {warehouse} (database {schema}): {', '.join(missing)} "
            "(run `csinfra marts --engine spark` first)"
        )
    return load_from(warehouse_reader(warehouse, schema), schema, "Spark")


def load_from(read: MartReader, schema: str, source: str) -> ReportData:
    """Everything the report shows, from the report marts as `read` returns them (either engine)."""
    funnel_rows = read("rpt_offer_funnel_by_sent_week")
    funnel = _totals(funnel_rows, FUNNEL_STEPS)
    funnel_weeks = _recent_weeks(
        funnel_rows,
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
    activation_rows = read("rpt_creator_activation_by_signup_week")
    activation = _totals(activation_rows, ACTIVATION_STEPS)
    activation_weeks = _recent_weeks(
        activation_rows,
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
    blockers = _plain_rows(sorted(read("rpt_readiness_blockers"), key=lambda r: r["display_order"]))
    trust_days = _plain_rows(
        sorted(read("rpt_trust_tier_distribution_daily"), key=lambda r: (r["calendar_day"], r["trust_tier"]))
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
        funnel=funnel,
        funnel_weeks=funnel_weeks,
        activation=activation,
        activation_weeks=activation_weeks,
        blockers=blockers,
        trust_days=trust_days,
        trust_latest=trust_latest,
        windows=windows,
        source=source,
    )


# -- rendering -------------------------------------------------------------------------------------------
# The functions below return plain values (coordinates and numbers already formatted as shown) for the
# templates; none returns markup, and the templates escape every value they show.
def _n(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _f(value: float) -> str:
    """A coordinate as the SVG shows it (one decimal)."""
    return f"{value:.1f}"


def csp_sha256(text: str) -> str:
    """The base64 SHA-256 of an inline element's exact text, as the browser hashes it (UTF-8); the CSP
    lists it as `'sha256-…'`."""
    return base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


# Inside <script>, the HTML tokenizer reacts to `</script`, `<!--` and `<script`; JSON escapes make none
# of them (nor `&`, `>`, or the line separators older JavaScript rejects) appear, and parse back unchanged.
_SCRIPT_SAFE = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def json_for_script(value: Any) -> str:
    """`value` as JSON that is safe as the text of a <script type="application/json"> element."""
    return json.dumps(value, default=str).translate(_SCRIPT_SAFE)


@functools.cache
def _environment() -> jinja2.Environment:
    """The templates' environment, made on first use (importing this module reads no file)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("creatorstays_infra.ops", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["script_json"] = json_for_script
    env.filters["csp_sha256"] = csp_sha256
    return env


def funnel_chart(
    metric_prefix: str, steps: tuple[tuple[str, str], ...], values: dict[str, int], title: str
) -> dict[str, Any]:
    """Horizontal bars, one per step, with the count and the share of the first step."""
    width, bar_h, gap, label_w = 760, 30, 12, 210
    top = values[steps[0][0]] or 0
    bars = []
    for i, (key, label) in enumerate(steps):
        v = values[key] or 0
        w = 0 if top == 0 else max(2, (width - label_w - 170) * v / top)
        y = 5 + i * (bar_h + gap)
        bars.append(
            {
                "label": label,
                "label_x": label_w - 10,
                "text_y": _f(y + bar_h * 0.68),
                "x": label_w,
                "y": y,
                "width": _f(w),
                "height": bar_h,
                "value": _n(v),
                "value_x": _f(label_w + w + 8),
                "metric": metric_prefix + key,
                "share": _pct(None if top == 0 else v / top),
                "share_x": _f(label_w + w + 98),
            }
        )
    return {"title": title, "width": width, "height": len(steps) * (bar_h + gap) + 10, "bars": bars}


def line_chart(
    rows: list[dict[str, Any]], x_key: str, series: list[tuple[str, str]], title: str
) -> dict[str, Any]:
    """Rates (0..1) per cohort week as lines; NULL points (windows still open) are gaps."""
    width, height, left, right, top, bottom = 760, 260, 50, 20, 15, 45
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(rows)

    def x_at(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    ticks = []
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        y = top + plot_h * (1 - tick)
        ticks.append({"y": _f(y), "label_y": _f(y + 4), "label": f"{tick:.0%}"})
    x_labels = [
        {"x": _f(x_at(i)), "text": str(row[x_key])[5:]}
        for i, row in enumerate(rows)
        if i % 4 == 0 or (i == n - 1 and i % 4 >= 2)
    ]
    lines = []
    for s_i, (key, label) in enumerate(series):
        points: list[dict[str, str]] = []
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
            segment.append(f"{_f(x_at(i))},{_f(y)}")
            points.append({"x": _f(x_at(i)), "y": _f(y), "week": str(row[x_key]), "value": _pct(float(v))})
        if segment:
            segments.append(segment)
        lx = left + 10 + s_i * 240
        lines.append(
            {
                "label": label,
                "color": LINE_COLORS[s_i % len(LINE_COLORS)],
                "points": points,
                "polylines": [" ".join(seg) for seg in segments],
                "legend_x": lx,
                "legend_text_x": lx + 18,
            }
        )
    return {
        "title": title,
        "width": width,
        "height": height,
        "grid_x1": left,
        "grid_x2": width - right,
        "tick_label_x": left - 6,
        "ticks": ticks,
        "x_label_y": height - bottom + 16,
        "x_labels": x_labels,
        "series": lines,
        "legend_y": height - 14,
        "legend_text_y": height - 9,
    }


def trust_chart(days: list[dict[str, Any]], title: str) -> dict[str, Any] | None:
    """Stacked areas of creators per trust tier over time (one point per week and the last day); None when
    there is no day at all."""
    by_day: dict[str, dict[str, int]] = {}
    for r in days:
        by_day.setdefault(r["calendar_day"], {})[r["trust_tier"]] = int(r["creators"])
    all_days = sorted(by_day)
    if not all_days:
        return None
    picked = [d for i, d in enumerate(all_days) if i % 7 == 0 or i == len(all_days) - 1]
    width, height, left, right, top, bottom = 760, 280, 70, 20, 15, 45
    plot_w, plot_h = width - left - right, height - top - bottom
    y_max = max(sum(by_day[d].values()) for d in picked) or 1
    n = len(picked)

    def x_at(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    ticks = []
    for tick in (0, 0.5, 1.0):
        y = top + plot_h * (1 - tick)
        ticks.append({"y": _f(y), "label_y": _f(y + 4), "label": _n(y_max * tick)})
    areas = []
    base = [0.0] * n
    for tier, color in TIER_COLORS.items():
        upper = [base[i] + by_day[d].get(tier, 0) for i, d in enumerate(picked)]
        pts_up = [f"{_f(x_at(i))},{_f(top + plot_h * (1 - upper[i] / y_max))}" for i in range(n)]
        pts_down = [f"{_f(x_at(i))},{_f(top + plot_h * (1 - base[i] / y_max))}" for i in reversed(range(n))]
        areas.append({"tier": tier, "color": color, "points": " ".join(pts_up + pts_down)})
        base = upper
    step = max(1, -(-n // 6))  # at most about seven labels
    x_labels = [
        {"x": _f(x_at(i)), "anchor": "end" if i == n - 1 else ("start" if i == 0 else "middle"), "text": d}
        for i, d in enumerate(picked)
        if i % step == 0 or (i == n - 1 and i % step >= step // 2)
    ]
    legend = [
        {"tier": tier, "color": color, "x": left + 10 + t_i * 140, "text_x": left + 10 + t_i * 140 + 18}
        for t_i, (tier, color) in enumerate(TIER_COLORS.items())
    ]
    return {
        "title": title,
        "width": width,
        "height": height,
        "grid_x1": left,
        "grid_x2": width - right,
        "tick_label_x": left - 6,
        "ticks": ticks,
        "areas": areas,
        "x_label_y": height - bottom + 16,
        "x_labels": x_labels,
        "legend": legend,
        "legend_y": height - 16,
        "legend_text_y": height - 9,
    }


def blocker_table(blockers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The blocker table's rows, each with its bar's width as a share (%) of the largest count."""
    top = max((int(b["creators_blocked"]) for b in blockers), default=0) or 1
    return [
        {
            "display_order": b["display_order"],
            "code": b["blocker_code"],
            "message": b["message"],
            "blocked": _n(b["creators_blocked"]),
            "blocked_only_by_this": _n(b["creators_blocked_only_by_this"]),
            "share": _pct(b["share_of_creators"]),
            "bar_width": _f(100 * int(b["creators_blocked"]) / top),
        }
        for b in blockers
    ]


def weeks_table(
    rows: list[dict[str, Any]], x_key: str, columns: list[tuple[str, str, str]]
) -> dict[str, Any]:
    """A table of cohort weeks: `columns` are (key, heading, kind), kind "pct", "n" or anything else (as is)."""

    def cell(value: Any, kind: str) -> str:
        return _pct(value) if kind == "pct" else (_n(value) if kind == "n" else str(value))

    return {
        "x_key": x_key,
        "headings": [label for _, label, _ in columns],
        "rows": [
            {
                "key": str(r[x_key]),
                "cells": [{"column": key, "text": cell(r.get(key), kind)} for key, _, kind in columns],
            }
            for r in rows
        ],
    }


def render(data: ReportData) -> str:
    f, a = data.funnel, data.activation
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
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            schema=data.schema,
            source=data.source,
            generated_at=data.generated_at,
            windows=data.windows,
            kpis=[{"metric": m, "value": v, "text": t} for m, v, t in kpis],
            trust_latest=[{"tier": t, "value": _n(data.trust_latest.get(t, 0))} for t in TIER_COLORS],
            offer_funnel=funnel_chart("funnel.", FUNNEL_STEPS, f, "Offer funnel"),
            offer_weeks_chart=line_chart(
                data.funnel_weeks,
                "sent_week",
                [
                    ("responded_within_window_rate", "Responded"),
                    ("accepted_within_window_rate", "Accepted"),
                    ("completed_within_window_rate", "Completed"),
                ],
                "Offer conversion by week",
            ),
            offer_weeks_table=weeks_table(
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
            ),
            activation=funnel_chart("activation.", ACTIVATION_STEPS, a, "Creator activation"),
            activation_weeks_chart=line_chart(
                data.activation_weeks,
                "signup_week",
                [
                    ("ready_rate", "Ready now"),
                    ("offer_within_window_rate", "First offer in window"),
                    ("responded_within_window_rate", "First response in window"),
                ],
                "Activation by signup week",
            ),
            activation_weeks_table=weeks_table(
                data.activation_weeks,
                "signup_week",
                [
                    ("creators_signed_up", "Signed up", "n"),
                    ("ready_rate", "Ready", "pct"),
                    ("offer_within_window_rate", "Offer in window", "pct"),
                    ("responded_within_window_rate", "Response in window", "pct"),
                ],
            ),
            blockers=blocker_table(data.blockers),
            trust=trust_chart(data.trust_days, "Trust tiers over time"),
            # embedded as JSON, so that a machine can read what a person sees
            report_data={
                "generatedAt": data.generated_at,
                "funnel": data.funnel,
                "activation": data.activation,
                "funnelWeeks": data.funnel_weeks,
                "activationWeeks": data.activation_weeks,
                "blockers": data.blockers,
                "trustLatest": data.trust_latest,
            },
        )
    )


def write_report(conn: psycopg.Connection, schema: str, out: Path) -> ReportData:
    """The report from the marts on PostgreSQL."""
    return write(load(conn, schema), out)


def write(data: ReportData, out: Path) -> ReportData:
    """Render `data` into `out` (written aside, then moved in)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(render(data), encoding="utf-8")
    tmp.replace(out)
    return data
