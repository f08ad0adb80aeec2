{%- set r = csinfra_number_var('search_ranking') -%}
{{
    config(
        materialized=csinfra_mutable_materialization(),
        incremental_strategy='delete+insert',
        unique_key='creator_profile_id',
        on_schema_change='fail',
        indexes=[{'columns': ['creator_profile_id'], 'unique': True}],
        pre_hook=["{{ csinfra_set_work_mem() }}", "{{ csinfra_change_mark_begin() }}"],
        post_hook=[
            "{{ csinfra_delete_vanished('creator_profile_id',
                'select creator_profile_id as key from ' ~ ref('dim_creators'), upstreams=[ref('dim_creators')]) }}",
            "{{ csinfra_change_mark_commit() }}",
        ],
    )
}}
-- One row per creator: the per-creator components of the search-ranking signal (rpt_creator_search_ranking
-- adds what depends on every creator at once: the scale of recent views and the rank). Whether the creator is
-- searchable (active, public, READY), its recent profile views (the var search_ranking.recent_views_days days up
-- to var marts_as_of), completed collaborations, and the scores of its tier, completeness and collaborations.
--
-- Incremental on PostgreSQL (macros/marts/change_marks.sql): the recent views and completed collaborations of
-- every creator are summed each run (small: the views of the window, the completed collaborations) and compared
-- with the stored ones; a run re-derives the creators whose dim_creators row changed since the last build or whose
-- sums differ (new views, views leaving the window as marts_as_of moves, a collaboration completed or deleted),
-- rewrites those whose row changed, and deletes the creators that are gone.
with

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
{% if is_incremental() %}
changed as (
    select creator_profile_id
    from {{ ref('dim_creators') }}
    where {{ csinfra_changed_since_mark(ref('dim_creators') ~ '.xmin', upstream=ref('dim_creators')) }}

    union

    -- the creators whose sums differ from the stored ones: one aggregate of the differences (new and stored)
    select sums.creator_profile_id
    from (
        select
            creator_profile_id,
            recent_views as views_difference,
            0 as collabs_difference
        from recent_views

        union all

        select
            creator_profile_id,
            0 as views_difference,
            completed_collabs as collabs_difference
        from completed_collabs

        union all

        select
            creator_profile_id,
            -recent_views as views_difference,
            -completed_collabs as collabs_difference
        from {{ this }}
        where recent_views > 0 or completed_collabs > 0
    ) as sums
    group by sums.creator_profile_id
    having sum(sums.views_difference) <> 0 or sum(sums.collabs_difference) <> 0
),
{% endif %}

creators as (
    select
        creator_profile_id,
        is_active,
        is_public,
        trust_tier,
        readiness_state,
        profile_completeness
    from {{ ref('dim_creators') }}
    where {{ csinfra_key_is_changed('creator_profile_id', 'select changed.creator_profile_id from changed') }}
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
        {%- set capped = 'least(coalesce(completed_collabs.completed_collabs, 0), ' ~ r.completed_collabs_cap ~ ')' %}
        {{ csinfra_numeric(capped) }} / {{ r.completed_collabs_cap }} as completed_collabs_score
    from creators
    left join recent_views on creators.creator_profile_id = recent_views.creator_profile_id
    left join completed_collabs on creators.creator_profile_id = completed_collabs.creator_profile_id
    left join tier_scores on creators.trust_tier = tier_scores.trust_tier
),

weighted as (
    -- what the ranking needs per creator, computed here once per change rather than for every creator at
    -- every run (the numeric arithmetic is the ranking's main cost)
    select
        creator_profile_id,
        trust_tier,
        readiness_state,
        is_searchable,
        recent_views,
        -- ln(1 + recent views): the numerator of the log-scaled recent views
        ln(1 + recent_views) as recent_views_log,
        completed_collabs,
        trust_tier_score,
        round(completeness_score, 6) as completeness_score,
        round(completed_collabs_score, 6) as completed_collabs_score,
        -- the weighted sum of the components without the recent views (var search_ranking.weights)
        {{ csinfra_search_partial_score('trust_tier_score', 'completeness_score', 'completed_collabs_score') }}
            as partial_score
    from components
),

final as (
    select
        *,
        -- the search score when the creator has no recent views
        {{ csinfra_search_score('partial_score', '0') }} as base_search_score
    from weighted
)

{{ csinfra_select_rows_that_differ('final', 'creator_profile_id') }}
