{#-
  Least privilege (README "Security"). Three roles:
    the migration owner   runs `csinfra migrate` and the backfill (dbt); owns the application's tables and our schemas
    the application role  var app_role, else CSINFRA_APP_ROLE: runs the online library. It may call the online rule
                          function (a SECURITY DEFINER function, EXECUTE revoked from PUBLIC) and nothing else here
    the analyst role      var analyst_role, else CSINFRA_ANALYST_ROLE: reads the marts (their `grants` config in
                          dbt_project.yml) and nothing that carries secrets or PII (no staging or intermediate view)
  Both roles get USAGE on the schema (on-run-start), so a rebuild (also --full-refresh) keeps every grant.
  `csinfra grant` prints (or applies) the same statements, plus the application tables' part.
-#}

{% macro csinfra_role(name) -%}
    {%- set env_name = 'CSINFRA_' ~ (name | upper) -%}
    {%- set value = var(name, env_var(env_name, '')) -%}
    {{ return((value | string | trim) if value else none) }}
{%- endmacro %}


{#- on-run-start: the schema exists (csinfra_view_fingerprints_ddl) and the two roles may look into it. -#}
{% macro csinfra_schema_grants() %}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set roles = [csinfra_role('app_role'), csinfra_role('analyst_role')] | reject('none') | list -%}
    {%- if roles | length == 0 -%}{{ return('') }}{%- endif -%}
    {% call statement('schema_grants') -%}
        {%- for role in roles %}
        grant usage on schema {{ csinfra_ident(target.schema) }} to {{ csinfra_ident(role) }};
        {%- endfor %}
    {%- endcall %}
    {% do adapter.commit() %}
{% endmacro %}


{#- The online function: SECURITY DEFINER, so the application role needs no right on our views; EXECUTE for the
    application role only. -#}
{% macro csinfra_function_grants(function_signature) -%}
    revoke all on function {{ function_signature }} from public;
    {%- set role = csinfra_role('app_role') %}
    {%- if role %}
    grant execute on function {{ function_signature }} to {{ csinfra_ident(role) }};
    {%- endif %}
{%- endmacro %}


{#- dbt's grants config (the marts) renders grantees unquoted; ours are quoted, with " doubled. -#}
{% macro postgres__get_grant_sql(relation, privilege, grantees) -%}
    {%- set quoted = [] -%}
    {%- for grantee in grantees -%}{%- do quoted.append(csinfra_ident(grantee)) -%}{%- endfor -%}
    grant {{ privilege }} on {{ relation }} to {{ quoted | join(', ') }}
{%- endmacro %}

{% macro postgres__get_revoke_sql(relation, privilege, grantees) -%}
    {%- set quoted = [] -%}
    {%- for grantee in grantees -%}{%- do quoted.append(csinfra_ident(grantee)) -%}{%- endfor -%}
    revoke {{ privilege }} on {{ relation }} from {{ quoted | join(', ') }}
{%- endmacro %}
