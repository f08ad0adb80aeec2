-- One row per creator: the search-ranking signal. A weighted sum (var search_ranking) of the trust
-- tier's score, profile completeness, recent profile views (log-scaled against the most viewed
-- creator) and completed collaborations (capped); each component is in [0, 1], and so is the score.
-- Only active, public, READY creators are searchable and ranked (1 = first); the rest have a NULL rank.
-- The per-creator components are kept incrementally (int_creator_search_components); this table adds the scale
-- of recent views and the rank, which depend on every creator at once, and is rebuilt each run.
with

most_viewed as (
    select ln(1 + max(recent_views)) as recent_views_log
    from {{ ref('int_creator_search_components') }}
),

scored as (
    -- the per-creator components (int_creator_search_components, incremental on PostgreSQL), recent views
    -- log-scaled against the most viewed creator, the one component that depends on everyone, and the score:
    -- weighted sum / sum of the weights, the rest of it kept per creator. Read straight from the table (not through
    -- a CTE of it, which PostgreSQL would copy whole, 1,000,000 rows, before this scan)
    select
        components.creator_profile_id,
        components.trust_tier,
        components.readiness_state,
        components.is_searchable,
        components.recent_views,
        components.completed_collabs,
        components.trust_tier_score,
        components.completeness_score,
        components.completed_collabs_score,
        case
            when components.recent_views_log = 0 then 0
            else coalesce(components.recent_views_log / nullif(most_viewed.recent_views_log, 0), 0)
        end as recent_views_score,
        case
            when components.recent_views_log = 0 then components.base_search_score
            else {{ csinfra_search_score(
                'components.partial_score',
                'coalesce(components.recent_views_log / nullif(most_viewed.recent_views_log, 0), 0)'
            ) }}
        end as search_score
    from {{ ref('int_creator_search_components') }} as components
    cross join most_viewed
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
        scored.completeness_score,
        round({{ csinfra_numeric('scored.recent_views_score') }}, 6) as recent_views_score,
        scored.completed_collabs_score,
        scored.search_score,
        ranked.search_rank
    from scored
    left join ranked on scored.creator_profile_id = ranked.creator_profile_id
)

select * from final
