-- The blocker report and the creator dashboards agree: each blocker holds back exactly as many
-- creators as there are dashboards showing it. Returns the blockers where they differ.
with

report as (
    select
        blocker_code,
        creators_blocked
    from {{ ref('rpt_readiness_blockers') }}
),

dashboards as (
    select
        blocker_code,
        count(*) as dashboards_showing
    from {{ ref('rpt_creator_dashboard_blockers') }}
    group by blocker_code
)

select
    coalesce(report.blocker_code, dashboards.blocker_code) as blocker_code,
    report.creators_blocked,
    dashboards.dashboards_showing
from report
full outer join dashboards on report.blocker_code = dashboards.blocker_code
where coalesce(report.creators_blocked, 0) <> coalesce(dashboards.dashboards_showing, 0)
