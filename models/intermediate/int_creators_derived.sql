-- Every creator's Phase 1 fields derived by the rules (docs/rules.md §4), next to the stored values.
-- Columns `x` are derived, `stored_x` are what the application table holds now; is_drifted says
-- whether they disagree. The write-back, the online library and the verification all read this.
{%- set c = {
    'display_name': 'creators.display_name',
    'handle': 'creators.handle',
    'bio': 'creators.bio',
    'niches': 'creators.niches',
    'deliverables': 'creators.deliverables',
    'minimum_flat_fee_cents': 'creators.minimum_flat_fee_cents',
    'avatar_url': 'creators.avatar_url',
    'instagram_connected': 'creators.instagram_connected',
    'tiktok_connected': 'creators.tiktok_connected',
    'first_collab_completed_at': 'creators.first_collab_completed_at',
} %}
with

profiles as (
    select * from {{ ref('stg_app__creator_profiles') }}
),

lifecycle as (
    select * from {{ ref('int_creator_lifecycle') }}
),

creators as (
    -- a stored first-time is never cleared and never moved later: the earlier of stored and derived
    select
        profiles.creator_profile_id,
        profiles.row_version,
        profiles.display_name,
        profiles.handle,
        profiles.bio,
        profiles.niches,
        profiles.deliverables,
        profiles.minimum_flat_fee_cents,
        profiles.avatar_url,
        profiles.instagram_connected,
        profiles.tiktok_connected,
        profiles.trust_tier as stored_trust_tier,
        profiles.readiness_state as stored_readiness_state,
        profiles.readiness_blockers as stored_readiness_blockers,
        profiles.profile_completeness as stored_profile_completeness,
        profiles.first_offer_received_at as stored_first_offer_received_at,
        profiles.first_offer_responded_at as stored_first_offer_responded_at,
        profiles.first_collab_completed_at as stored_first_collab_completed_at,
        least(profiles.first_offer_received_at, lifecycle.first_offer_received_at) as first_offer_received_at,
        least(profiles.first_offer_responded_at, lifecycle.first_offer_responded_at) as first_offer_responded_at,
        least(profiles.first_collab_completed_at, lifecycle.first_collab_completed_at) as first_collab_completed_at
    from profiles
    left join lifecycle on profiles.creator_profile_id = lifecycle.creator_profile_id
),

{%- set checks = creator_filled_checks(c) %}
{%- set filled = {} %}
{%- for name in checks %}{% do filled.update({name: 'filled.filled_' ~ name}) %}{% endfor %}
{%- set c_filled = dict(c, filled=filled) %}

derived as (
    select
        creators.*,
        {{ creator_trust_tier(c_filled) }} as trust_tier,
        {{ creator_readiness_state(c_filled) }} as readiness_state,
        {{ creator_blockers(c_filled) }} as readiness_blockers,
        {{ creator_completeness(c_filled) }} as profile_completeness
    from creators
    -- each part of the profile checked once per creator: the rules read every check two to four times.
    -- A lateral subquery kept whole by OFFSET 0 (so the planner does not copy its expressions into every
    -- rule above) rather than a fenced CTE, so a filter on one creator (the online path) still reaches
    -- the application's index
    cross join lateral (  -- noqa: ST05
        select
        {%- for name, expr in checks.items() %}
            {{ expr }} as filled_{{ name }}{{ ',' if not loop.last }}  -- noqa: LT02
        {%- endfor %}
        limit all offset 0  -- noqa: AM09
    ) as filled
),

{%- set outputs = [
    'trust_tier', 'readiness_state', 'readiness_blockers', 'profile_completeness',
    'first_offer_received_at', 'first_offer_responded_at', 'first_collab_completed_at',
] %}

final as (
    select
        derived.*,
        {{ columns_differ(outputs, 'derived.stored_', 'derived.') }} as is_drifted
    from derived
)

select * from final
