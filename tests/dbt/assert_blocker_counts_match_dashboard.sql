-- The blocker report, the creator dashboards and the stored profiles agree: each blocker holds back
-- exactly as many creators as there are dashboards showing it, and as there are stored profiles
-- whose `readinessBlockers` names it. The third count is taken another way on purpose: a text match
-- on the stored JSON, read from staging, with neither the JSON-expanding macro nor `dim_creators`
-- that both marts share, so a fault in that shared path cannot hide. Returns the blockers where
-- any two of the counts differ.
with

catalog as (
    select blocker_code
    from {{ ref('creator_blockers') }}
),

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
),

stored as (
    select cast(readiness_blockers as {{ dbt.type_string() }}) as blockers_text
    from {{ ref('stg_app__creator_profiles') }}
),

stored_counts as (
    select
        catalog.blocker_code,
        count(stored.blockers_text) as profiles_naming_it
    from catalog
    left join stored on stored.blockers_text like '%"' || catalog.blocker_code || '"%'
    group by catalog.blocker_code
),

compared as (
    select
        coalesce(report.blocker_code, dashboards.blocker_code, stored_counts.blocker_code) as blocker_code,
        coalesce(report.creators_blocked, 0) as creators_blocked,
        coalesce(dashboards.dashboards_showing, 0) as dashboards_showing,
        coalesce(stored_counts.profiles_naming_it, 0) as profiles_naming_it
    from report
    full outer join dashboards on report.blocker_code = dashboards.blocker_code
    full outer join stored_counts
        on coalesce(report.blocker_code, dashboards.blocker_code) = stored_counts.blocker_code
)

select *
from compared
where creators_blocked <> dashboards_showing
    or creators_blocked <> profiles_naming_it
