-- The trust-tier history rebuilt from the audit trail ends where the stored tiers are: on the last
-- day of rpt_trust_tier_distribution_daily each tier holds as many creators as creator_profiles
-- stores. A gap means a tier change that was not audited (or an audit row that lies).
-- Only meaningful when the marts are as of now (var marts_as_of unset), so it is skipped otherwise.
{{ config(enabled=var('marts_as_of', none) is none) }}
with

last_day as (
    select
        trust_tier,
        creators
    from {{ ref('rpt_trust_tier_distribution_daily') }}
    where calendar_day = (select max(calendar_day) from {{ ref('rpt_trust_tier_distribution_daily') }})
),

stored as (
    select
        trust_tier,
        count(*) as creators
    from {{ ref('stg_app__creator_profiles') }}
    group by trust_tier
)

select
    coalesce(last_day.trust_tier, stored.trust_tier) as trust_tier,
    last_day.creators as rebuilt_from_audit,
    stored.creators as stored
from last_day
full outer join stored on last_day.trust_tier = stored.trust_tier
where coalesce(last_day.creators, 0) <> coalesce(stored.creators, 0)
