{#- The rows of a catalog seed (seeds/<name>.csv, loaded by dbt seed / dbt build / csinfra backfill), as a list
    of dicts in `order_by` order, read when the calling model compiles: the rule macros render the codes and
    messages into the model's SQL, so a changed catalog is in the next run's SQL, and the expressions stay
    as cheap as literals (no join per row).

    ref(name) is called at parse time, so dbt knows the model depends on the seed (and loads the seed first
    in a build); at parse time the list is empty. When the model runs, the table is looked up in the graph
    rather than through ref(), which in a unit test would point at a fixture: a unit test of a rule model
    runs with the real catalog. -#}
{% macro csinfra_catalog(name, order_by) %}
    {%- if not execute -%}
        {%- do ref(name) -%}
        {{ return([]) }}
    {%- endif -%}
    {#- a unit test's context has no graph: the catalog is then where a seed lands, the target schema -#}
    {%- set in_graph = graph.nodes is defined -%}
    {%- set node = graph.nodes.get('seed.' ~ project_name ~ '.' ~ name) if in_graph else none -%}
    {%- if in_graph and node is none -%}
        {{ exceptions.raise_compiler_error("[csinfra] no catalog seed named " ~ (name | tojson) ~ " (seeds/" ~ name ~ ".csv)") }}
    {%- endif -%}
    {%- set schema = node.schema if node is not none else target.schema -%}
    {%- set identifier = node.alias if node is not none else name -%}
    {%- set relation = adapter.get_relation(database=target.database, schema=schema, identifier=identifier) -%}
    {%- if relation is none -%}
        {{ exceptions.raise_compiler_error("[csinfra] the catalog " ~ schema ~ "." ~ identifier ~ " is not loaded: run `dbt seed` "
            ~ "(`dbt build` and `csinfra backfill` load the catalogs before the models)") }}
    {%- endif -%}
    {%- if node is not none and target.type == 'postgres' -%}
        {%- set loaded = run_query('select fingerprint from ' ~ csinfra_view_fingerprints_relation() ~ ' where relation = '
                                   ~ csinfra_quote(relation.include(database=false) | string)) -%}
        {%- set expected = 'seed:' ~ node.checksum.checksum -%}
        {%- if loaded.rows | length == 0 or loaded.rows[0][0] != expected -%}
            {{ exceptions.raise_compiler_error("[csinfra] " ~ node.original_file_path ~ " changed since it was loaded into "
                ~ schema ~ "." ~ identifier ~ ": run `dbt seed` (`dbt build` and `csinfra backfill` load the catalogs "
                ~ "before the models), so the models and the Python library read the same catalog") }}
        {%- endif -%}
    {%- endif -%}
    {%- set result = run_query('select * from ' ~ relation.include(database=false) ~ ' order by ' ~ csinfra_ident(order_by)) -%}
    {%- set rows = [] -%}
    {%- for row in result.rows -%}
        {%- set item = {} -%}
        {%- for column in result.column_names -%}
            {%- do item.update({column: row[column]}) -%}
        {%- endfor -%}
        {%- do rows.append(item) -%}
    {%- endfor -%}
    {%- if rows | length == 0 -%}
        {{ exceptions.raise_compiler_error("[csinfra] the catalog " ~ name ~ " is empty") }}
    {%- endif -%}
    {{ return(rows) }}
{% endmacro %}


{#- The blockers in display order: [{code, check, message, is_oauth_blocker}], each check one the rule
    macros implement (creator_filled_checks). -#}
{% macro csinfra_creator_blockers() %}
    {%- set known = ['display_name', 'handle', 'bio', 'niches', 'deliverables', 'minimum_rate', 'oauth'] -%}
    {%- set blockers = [] -%}
    {%- for row in csinfra_catalog('creator_blockers', 'display_order') -%}
        {%- if row.profile_check not in known -%}
            {{ exceptions.raise_compiler_error("[csinfra] seeds/creator_blockers.csv: unknown profile_check "
                ~ (row.profile_check | tojson) ~ "; known: " ~ (known | join(', '))) }}
        {%- endif -%}
        {%- do blockers.append({'code': row.blocker_code, 'check': row.profile_check, 'message': row.message,
                                'is_oauth_blocker': row.is_oauth_blocker}) -%}
    {%- endfor -%}
    {{ return(blockers) }}
{% endmacro %}


{#- error code -> message (seeds/offer_validation_errors.csv); the codes must be the six the rules implement. -#}
{% macro csinfra_offer_error_messages() %}
    {%- set known = ['min_total_value', 'min_cash_without_stay', 'max_deliverables', 'no_deliverables',
                     'traffic_bonus_threshold', 'traffic_bonus_amount'] -%}
    {%- set messages = {} -%}
    {%- for row in csinfra_catalog('offer_validation_errors', 'display_order') -%}
        {%- do messages.update({row.error_code: row.message}) -%}
    {%- endfor -%}
    {%- if execute and (messages.keys() | sort | list) != (known | sort | list) -%}
        {{ exceptions.raise_compiler_error("[csinfra] seeds/offer_validation_errors.csv: error codes "
            ~ (messages.keys() | sort | join(', ')) ~ " differ from " ~ (known | sort | join(', '))) }}
    {%- endif -%}
    {{ return(messages) }}
{% endmacro %}


{#- One column of a catalog, in `order_by` order, optionally only the rows whose boolean `flag` is true: e.g.
    the statuses a creator's response moves an offer to. For the rule models (the write-back and the online
    function compile them), which render the values as literals; marts and tests join the seed instead. -#}
{% macro csinfra_catalog_values(name, column, order_by='display_order', flag=none) %}
    {%- set values = [] -%}
    {%- for row in csinfra_catalog(name, order_by) if flag is none or row[flag] -%}
        {%- do values.append(row[column]) -%}
    {%- endfor -%}
    {%- if execute and values | length == 0 -%}
        {{ exceptions.raise_compiler_error("[csinfra] the catalog " ~ name ~ " has no " ~ column ~ (" with " ~ flag if flag else "")) }}
    {%- endif -%}
    {{ return(values) }}
{% endmacro %}


{#- Seed post-hook: records which version of the CSV file the table holds (dbt's checksum of the file), in the
    fingerprints table, so a model compiling against a catalog whose file changed since it was loaded stops
    with a message instead of running with the old catalog (csinfra_catalog). -#}
{% macro csinfra_record_catalog_checksum() %}
    {%- if not execute or target.type != 'postgres' -%}{{ return('') }}{%- endif -%}
    insert into {{ csinfra_view_fingerprints_relation() }} (relation, relation_oid, fingerprint)
    values (
        {{ csinfra_quote(this.include(database=false) | string) }},
        {{ csinfra_quote(this.include(database=false) | string) }}::regclass::oid,
        {{ csinfra_quote('seed:' ~ model.checksum.checksum) }}
    )
    on conflict (relation) do update
    set relation_oid = excluded.relation_oid, fingerprint = excluded.fingerprint, built_at = clock_timestamp()
{% endmacro %}
