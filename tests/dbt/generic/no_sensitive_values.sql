{#- Fails for every value of a textual column (text, varchar, json, jsonb, inet, arrays; cast to text) that
    looks like an e-mail address, an IP address or an access token. The complement of
    column_names_exclude: that one stops a column named like a secret, this one a secret copied into
    a column with an innocent name (or into a JSON document). Reports at most 100 offending values. -#}
{% test no_sensitive_values(model, patterns=none) %}

{%- set default_patterns = {
    'email address': '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}',
    'IPv4 address': '(^|[^0-9.])([0-9]{1,3}\\.){3}[0-9]{1,3}([^0-9.]|$)',
    'IPv6 address': '([0-9A-Fa-f]{1,4}:){4,7}[0-9A-Fa-f]{1,4}',
    'access token': '(IGQV|IGAA|EAA[A-Za-z0-9]|act\\.|rft\\.)[A-Za-z0-9_.-]{16,}',
} -%}
{%- set checks = patterns if patterns is not none else default_patterns -%}
{%- set textual = [] -%}
{%- if execute -%}
    {%- for column in adapter.get_columns_in_relation(model) -%}
        {%- set t = column.data_type | lower -%}
        {#- PostgreSQL's textual types, and Spark's (string, arrays, maps, structs) -#}
        {%- if 'char' in t or t in ('text', 'json', 'jsonb', 'inet', 'cidr', 'string') or t.endswith('[]') or t == 'array'
              or t.startswith(('array<', 'map<', 'struct<')) -%}
            {%- do textual.append(column.name) -%}
        {%- endif -%}
    {%- endfor -%}
{%- endif %}

{%- if textual | length == 0 %}
select {{ csinfra_as_text('null') }} as column_name, {{ csinfra_as_text('null') }} as kind, {{ csinfra_as_text('null') }} as sample where false
{%- else %}
select *
from (
    {%- for name in textual %}
    {%- set outer_loop = loop %}
    {%- for kind, pattern in checks.items() %}
    select
        {{ csinfra_quote(name) }} as column_name,
        {{ csinfra_quote(kind) }} as kind,
        left({{ csinfra_as_text(csinfra_ident(name)) }}, 200) as sample
    from {{ model }}
    where {{ csinfra_regex_matches(csinfra_as_text(csinfra_ident(name)), pattern) }}
    {{ 'union all' if not (loop.last and outer_loop.last) }}
    {%- endfor %}
    {%- endfor %}
) as offending
limit 100
{%- endif %}

{% endtest %}
