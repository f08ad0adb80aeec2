{%- set r = csinfra_number_var('search_ranking') -%}
-- One row per creator: the search-ranking signal. A weighted sum (var search_ranking) of the trust
-- tier's score, profile completeness, recent profile views (log-scaled against the most viewed
-- creator) and completed collaborations (capped); each component is in [0, 1], and so is the score.
-- Only active, public, READY creators are searchable and ranked (1 = first); the rest have a NULL rank.
with

creators as (
    select
        creator_profile_id,
        is_active,
        is_public,
        trust_tier,
        readiness_state,
        profile_completeness
    from {{ ref('dim_creators') }}
),

recent_views as (
    select
        creator_profile_id,
        sum(profile_views) as recent_views
    from {{ ref('int_creator_profile_views_daily') }}
    where
        viewed_on > ({{ marts_as_of() }})::date - {{ r.recent_views_days }}
        and viewed_on <= ({{ marts_as_of() }})::date
    group by creator_profile_id
),

completed_collabs as (
    select
        collaborations.creator_profile_id,
        count(*) as completed_collabs
    from {{ ref('stg_app__collaborations') }} as collaborations
    inner join {{ ref('collaboration_statuses') }} as statuses
        on collaborations.status = statuses.collaboration_status
    where statuses.is_completed
    group by collaborations.creator_profile_id
),

most_viewed as (
    select max(recent_views) as recent_views
    from recent_views
),

tier_scores as (
    -- each tier's score in the signal (seeds/trust_tiers.csv)
    select
        trust_tier,
        {{ csinfra_numeric('search_score') }} as tier_score
    from {{ ref('trust_tiers') }}
),

components as (
    select
        creators.creator_profile_id,
        creators.trust_tier,
        creators.readiness_state,
        creators.is_active and creators.is_public and creators.readiness_state = 'READY' as is_searchable,
        coalesce(recent_views.recent_views, 0) as recent_views,
        coalesce(completed_collabs.completed_collabs, 0) as completed_collabs,
        coalesce(tier_scores.tier_score, 0) as trust_tier_score,
        {{ csinfra_numeric('creators.profile_completeness') }} as completeness_score,
        coalesce(ln(1 + recent_views.recent_views) / nullif(ln(1 + most_viewed.recent_views), 0), 0)
            as recent_views_score,
        {%- set capped = 'least(coalesce(completed_collabs.completed_collabs, 0), ' ~ r.completed_collabs_cap ~ ')' %}
        {{ csinfra_numeric(capped) }} / {{ r.completed_collabs_cap }} as completed_collabs_score
    from creators
    cross join most_viewed
    left join recent_views on creators.creator_profile_id = recent_views.creator_profile_id
    left join completed_collabs on creators.creator_profile_id = completed_collabs.creator_profile_id
    left join tier_scores on creators.trust_tier = tier_scores.trust_tier
),

scored as (
    select
        components.*,
        round((
            {{ r.weights.trust_tier }} * components.trust_tier_score
            + {{ r.weights.completeness }} * components.completeness_score
            + {{ r.weights.recent_views }} * components.recent_views_score
            + {{ r.weights.completed_collabs }} * components.completed_collabs_score
        ) / {{ r.weights.values() | sum }}, 6) as search_score
    from components
),

ranked as (
    -- the rank among searchable creators only: the sort is as big as the searchable set
    select
        creator_profile_id,
        rank() over (order by search_score desc, creator_profile_id asc) as search_rank
    from scored
    where is_searchable
),

final as (
    select
        scored.creator_profile_id,
        scored.trust_tier,
        scored.readiness_state,
        scored.is_searchable,
        scored.recent_views,
        scored.completed_collabs,
        scored.trust_tier_score,
        round(scored.completeness_score, 6) as completeness_score,
        round({{ csinfra_numeric('scored.recent_views_score') }}, 6) as recent_views_score,
        round(scored.completed_collabs_score, 6) as completed_collabs_score,
        scored.search_score,
        ranked.search_rank
    from scored
    left join ranked on scored.creator_profile_id = ranked.creator_profile_id
)

select * from final
