{#- An ORM-compatible text id (cuid-shaped: 'c' + 12 hex of epoch ms + 12 random hex), time-ordered. -#}
{% macro csinfra_new_id(salt) -%}
    ('c' || lpad(to_hex((extract(epoch from clock_timestamp()) * 1000)::bigint), 12, '0')
        || substr(md5(random()::text || {{ salt }}::text), 1, 12))
{%- endmacro %}


{#- run_query with a transaction dbt knows about (run_query itself does not begin one), so that
    adapter.commit() ends exactly the work since the last commit. -#}
{% macro csinfra_query(query) -%}
    {% call statement('csinfra_query', fetch_result=True, auto_begin=True) -%}
        {{ query }}
    {%- endcall %}
    {{ return(load_result('csinfra_query').table) }}
{%- endmacro %}
