{#-
  Every value a macro puts into SQL goes through one of these, where it enters:
    csinfra_quote(value)            a string literal: ' doubled; a value with a backslash is written E'…' with \ doubled,
                                    so it reads the same whatever standard_conforming_strings says; NUL is refused
    csinfra_ident(name)             an identifier: "…" with embedded " doubled (dbt's adapter.quote does not double)
    csinfra_schema_name(value, what)   a schema name we accept: a plain identifier (letters, digits, _ and $,
                                    starting with a letter or _, at most 63 bytes), else a compiler error naming `what`
    csinfra_duration(value, what)   a PostgreSQL duration setting (lock_timeout, statement_timeout): 100ms, 5s, 1min
    csinfra_interval(value, what)   an interval: '3 days', '12 hours', '1 week 2 days'
    csinfra_number(value, what, min, max, integer)   a finite number within [min, max]
    csinfra_checked_numbers(value, what)   every leaf of a mapping/list is a finite number (window and ranking vars)
  A refused value stops the run before any SQL is sent, with a message naming the var or setting.
-#}

{% macro csinfra_quote(value) -%}
    {{ return(adapter.dispatch('csinfra_quote', 'creatorstays_infra')(value)) }}
{%- endmacro %}

{% macro default__csinfra_quote(value) -%}
    {%- set text = value | string -%}
    {%- if '\x00' in text -%}
        {{ exceptions.raise_compiler_error("[csinfra] a SQL literal cannot contain a NUL character: " ~ (text | replace('\x00', '\\0'))) }}
    {%- endif -%}
    {%- if '\\' in text -%}
        E'{{ text | replace("\\", "\\\\") | replace("'", "''") }}'
    {%- else -%}
        '{{ text | replace("'", "''") }}'
    {%- endif -%}
{%- endmacro %}


{% macro csinfra_ident(name) -%}
    {{ return(adapter.dispatch('csinfra_ident', 'creatorstays_infra')(name)) }}
{%- endmacro %}

{% macro default__csinfra_ident(name) -%}
    {%- set text = name | string -%}
    {%- if '\x00' in text or text | length == 0 -%}
        {{ exceptions.raise_compiler_error("[csinfra] not a SQL identifier: " ~ (text | tojson)) }}
    {%- endif -%}
    "{{ text | replace('"', '""') }}"
{%- endmacro %}


{% macro csinfra_schema_name(value, what) -%}
    {%- set text = value | string -%}
    {%- if not modules.re.fullmatch('^[A-Za-z_][A-Za-z0-9_$]*$', text) or text.encode('utf-8') | length > 63 -%}
        {{ exceptions.raise_compiler_error("[csinfra] " ~ what ~ " " ~ (text | tojson) ~ " is not a plain PostgreSQL schema name "
            ~ "(letters, digits, _ and $, starting with a letter or _, at most 63 bytes)") }}
    {%- endif -%}
    {{ return(text) }}
{%- endmacro %}


{% macro csinfra_duration(value, what) -%}
    {%- set text = value | string | trim -%}
    {%- if not modules.re.fullmatch('^[0-9]{1,9}(\\.[0-9]{1,6})? ?(us|ms|s|min|h|d)?$', text) -%}
        {{ exceptions.raise_compiler_error("[csinfra] " ~ what ~ ": expected a duration like 5s or 500ms, got " ~ (value | string | tojson)) }}
    {%- endif -%}
    {{ return(text) }}
{%- endmacro %}


{% macro csinfra_interval(value, what) -%}
    {%- set text = value | string | trim -%}
    {%- set unit = '(microseconds?|milliseconds?|seconds?|minutes?|hours?|days?|weeks?|months?|years?)' -%}
    {%- if not modules.re.fullmatch('^[0-9]{1,6}(\\.[0-9]{1,6})? ?' ~ unit ~ '( [0-9]{1,6}(\\.[0-9]{1,6})? ?' ~ unit ~ ')*$', text) -%}
        {{ exceptions.raise_compiler_error("[csinfra] " ~ what ~ ": expected an interval like '3 days' or '12 hours', got "
            ~ (value | string | tojson)) }}
    {%- endif -%}
    {{ return(text) }}
{%- endmacro %}


{% macro csinfra_number(value, what, min=none, max=none, integer=false) -%}
    {%- set ok = value is number and value is not boolean and value == value and value | abs < 1e15 -%}
    {%- if ok and integer -%}{%- set ok = (value | int) == value -%}{%- endif -%}
    {%- if ok and min is not none -%}{%- set ok = value >= min -%}{%- endif -%}
    {%- if ok and max is not none -%}{%- set ok = value <= max -%}{%- endif -%}
    {%- if not ok -%}
        {{ exceptions.raise_compiler_error("[csinfra] " ~ what ~ ": expected " ~ ("a whole number" if integer else "a number")
            ~ (" from " ~ min if min is not none else "") ~ (" up to " ~ max if max is not none else "")
            ~ ", got " ~ (value | string | tojson)) }}
    {%- endif -%}
    {{ return((value | int) if integer else value) }}
{%- endmacro %}


{% macro csinfra_checked_numbers(value, what) -%}
    {%- if value is mapping -%}
        {%- for key, item in value.items() -%}{%- do csinfra_checked_numbers(item, what ~ '.' ~ key) -%}{%- endfor -%}
    {%- elif value is iterable and value is not string -%}
        {%- for item in value -%}{%- do csinfra_checked_numbers(item, what ~ '[' ~ loop.index0 ~ ']') -%}{%- endfor -%}
    {%- else -%}
        {%- do csinfra_number(value, what) -%}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}


{#- A var whose every leaf must be a finite number (the marts' windows and ranking weights). -#}
{% macro csinfra_number_var(name) -%}
    {{ return(csinfra_checked_numbers(var(name), 'var ' ~ name)) }}
{%- endmacro %}


{#- on-run-start: the schemas every relation name is built from are plain names (dbt's own relation names
    quote without doubling "). -#}
{% macro csinfra_check_target_schema() %}
    {%- do csinfra_schema_name(target.schema, 'the target schema (profiles.yml schema / CSINFRA_SCHEMA)') -%}
    {%- do csinfra_app_schema() -%}
    {{ return('') }}
{% endmacro %}
