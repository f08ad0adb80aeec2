{%- set w = csinfra_number_var('offer_funnel_windows_days') -%}
{%- set windows = [w.viewed, w.responded, w.accepted, w.collab_started, w.completed] | map('int') | list -%}
{{
    config(
        materialized=csinfra_mutable_materialization(),
        incremental_strategy='delete+insert',
        unique_key='sent_week',
        on_schema_change='fail',
        indexes=[{'columns': ['sent_week'], 'unique': True}],
        pre_hook="{{ csinfra_change_mark_begin() }}",
        post_hook=[
            "{{ csinfra_delete_vanished('sent_week',
                'select sent_week as key from ' ~ ref('fct_offer_funnel'),
                'select count(*) from ' ~ ref('fct_offer_funnel'),
                stored_rows='sum(offers_sent)', upstreams=[ref('fct_offer_funnel')]) }}",
            "{{ csinfra_change_mark_commit() }}",
        ],
    )
}}
-- One row per cohort of offers by the (ISO, Monday) week they were sent: how many reached each step
-- ever, how many within a fixed window after sending (so that recent weeks are comparable with old
-- ones), conversion rates and median times. A windowed count is NULL until the window has elapsed
-- for the cohort's last offer (as of var marts_as_of), never an under-count.
--
-- Incremental on PostgreSQL (macros/marts/change_marks.sql): a run recomputes the weeks holding an offer whose
-- funnel row changed since the last build, the weeks that lost one, and, when var marts_as_of moved, the weeks
-- whose windows it crossed, and rewrites those whose row changed; the other weeks stay as they were.
with
{% if is_incremental() %}
changed_weeks as (
    {%- set settled_from = "{group} + interval '7 days' + interval '" ~ windows | min ~ " days'" %}
    {%- set settled_to = "{group} + interval '7 days' + interval '" ~ windows | max ~ " days'" %}
    {{ csinfra_changed_groups(ref('fct_offer_funnel'), 'sent_week', 'offers_sent',
        also_when=csinfra_as_of_crossed(settled_from, settled_to)) }}
),
{% endif %}

funnel as (
    select
        sent_week,
        sent_at,
        viewed_at,
        responded_at,
        accepted_at,
        collab_started_at,
        completed_at,
        is_viewed,
        is_responded,
        is_accepted,
        is_collab_started,
        is_completed,
        response_type,
        total_value_cents,
        hours_to_view,
        hours_to_response,
        hours_to_accept,
        hours_to_complete
    from {{ ref('fct_offer_funnel') }}
    where {{ csinfra_key_is_changed('sent_week', 'select changed_weeks.group_key from changed_weeks') }}
),

cohorts as (
    select
        sent_week,
        count(*) as offers_sent,
        count(*) filter (where is_viewed) as offers_viewed,
        count(*) filter (where is_responded) as offers_responded,
        count(*) filter (where is_accepted) as offers_accepted,
        count(*) filter (where is_collab_started) as collabs_started,
        count(*) filter (where is_completed) as collabs_completed,
        count(*) filter (where response_type = 'declined') as offers_declined,
        count(*) filter (where response_type = 'countered') as offers_countered,
        {{ windowed_count('viewed_at', 'sent_at', w.viewed, 'sent_week') }}
            as viewed_within_window,
        {{ windowed_count('responded_at', 'sent_at', w.responded, 'sent_week') }}
            as responded_within_window,
        {{ windowed_count('accepted_at', 'sent_at', w.accepted, 'sent_week') }}
            as accepted_within_window,
        {{ windowed_count('collab_started_at', 'sent_at', w.collab_started, 'sent_week') }}
            as collab_started_within_window,
        {{ windowed_count('completed_at', 'sent_at', w.completed, 'sent_week') }}
            as completed_within_window,
        sum(total_value_cents) filter (where is_accepted) as accepted_value_cents,
        percentile_cont(0.5) within group (order by hours_to_view) as median_hours_to_view,
        percentile_cont(0.5) within group (order by hours_to_response) as median_hours_to_response,
        percentile_cont(0.5) within group (order by hours_to_accept) as median_hours_to_accept,
        percentile_cont(0.5) within group (order by hours_to_complete) as median_hours_to_complete
    from funnel
    group by sent_week
),

final as (
    select
        sent_week,
        offers_sent,
        offers_viewed,
        offers_responded,
        offers_accepted,
        collabs_started,
        collabs_completed,
        offers_declined,
        offers_countered,
        viewed_within_window,
        responded_within_window,
        accepted_within_window,
        collab_started_within_window,
        completed_within_window,
        {{ safe_ratio('viewed_within_window', 'offers_sent') }} as viewed_within_window_rate,
        {{ safe_ratio('responded_within_window', 'offers_sent') }} as responded_within_window_rate,
        {{ safe_ratio('accepted_within_window', 'offers_sent') }} as accepted_within_window_rate,
        {{ safe_ratio('collab_started_within_window', 'offers_sent') }} as collab_started_within_window_rate,
        {{ safe_ratio('completed_within_window', 'offers_sent') }} as completed_within_window_rate,
        {{ safe_ratio('offers_accepted', 'offers_responded') }} as acceptance_rate_of_responses,
        coalesce(accepted_value_cents, 0) as accepted_value_cents,
        round({{ csinfra_numeric('median_hours_to_view') }}, 2) as median_hours_to_view,
        round({{ csinfra_numeric('median_hours_to_response') }}, 2) as median_hours_to_response,
        round({{ csinfra_numeric('median_hours_to_accept') }}, 2) as median_hours_to_accept,
        round({{ csinfra_numeric('median_hours_to_complete') }}, 2) as median_hours_to_complete,
        {{ w.viewed }} as viewed_window_days,
        {{ w.responded }} as responded_window_days,
        {{ w.accepted }} as accepted_window_days,
        {{ w.collab_started }} as collab_started_window_days,
        {{ w.completed }} as completed_window_days
    from cohorts
)

{{ csinfra_select_rows_that_differ('final', 'sent_week') }}
