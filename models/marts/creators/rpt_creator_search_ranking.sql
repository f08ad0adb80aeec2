{%- set r = csinfra_number_var('search_ranking') -%}
-- One row per creator: the search-ranking signal. A weighted sum (var search_ranking) of the trust
-- tier's score, profile completeness, recent profile views (log-scaled against the most viewed
-- creator) and completed collaborations (capped); each component is in [0, 1], and so is the score.
-- Only active, public, READY creators are searchable and ranked (1 = first); the rest have a NULL rank.
-- The per-creator components are kept incrementally (int_creator_search_components); this table adds the scale
-- of recent views and the rank, which depend on every creator at once, and is rebuilt each run.
with

components as (
    -- the per-creator components (int_creator_search_components, incremental on PostgreSQL)
    select
        creator_profile_id,
        trust_tier,
        readiness_state,
        is_searchable,
        recent_views,
        recent_views_log,
        completed_collabs,
        trust_tier_score,
        completeness_score,
        completed_collabs_score
    from {{ ref('int_creator_search_components') }}
),

most_viewed as (
    select max(recent_views) as recent_views
    from components
),

scaled as (
    -- recent views log-scaled against the most viewed creator: the one component that depends on everyone
    select
        components.*,
        coalesce(components.recent_views_log / nullif(ln(1 + most_viewed.recent_views), 0), 0)
            as recent_views_score
    from components
    cross join most_viewed
),

scored as (
    select
        scaled.*,
        round((
            {{ r.weights.trust_tier }} * scaled.trust_tier_score
            + {{ r.weights.completeness }} * scaled.completeness_score
            + {{ r.weights.recent_views }} * scaled.recent_views_score
            + {{ r.weights.completed_collabs }} * scaled.completed_collabs_score
        ) / {{ r.weights.values() | sum }}, 6) as search_score
    from scaled
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
