-- One row per UTC day and trust tier, from the first signup to var marts_as_of: how many creators
-- held the tier at the end of that day. Rebuilt from the audit trail of tier changes
-- (system.trust_updated): before its first recorded change a creator held that change's "from"
-- tier, after each change its "to" tier; a creator with no recorded change has held its stored
-- tier since signup (the periods: int_creator_trust_tier_periods, incremental on PostgreSQL; only this sum
-- over them, small, is rebuilt each run).
with

periods as (
    -- [valid_from, valid_to) per creator and tier (int_creator_trust_tier_periods keeps them incrementally)
    select
        trust_tier,
        valid_from,
        valid_to
    from {{ ref('int_creator_trust_tier_periods') }}
),

deltas as (
    -- +1 on the day a period starts, -1 on the day it ends (counts are end-of-day)
    select
        trust_tier,
        valid_from::date as calendar_day,
        1 as delta
    from periods
    where valid_to is null or valid_to::date > valid_from::date

    union all

    select
        trust_tier,
        valid_to::date as calendar_day,
        -1 as delta
    from periods
    where valid_to is not null and valid_to::date > valid_from::date
),

daily_deltas as (
    select
        trust_tier,
        calendar_day,
        sum(delta) as delta
    from deltas
    group by trust_tier, calendar_day
),

days as (
    select {{ csinfra_day_series('min(valid_from)::date', '(' ~ marts_as_of() ~ ')::date', 'calendar_day') }}
    from periods
),

tiers as (
    select trust_tier
    from {{ ref('trust_tiers') }}
),

spine as (
    select
        days.calendar_day,
        tiers.trust_tier
    from days
    cross join tiers
),

running as (
    select
        spine.calendar_day,
        spine.trust_tier,
        sum(coalesce(daily_deltas.delta, 0)) over (
            partition by spine.trust_tier order by spine.calendar_day rows unbounded preceding
        ) as creators
    from spine
    left join daily_deltas
        on
            spine.trust_tier = daily_deltas.trust_tier
            and spine.calendar_day = daily_deltas.calendar_day
),

final as (
    select
        calendar_day,
        trust_tier,
        creators::bigint as creators,
        {{ safe_ratio('creators', 'sum(creators) over (partition by calendar_day)') }} as share_of_creators
    from running
)

select * from final
