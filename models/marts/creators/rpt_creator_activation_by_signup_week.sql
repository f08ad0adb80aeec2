{%- set w = csinfra_number_var('activation_windows_days') -%}
{%- set windows = [w.first_offer, w.first_response, w.first_completed_collab] | map('int') | list -%}
{{
    config(
        materialized=csinfra_mutable_materialization(),
        incremental_strategy='delete+insert',
        unique_key='signup_week',
        on_schema_change='fail',
        indexes=[{'columns': ['signup_week'], 'unique': True}],
        pre_hook="{{ csinfra_change_mark_begin() }}",
        post_hook=[
            "{{ csinfra_delete_vanished('signup_week',
                'select signup_week as key from ' ~ ref('fct_creator_activation'),
                'select count(*) from ' ~ ref('fct_creator_activation'),
                stored_rows='sum(creators_signed_up)', upstreams=[ref('fct_creator_activation')]) }}",
            "{{ csinfra_change_mark_commit() }}",
        ],
    )
}}
-- One row per signup week (ISO, Monday): how many creators reached each activation step, ever and
-- within a fixed window after signup, with rates and median days. A windowed count is NULL until the
-- window has elapsed for the cohort's last creator (as of var marts_as_of). Profile completion and
-- readiness have no recorded time, so they are reported as current states only.
--
-- Incremental on PostgreSQL (macros/marts/change_marks.sql): a run recomputes the weeks holding a creator whose
-- activation row changed since the last build, the weeks that lost one, and, when var marts_as_of moved, the
-- weeks whose windows it crossed, and rewrites those whose row changed; the other weeks stay as they were.
with
{% if is_incremental() %}
changed_weeks as (
    {%- set settled_from = "{group} + interval '7 days' + interval '" ~ windows | min ~ " days'" %}
    {%- set settled_to = "{group} + interval '7 days' + interval '" ~ windows | max ~ " days'" %}
    {{ csinfra_changed_groups(ref('fct_creator_activation'), 'signup_week', 'creators_signed_up',
        also_when=csinfra_as_of_crossed(settled_from, settled_to)) }}
),
{% endif %}

activation as (
    select
        signup_week,
        signed_up_at,
        is_profile_complete,
        is_ready,
        first_offer_received_at,
        first_offer_responded_at,
        first_collab_completed_at,
        days_to_first_offer,
        days_to_first_response,
        days_to_first_completed_collab
    from {{ ref('fct_creator_activation') }}
    where {{ csinfra_key_is_changed('signup_week', 'select changed_weeks.group_key from changed_weeks') }}
),

cohorts as (
    select
        signup_week,
        count(*) as creators_signed_up,
        count(*) filter (where is_profile_complete) as creators_profile_complete,
        count(*) filter (where is_ready) as creators_ready,
        count(first_offer_received_at) as creators_with_offer,
        count(first_offer_responded_at) as creators_responded,
        count(first_collab_completed_at) as creators_completed_collab,
        {{ windowed_count('first_offer_received_at', 'signed_up_at', w.first_offer, 'signup_week') }}
            as offer_within_window,
        {{ windowed_count('first_offer_responded_at', 'signed_up_at', w.first_response, 'signup_week') }}
            as responded_within_window,
        {{ windowed_count('first_collab_completed_at', 'signed_up_at', w.first_completed_collab, 'signup_week') }}
            as completed_collab_within_window,
        percentile_cont(0.5) within group (order by days_to_first_offer) as median_days_to_first_offer,
        percentile_cont(0.5) within group (order by days_to_first_response) as median_days_to_first_response,
        percentile_cont(0.5) within group (order by days_to_first_completed_collab)
            as median_days_to_first_completed_collab
    from activation
    group by signup_week
),

final as (
    select
        signup_week,
        creators_signed_up,
        creators_profile_complete,
        creators_ready,
        creators_with_offer,
        creators_responded,
        creators_completed_collab,
        offer_within_window,
        responded_within_window,
        completed_collab_within_window,
        {{ safe_ratio('creators_profile_complete', 'creators_signed_up') }} as profile_complete_rate,
        {{ safe_ratio('creators_ready', 'creators_signed_up') }} as ready_rate,
        {{ safe_ratio('offer_within_window', 'creators_signed_up') }} as offer_within_window_rate,
        {{ safe_ratio('responded_within_window', 'creators_signed_up') }} as responded_within_window_rate,
        {{ safe_ratio('completed_collab_within_window', 'creators_signed_up') }} as completed_collab_within_window_rate,
        round({{ csinfra_numeric('median_days_to_first_offer') }}, 2) as median_days_to_first_offer,
        round({{ csinfra_numeric('median_days_to_first_response') }}, 2) as median_days_to_first_response,
        round({{ csinfra_numeric('median_days_to_first_completed_collab') }}, 2)
            as median_days_to_first_completed_collab,
        {{ w.first_offer }} as offer_window_days,
        {{ w.first_response }} as response_window_days,
        {{ w.first_completed_collab }} as completed_collab_window_days
    from cohorts
)

{{ csinfra_select_rows_that_differ('final', 'signup_week') }}
