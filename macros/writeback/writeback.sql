{#-
  materialized='writeback': writes a model's derived columns back into an application table.

  config:
    target_table   application table to write (in csinfra_app_schema())
    target_key     its key column (default 'id')
    key            the model column holding target_key values
    columns        {target column: model column}; the model also selects stored_<model column>
                   (the value as read) and row_version (xmin of the row as read)
    audit          optional {column, action, target_type}: one audit_logs row per change of that column

  How it runs (SPEC section 6):
    1. the rows whose stored values differ from the derived ones are derived ONCE into a keyed
       work table (this model's relation: what this run set out to change);
    2. keyset batches of var('writeback_batch_size') rows, each its own short transaction under
       var('writeback_lock_timeout'): UPDATE … FROM batch WHERE t.xmin = batch.row_version, so a row
       the application changed after step 1 is never overwritten with a stale value; the audit rows
       are written by the same statement;
    3. rows skipped by that guard are re-derived and written one by one through the online
       function (fresh values, same rules), up to three passes;
    Between batches it sleeps var('writeback_pause_seconds') (default 0) to throttle load.
    4. progress and counts go to {{ target.schema }}.writeback_log after every batch.
  A second run on unchanged data finds no differing row and issues no UPDATE at all. A killed run
  resumes by simply running again: committed batches are no longer different.
-#}

{% materialization writeback, adapter='postgres' %}
    {%- set target_table = config.require('target_table') -%}
    {%- set target_key = config.get('target_key', 'id') -%}
    {%- set key = config.require('key') -%}
    {%- set columns = config.require('columns') -%}
    {%- set audit = config.get('audit', none) -%}
    {%- set batch_size = var('writeback_batch_size') | int -%}
    {%- set pause = var('writeback_pause_seconds', 0) | float -%}
    {%- set app = csinfra_app_schema() -%}
    {%- set target_rel = adapter.quote(app) ~ '.' ~ adapter.quote(target_table) -%}
    {%- set pending = this.incorporate(type='table') -%}
    {%- set skipped_rel = adapter.quote(this.schema) ~ '.' ~ adapter.quote(this.identifier ~ '__skipped') -%}
    {%- set apply_fn = adapter.quote(this.schema) ~ '.' ~ adapter.quote(this.identifier ~ '__apply') -%}
    {%- set log_rel = adapter.quote(this.schema) ~ '.writeback_log' -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {#- types of the target columns, so derived values are cast exactly (enums, jsonb, timestamp(3)) -#}
    {%- set type_rows = csinfra_query(
        "select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a "
        ~ "where a.attrelid = " ~ csinfra_quote(target_rel) ~ "::regclass and a.attnum > 0 and not a.attisdropped"
    ) -%}
    {%- set types = {} -%}
    {%- for row in type_rows -%}{%- do types.update({row[0]: row[1]}) -%}{%- endfor -%}
    {%- for column in columns -%}
        {%- if column not in types -%}
            {{ exceptions.raise_compiler_error("writeback " ~ this.identifier ~ ": " ~ app ~ "." ~ target_table
                ~ " has no column " ~ column ~ " (is the Phase 1 migration applied? `csinfra migrate up`)") }}
        {%- endif -%}
    {%- endfor -%}

    {#- the work table keeps only what the batches read: key, row version, new values, the audited old value -#}
    {%- set pending_columns = [key, 'row_version'] + (columns.values() | list) -%}
    {%- if audit -%}{%- do pending_columns.append('stored_' ~ columns[audit.column]) -%}{%- endif -%}

    {%- set ctx = {
        'target_rel': target_rel, 'target_key': target_key, 'key': key, 'columns': columns,
        'types': types, 'audit': audit, 'app': app,
    } -%}

    {#- 0. the run log -#}
    {% call statement('writeback_log') -%}
        create table if not exists {{ log_rel }} (
            invocation_id text not null,
            model text not null,
            target_table text not null,
            started_at timestamptz not null default clock_timestamp(),
            finished_at timestamptz,
            status text not null default 'deriving',
            candidates bigint,
            written bigint not null default 0,
            skipped bigint not null default 0,
            retried bigint not null default 0,
            audit_rows bigint not null default 0,
            batches integer not null default 0,
            batch_size integer not null,
            derive_ms bigint,
            primary key (invocation_id, model)
        );
        alter table {{ log_rel }} add column if not exists scanned bigint;
        insert into {{ log_rel }} (invocation_id, model, target_table, batch_size)
        values ('{{ invocation_id }}', '{{ this.identifier }}', '{{ app }}.{{ target_table }}', {{ batch_size }})
        on conflict (invocation_id, model) do nothing;
    {%- endcall %}
    {% do adapter.commit() %}

    {#- 1. the changed rows, derived once -#}
    {%- set t0 = modules.datetime.datetime.now() -%}
    {% call statement('derive') -%}
        drop table if exists {{ pending }} cascade;
        drop table if exists {{ skipped_rel }};
        create unlogged table {{ pending }} as
        select
            {%- for col in pending_columns %}
            model.{{ adapter.quote(col) }}{{ ',' if not loop.last }}
            {%- endfor %}
        from ({{ sql }}) as model
        where {{ writeback_changed_predicate('model', columns) }};
        create unique index on {{ pending }} ({{ adapter.quote(key) }});
        analyze {{ pending }};
        create unlogged table {{ skipped_rel }} ({{ adapter.quote(key) }} text primary key);
    {%- endcall %}
    {%- set candidates = csinfra_query("select count(*) from " ~ pending).columns[0].values()[0] | int -%}
    {%- set scanned = csinfra_query("select count(*) from " ~ target_rel).columns[0].values()[0] | int -%}
    {%- set derive_ms = ((modules.datetime.datetime.now() - t0).total_seconds() * 1000) | int -%}
    {% call statement('log_candidates') -%}
        update {{ log_rel }} set candidates = {{ candidates }}, scanned = {{ scanned }}, derive_ms = {{ derive_ms }}, status = 'writing'
        where invocation_id = '{{ invocation_id }}' and model = '{{ this.identifier }}'
    {%- endcall %}
    {% do adapter.commit() %}

    {#- the online path: the same statement for one key, derived fresh -#}
    {% call statement('apply_function') -%}
        create or replace function {{ apply_fn }}(p_key text, p_source text default 'online')
        returns setof jsonb
        language sql
        volatile
        as $csinfra_apply$
        with
        batch as (
            select
                model.*,
                {{ writeback_changed_predicate('model', columns) }} as has_changes
            from ({{ sql }}) as model
            where model.{{ adapter.quote(key) }} = p_key
        ),
        {{ writeback_update_ctes(ctx, 'batch', "batch.has_changes", 'p_source') }}
        select to_jsonb(batch) || jsonb_build_object('written', exists (
            select from written where written.key = batch.{{ adapter.quote(key) }}
        ))
        from batch
        $csinfra_apply$;
    {%- endcall %}
    {% do adapter.commit() %}

    {#- 2. keyset batches -#}
    {%- set ns = namespace(last=none, done=(candidates == 0), written=0, skipped=0, audited=0, batches=0) -%}
    {#- Jinja's sandbox caps range() at 100000: nest two loops for any number of batches -#}
    {%- set n_batches = candidates // batch_size + 2 -%}
    {%- for _outer in range(n_batches // 100000 + 1) if not ns.done -%}
    {%- for _ in range([n_batches, 100000] | min) if not ns.done -%}
        {%- set bound_sql = "select max(k) from (select " ~ adapter.quote(key) ~ " as k from " ~ pending
            ~ (" where " ~ adapter.quote(key) ~ " > " ~ csinfra_quote(ns.last) if ns.last is not none else "")
            ~ " order by 1 limit " ~ batch_size ~ ") as b" -%}
        {%- set upper = csinfra_query(bound_sql).columns[0].values()[0] -%}
        {%- if upper is none -%}
            {%- set ns.done = true -%}
        {%- else -%}
            {%- set stats = csinfra_query(writeback_batch_sql(ctx, pending, skipped_rel, ns.last, upper)) -%}
            {%- set ns.written = ns.written + (stats.columns[1].values()[0] | int) -%}
            {%- set ns.audited = ns.audited + (stats.columns[2].values()[0] | int) -%}
            {%- set ns.skipped = ns.skipped + (stats.columns[3].values()[0] | int) -%}
            {%- set ns.batches = ns.batches + 1 -%}
            {%- set ns.last = upper -%}
            {% call statement('log_batch') -%}
                update {{ log_rel }}
                set written = {{ ns.written }}, skipped = {{ ns.skipped }}, audit_rows = {{ ns.audited }},
                    batches = {{ ns.batches }}
                where invocation_id = '{{ invocation_id }}' and model = '{{ this.identifier }}'
            {%- endcall %}
            {% do adapter.commit() %}
            {%- if pause > 0 -%}
                {%- do csinfra_query('select pg_sleep(' ~ pause ~ ')') -%}
                {% do adapter.commit() %}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {%- endfor -%}

    {#- 3. rows changed by the application during the run: re-derived and written through the online function -#}
    {%- set retry = namespace(done=(ns.skipped == 0), retried=0, audited=0) -%}
    {%- for attempt in range(3) if not retry.done -%}
        {%- set res = csinfra_query(writeback_retry_sql(ctx, skipped_rel, apply_fn)) -%}
        {%- set retry.retried = retry.retried + (res.columns[0].values()[0] | int) -%}
        {%- set retry.audited = retry.audited + (res.columns[1].values()[0] | int) -%}
        {% do adapter.commit() %}
        {%- if (res.columns[2].values()[0] | int) == 0 -%}{%- set retry.done = true -%}{%- endif -%}
    {%- endfor -%}
    {%- set still_skipped = csinfra_query("select count(*) from " ~ skipped_rel).columns[0].values()[0] | int -%}

    {% call statement('main') -%}
        update {{ log_rel }}
        set finished_at = clock_timestamp(), status = 'done', retried = {{ retry.retried }},
            skipped = {{ still_skipped }}, audit_rows = {{ ns.audited + retry.audited }}
        where invocation_id = '{{ invocation_id }}' and model = '{{ this.identifier }}'
    {%- endcall %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {% do adapter.commit() %}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [pending]}) }}
{% endmaterialization %}


{#- "stored values differ from derived ones" for the configured columns -#}
{% macro writeback_changed_predicate(alias, columns) -%}
    {%- set stored, derived = [], [] -%}
    {%- for model_col in columns.values() -%}
        {%- do stored.append(alias ~ '.' ~ adapter.quote('stored_' ~ model_col)) -%}
        {%- do derived.append(alias ~ '.' ~ adapter.quote(model_col)) -%}
    {%- endfor -%}
    {{ any_distinct(stored, derived) }}
{%- endmacro %}


{#- The guarded UPDATE and its audit rows, as CTEs named `written` and `audited`, over `source`. -#}
{% macro writeback_update_ctes(ctx, source, where, source_label) -%}
    written as (
        update {{ ctx.target_rel }} as t
        set
            {%- for target_col, model_col in ctx.columns.items() %}
            {{ adapter.quote(target_col) }} = {{ source }}.{{ adapter.quote(model_col) }}::{{ ctx.types[target_col] }}{{ ',' if not loop.last }}
            {%- endfor %}
        from {{ source }}
        where
            t.{{ adapter.quote(ctx.target_key) }} = {{ source }}.{{ adapter.quote(ctx.key) }}
            and t.xmin = {{ source }}.row_version
            and {{ where }}
        returning
            t.{{ adapter.quote(ctx.target_key) }} as key
            {%- if ctx.audit %},
            {{ source }}.{{ adapter.quote('stored_' ~ ctx.columns[ctx.audit.column]) }}::text as audit_from,
            {{ source }}.{{ adapter.quote(ctx.columns[ctx.audit.column]) }}::text as audit_to
            {%- endif %}
    ),
    audited as (
        {%- if ctx.audit %}
        insert into {{ adapter.quote(ctx.app) }}.audit_logs
            (id, action, "actorType", "actorId", "targetType", "targetId", metadata, "createdAt")
        select
            {{ csinfra_new_id('written.key') }},
            '{{ ctx.audit.action }}',
            'system',
            'system',
            '{{ ctx.audit.target_type }}',
            written.key,
            jsonb_strip_nulls(jsonb_build_object(
                'from', written.audit_from,
                'to', written.audit_to,
                'field', '{{ ctx.audit.column }}',
                'source', {{ source_label }},
                'runId', case when {{ source_label }} like 'backfill%' then '{{ invocation_id }}' end
            )),
            (now() at time zone 'UTC')::timestamp(3)
        from written
        where written.audit_from is distinct from written.audit_to
        returning 1
        {%- else %}
        select 1 where false
        {%- endif %}
    )
{%- endmacro %}


{#- One keyset batch: (rows in batch, rows written, audit rows, rows skipped by the guard). -#}
{% macro writeback_batch_sql(ctx, pending, skipped_rel, lower, upper) -%}
    {%- set k = adapter.quote(ctx.key) -%}
    select set_config('lock_timeout', '{{ var("writeback_lock_timeout") }}', true);
    with
    batch as (
        select * from {{ pending }}
        where {% if lower is not none %}{{ k }} > {{ csinfra_quote(lower) }} and {% endif %}{{ k }} <= {{ csinfra_quote(upper) }}
    ),
    {{ writeback_update_ctes(ctx, 'batch', 'true', "'backfill'") }},
    skipped as (
        insert into {{ skipped_rel }} ({{ k }})
        select batch.{{ k }} from batch
        where not exists (select from written where written.key = batch.{{ k }})
        returning 1
    )
    select
        (select count(*) from batch) as batch_rows,
        (select count(*) from written) as written_rows,
        (select count(*) from audited) as audit_rows,
        (select count(*) from skipped) as skipped_rows
{%- endmacro %}


{#- Retry the skipped keys once through the online function: (written or no longer different, audit rows, still skipped). -#}
{% macro writeback_retry_sql(ctx, skipped_rel, apply_fn) -%}
    {%- set k = adapter.quote(ctx.key) -%}
    with
    attempt as (
        select s.{{ k }} as k, r.row
        from {{ skipped_rel }} as s
        cross join lateral {{ apply_fn }}(s.{{ k }}, 'backfill_retry') as r (row)
    ),
    done as (
        delete from {{ skipped_rel }} as s
        using attempt
        where s.{{ k }} = attempt.k
            and ((attempt.row ->> 'written')::boolean or not (attempt.row ->> 'has_changes')::boolean)
        returning attempt.row
    )
    select
        (select count(*) from done) as done_rows,
        {%- if ctx.audit %}
        (select count(*) from done
         where (done.row ->> 'written')::boolean
            and done.row ->> {{ csinfra_quote('stored_' ~ ctx.columns[ctx.audit.column]) }}
                is distinct from done.row ->> {{ csinfra_quote(ctx.columns[ctx.audit.column]) }}) as audit_rows,
        {%- else %}
        0 as audit_rows,
        {%- endif %}
        (select count(*) from {{ skipped_rel }}) - (select count(*) from done) as remaining
{%- endmacro %}


{#- A SQL string literal (quotes doubled; standard_conforming_strings is on since PostgreSQL 9.1). -#}
{% macro csinfra_quote(value) -%}
    '{{ value | string | replace("'", "''") }}'
{%- endmacro %}


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
