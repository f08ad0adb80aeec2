{#- Creator rules (docs/rules.md §4), as SQL expressions over the columns named in `c`:
      c.display_name, c.handle, c.bio, c.niches, c.deliverables, c.minimum_flat_fee_cents,
      c.avatar_url, c.instagram_connected, c.tiktok_connected, c.first_collab_completed_at
    Used by int_creators_derived (batch and online paths alike). -#}

{% macro creator_has_oauth(c) -%}
    (coalesce({{ c.instagram_connected }}, false) or coalesce({{ c.tiktok_connected }}, false))
{%- endmacro %}


{#- check name -> SQL boolean "this part of the profile is filled". When `c.filled` maps each check name to
    a column already holding it (computed once per row, see int_creators_derived), those columns. -#}
{% macro creator_filled_checks(c) %}
    {%- if 'filled' in c -%}
        {{ return(c.filled) }}
    {%- endif -%}
    {{ return({
        'display_name': 'not ' ~ is_blank(c.display_name),
        'handle': 'not ' ~ is_blank(c.handle),
        'bio': 'not ' ~ is_blank(c.bio),
        'niches': 'not ' ~ is_empty_list(c.niches),
        'deliverables': 'not ' ~ is_empty_list(c.deliverables),
        'minimum_rate': 'coalesce(' ~ c.minimum_flat_fee_cents ~ ' > 0, false)',
        'avatar': 'coalesce(' ~ c.avatar_url ~ " <> '', false)",
        'oauth': creator_has_oauth(c),
    }) }}
{% endmacro %}


{#- JSON array of blocker codes, in the configured order. -#}
{% macro creator_blockers(c) -%}
    {%- set filled = creator_filled_checks(c) -%}
    to_jsonb(array_remove(array[
        {%- for b in csinfra_creator_blockers() %}
        case when not ({{ filled[b.check] }}) then {{ csinfra_quote(b.code) }} end{{ ',' if not loop.last }}
        {%- endfor %}
    ]::text[], null))
{%- endmacro %}


{#- Filled weight / total weight, capped at 1.0. -#}
{% macro creator_completeness(c) -%}
    {%- set filled = creator_filled_checks(c) -%}
    {%- set weights = csinfra_rules().creator.completeness_weights -%}
    {%- set total = weights.values() | sum -%}
    {%- if total <= 0 -%}
    0::double precision
    {%- else -%}
    least(1.0, (
        {%- for check, weight in weights.items() %}
        case when {{ filled[check] }} then {{ weight }} else 0 end{{ ' +' if not loop.last }}
        {%- endfor %}
    ) / {{ total }}::numeric)::double precision
    {%- endif -%}
{%- endmacro %}


{#- READY / PENDING_OAUTH / INCOMPLETE -#}
{% macro creator_readiness_state(c) -%}
    {%- set filled = creator_filled_checks(c) -%}
    {%- set profile_checks = [] -%}
    {%- for b in csinfra_creator_blockers() if not b.is_oauth_blocker -%}
        {%- do profile_checks.append('(' ~ filled[b.check] ~ ')') -%}
    {%- endfor -%}
    case
        when {{ profile_checks | join(' and ') }} and {{ creator_has_oauth(c) }} then 'READY'
        when {{ profile_checks | join(' and ') }} then 'PENDING_OAUTH'
        else 'INCOMPLETE'
    end
{%- endmacro %}


{#- PROVEN / VERIFIED / NEW; c.first_collab_completed_at is the merged (stored or derived) value. -#}
{% macro creator_trust_tier(c) -%}
    case
        when {{ c.first_collab_completed_at }} is not null then 'PROVEN'
        when {{ creator_has_oauth(c) }}
            and {{ creator_completeness(c) }} >= {{ csinfra_rules().creator.verified_min_completeness }} then 'VERIFIED'
        else 'NEW'
    end
{%- endmacro %}
