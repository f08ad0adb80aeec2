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
    {%- if not value -%}{{ return(none) }}{%- endif -%}
    {%- set role = value | string -%}
    {#- PUBLIC ("public" quoted still means everyone), the predefined pg_* roles and the session-user keywords are
        never what is meant -#}
    {%- if role | lower in ['public', 'current_user', 'session_user', 'current_role'] or (role | lower).startswith('pg_') -%}
        {{ exceptions.raise_compiler_error("[csinfra] " ~ name ~ " (var " ~ name ~ " / " ~ env_name ~ ") " ~ (role | tojson)
            ~ " is not a role to grant to: name the application's or the analysts' own role") }}
    {%- endif -%}
    {{ return(role) }}
{%- endmacro %}


{#- on-run-start: the schema exists (csinfra_view_fingerprints_ddl) and the two roles may look into it. -#}
{% macro csinfra_schema_grants() %}
    {#- the application's PostgreSQL only: nothing to check or grant where the marts build from the lake -#}
    {%- if not execute or target.type != 'postgres' -%}{{ return('') }}{%- endif -%}
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
{% macro csinfra_function_grants(function_signature, online) -%}
    revoke all on function {{ function_signature }} from public;
    {%- set role = csinfra_role('app_role') %}
    {%- if role and online %}
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


{#- on-run-start: PUBLIC may not CREATE in the schemas our views and functions are built from and live in. A function
    planted there (say public.to_jsonb(record), an exact match that beats pg_catalog's polymorphic one) would be bound
    into the owner's views when they are built and run with the owner's rights. PostgreSQL 15+ creates `public`
    without it; a database upgraded from an older one keeps it until revoked (`csinfra grant` does). -#}
{% macro csinfra_check_schema_creators() %}
    {#- the application's PostgreSQL only: nothing to check or grant where the marts build from the lake -#}
    {%- if not execute or target.type != 'postgres' -%}{{ return('') }}{%- endif -%}
    {%- set open_schemas = csinfra_query(
        "select n.nspname from pg_namespace as n "
        ~ "cross join lateral aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) as a "
        ~ "where n.nspname in (" ~ csinfra_quote(csinfra_app_schema()) ~ ", " ~ csinfra_quote(target.schema) ~ ") "
        ~ "and a.grantee = 0 and a.privilege_type = 'CREATE' order by 1"
    ).columns[0].values() -%}
    {% do adapter.commit() %}
    {%- if open_schemas | length > 0 -%}
        {{ exceptions.raise_compiler_error("[csinfra] PUBLIC may CREATE in schema " ~ (open_schemas | join(', '))
            ~ ": any role could plant a function that the owner's views and the online function would run with the"
            ~ " owner's rights; as the owner: revoke create on schema " ~ (open_schemas | join(', ')) ~ " from public"
            ~ " (`csinfra grant` does)") }}
    {%- endif -%}
    {{ return('') }}
{% endmacro %}
