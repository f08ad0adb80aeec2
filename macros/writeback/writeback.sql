{#-
  materialized='writeback': writes a model's derived columns back into an application table.

  config:
    target_table   application table to write (in csinfra_app_schema())
    target_key     its key column (default 'id')
    key            the model column holding target_key values
    columns        {target column: model column}; the model also selects stored_<model column>
                   (the value as read) and row_version (xmin of the row as read)
    audit          optional {column, action, target_type}: one audit_logs row per change of that column
    preview        optional {transitions: [target columns], elements: [target columns of JSON arrays]}:
                   what the dry run reports beyond per-column counts

  How it runs:
    0. one runner per table: a session advisory lock; a second run waits var('writeback_wait_seconds')
       for it, then stops with one line naming the running one (pid, start, progress);
    1. the rows whose stored values differ from the derived ones are derived ONCE into a keyed
       work table (this model's relation: what this run set out to change);
       with var('writeback_dry_run') it stops here and records what would change (csinfra backfill
       --dry-run prints it);
    2. keyset batches sized by time: each batch aims at var('writeback_batch_target_ms') (default 100 ms);
       the next batch grows while they are faster and shrinks when one is slower or times out
       (var('writeback_batch_size') fixes the size instead). Each batch is its own transaction:
       it locks the rows it writes with FOR NO KEY UPDATE SKIP LOCKED, so it never waits on a row the
       application holds, and updates them guarded by the row version (UPDATE … WHERE t.xmin =
       row_version), so a row the application changed since step 1 is never overwritten with a
       stale value; the audit rows are written by the same statement. Rows skipped either way
       are retried later in the run, derived fresh (var('writeback_retry_passes') passes);
       what is still locked then is left for the next run (counted as skipped);
    3. a batch that cannot get its table locks within var('writeback_lock_timeout') gives way (it
       waits, smaller, with exponential backoff); after var('writeback_max_lock_timeouts') in a
       row the run stops with one line naming the table, the key range and the lock holder;
    4. between batches it sleeps var('writeback_pause_seconds'), and it waits while a replica lags
       more than var('writeback_max_replica_lag_seconds') (when set);
    5. progress and counts go to {{ target.schema }}.writeback_log after every batch.
  A second run on unchanged data finds no differing row and issues no UPDATE at all. A killed run
  resumes by running again: committed batches are no longer different.
-#}

{% materialization writeback, adapter='postgres' %}
    {%- set target_table = config.require('target_table') -%}
    {%- set target_key = config.get('target_key', 'id') -%}
    {%- set key = config.require('key') -%}
    {%- set columns = config.require('columns') -%}
    {%- set audit = config.get('audit', none) -%}
    {%- set preview = config.get('preview', {}) -%}
    {%- set app = csinfra_app_schema() -%}
    {%- set target_rel = csinfra_ident(app) ~ '.' ~ csinfra_ident(target_table) -%}
    {#- schema.name, never database.schema.name: the batch function's body names it -#}
    {%- set pending = this.incorporate(type='table').include(database=False) -%}
    {%- set skipped_rel = csinfra_ident(this.schema) ~ '.' ~ csinfra_ident(this.identifier ~ '__skipped') -%}
    {%- set apply_fn = csinfra_ident(this.schema) ~ '.' ~ csinfra_ident(this.identifier ~ '__apply') -%}
    {%- set batch_fn = csinfra_ident(this.schema) ~ '.' ~ csinfra_ident(this.identifier ~ '__batch') -%}
    {%- set log_rel = csinfra_ident(this.schema) ~ '.writeback_log' -%}
    {%- set s = writeback_settings() -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {#- types of the target columns, so derived values are cast exactly (enums, jsonb, timestamp(3)); spelled with
        their schema (format_type under search_path pg_catalog), as the online function's fixed search_path needs -#}
    {%- set session_path = csinfra_query("select current_setting('search_path')").columns[0].values()[0] -%}
    {%- set type_rows = csinfra_query(
        "set local search_path = pg_catalog, pg_temp; "
        ~ "select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a "
        ~ "where a.attrelid = " ~ csinfra_quote(target_rel) ~ "::regclass and a.attnum > 0 and not a.attisdropped"
    ) -%}
    {%- do csinfra_query("select set_config('search_path', " ~ csinfra_quote(session_path) ~ ", true)") -%}
    {%- set types = {} -%}
    {%- for row in type_rows -%}{%- do types.update({row[0]: row[1]}) -%}{%- endfor -%}
    {%- for column in columns -%}
        {%- if column not in types -%}
            {{ exceptions.raise_compiler_error("[csinfra] writeback " ~ this.identifier ~ ": " ~ app ~ "." ~ target_table
                ~ " has no column " ~ column ~ " (is the Phase 1 migration applied? `csinfra migrate up`)") }}
        {%- endif -%}
    {%- endfor -%}

    {#- the work table keeps what the batches read and the dry run reports: key, row version, new and stored values -#}
    {%- set pending_columns = [key, 'row_version'] -%}
    {%- for model_col in columns.values() -%}
        {%- do pending_columns.append(model_col) -%}
        {%- do pending_columns.append('stored_' ~ model_col) -%}
    {%- endfor -%}

    {%- set ctx = {
        'target_rel': target_rel, 'target_key': target_key, 'key': key, 'columns': columns,
        'types': types, 'audit': audit, 'app': app,
    } -%}

    {#- 0. the run log, then one runner per table -#}
    {{ writeback_log_ddl(log_rel) }}
    {{ writeback_acquire(target_rel, log_rel, s.wait_seconds) }}
    {% call statement('writeback_log_row') -%}
        insert into {{ log_rel }} (invocation_id, model, target_table, batch_size, pid, dry_run)
        values ({{ csinfra_quote(invocation_id) }}, {{ csinfra_quote(this.identifier) }}, {{ csinfra_quote(app ~ '.' ~ target_table) }},
                {{ s.fixed_size if s.fixed_size is not none else s.start_rows }}, pg_backend_pid(), {{ s.dry_run }})
        on conflict (invocation_id, model) do update set pid = excluded.pid
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
            model.{{ csinfra_ident(col) }}{{ ',' if not loop.last }}
            {%- endfor %}
        from ({{ sql }}) as model
        where {{ writeback_changed_predicate('model', columns) }};
        create unique index on {{ pending }} ({{ csinfra_ident(key) }});
        analyze {{ pending }};
        create unlogged table {{ skipped_rel }} ({{ csinfra_ident(key) }} text primary key);
    {%- endcall %}
    {%- set candidates = csinfra_query("select count(*) from " ~ pending).columns[0].values()[0] | int -%}
    {%- set scanned = csinfra_query("select count(*) from " ~ target_rel).columns[0].values()[0] | int -%}
    {%- set derive_ms = ((modules.datetime.datetime.now() - t0).total_seconds() * 1000) | int -%}
    {% call statement('log_candidates') -%}
        update {{ log_rel }} set candidates = {{ candidates }}, scanned = {{ scanned }}, derive_ms = {{ derive_ms }},
            status = {{ "'previewed'" if s.dry_run else "'writing'" }},
            preview = {{ writeback_preview_sql(pending, ctx, preview) if s.dry_run else 'null' }},
            finished_at = {{ 'clock_timestamp()' if s.dry_run else 'null' }}
        where invocation_id = {{ csinfra_quote(invocation_id) }} and model = {{ csinfra_quote(this.identifier) }}
    {%- endcall %}
    {% do adapter.commit() %}

    {%- if s.dry_run -%}
        {% call statement('main') -%}
            select pg_advisory_unlock({{ writeback_lock_key(target_rel) }})
        {%- endcall %}
        {{ run_hooks(post_hooks, inside_transaction=True) }}
        {% do adapter.commit() %}
        {{ run_hooks(post_hooks, inside_transaction=False) }}
        {{ return({'relations': [pending]}) }}
    {%- endif -%}

    {#- the online path: the same statement for one key, derived fresh. SECURITY DEFINER with search_path
        pg_catalog, pg_temp (every relation and type in it is schema-qualified, so nothing another role can
        create in the application's schema is ever picked up): the application role calls it with EXECUTE
        alone (macros/grants.sql). EXECUTE only where the model says `online=true`.
        Its body is not analysed on creation
        (check_function_bodies off, as pg_dump restores functions): analysing the UPDATE would take the target's
        ROW EXCLUSIVE lock, and wait behind any application DDL; the batches run the very same statement. -#}
    {% call statement('apply_function') -%}
        set local check_function_bodies = off;
        create or replace function {{ apply_fn }}(p_key text, p_source text default 'online')
        returns setof jsonb
        language sql
        volatile
        security definer
        set search_path = pg_catalog, pg_temp
        as $csinfra_apply$
        with
        batch as (
            select
                model.*,
                {{ writeback_changed_predicate('model', columns) }} as has_changes
            from ({{ sql }}) as model
            where model.{{ csinfra_ident(key) }} = p_key
        ),
        {{ writeback_update_ctes(ctx, 'batch', "batch.has_changes", 'p_source') }}
        select to_jsonb(batch) || jsonb_build_object('written', exists (
            select from written where written.key = batch.{{ csinfra_ident(key) }}
        ))
        from batch
        $csinfra_apply$;
        {{ csinfra_function_grants(apply_fn ~ '(text, text)', config.get('online', false)) }}
    {%- endcall %}

    {#- one batch, as a function: the keyset bound, the locked and guarded UPDATE, its audit rows, the log -#}
    {% call statement('batch_function') -%}
        {{ writeback_batch_function(ctx, batch_fn, pending, skipped_rel, log_rel, s) }}
    {%- endcall %}
    {% do adapter.commit() %}

    {#- 2.–4. the batches, then the retry passes over what was skipped -#}
    {%- set run = namespace(size=(s.fixed_size if s.fixed_size is not none else s.start_rows), written=0, audited=0,
                            batches=0, timeouts=0, backoffs=0, retried=0, remaining=0, over_time=0) -%}
    {{ writeback_batches(ctx, batch_fn, pending, target_rel, s, run, 'backfill') }}
    {%- set written_first_pass = run.written -%}
    {%- for attempt in range(s.retry_passes) -%}
        {%- set waiting = csinfra_query("select count(*) from " ~ skipped_rel).columns[0].values()[0] | int -%}
        {%- if waiting > 0 -%}
            {#- give the application's transactions a moment, then derive the skipped rows fresh -#}
            {%- do csinfra_query('select pg_sleep(' ~ (s.target_ms / 1000.0) ~ ')') -%}
            {% call statement('rederive') -%}
                truncate {{ pending }};
                insert into {{ pending }}
                select
                    {%- for col in pending_columns %}
                    model.{{ csinfra_ident(col) }}{{ ',' if not loop.last }}
                    {%- endfor %}
                from ({{ sql }}) as model
                where {{ writeback_changed_predicate('model', columns) }}
                    and model.{{ csinfra_ident(key) }} in (select {{ csinfra_ident(key) }} from {{ skipped_rel }});
                truncate {{ skipped_rel }};
                analyze {{ pending }};
            {%- endcall %}
            {% do adapter.commit() %}
            {{ writeback_batches(ctx, batch_fn, pending, target_rel, s, run, 'backfill_retry') }}
        {%- endif -%}
    {%- endfor -%}
    {%- set still_skipped = csinfra_query("select count(*) from " ~ skipped_rel).columns[0].values()[0] | int -%}

    {% call statement('main') -%}
        update {{ log_rel }}
        set finished_at = clock_timestamp(), status = 'done', retried = {{ run.written - written_first_pass }},
            written = {{ written_first_pass }}, skipped = {{ still_skipped }}, audit_rows = {{ run.audited }},
            batches = {{ run.batches }}
        where invocation_id = {{ csinfra_quote(invocation_id) }} and model = {{ csinfra_quote(this.identifier) }};
        select pg_advisory_unlock({{ writeback_lock_key(target_rel) }});
    {%- endcall %}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {% do adapter.commit() %}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [pending]}) }}
{% endmaterialization %}


{#- The write-back's settings: the writeback_* dbt vars (their defaults are in dbt_project.yml, the one place),
    each overridden by the same key in the JSON object in env var CSINFRA_WRITEBACK_SETTINGS (how `csinfra
    backfill` passes its options: read here, while the model runs, it leaves dbt's partial parse intact, where a
    change of --vars makes dbt parse everything). Checked once per model. -#}
{% macro writeback_settings() %}
    {%- set known = [
        'writeback_batch_size', 'writeback_batch_target_ms', 'writeback_batch_min_rows', 'writeback_batch_max_rows',
        'writeback_batch_start_rows', 'writeback_batch_max_ms', 'writeback_lock_timeout', 'writeback_max_lock_timeouts',
        'writeback_pause_seconds', 'writeback_retry_passes', 'writeback_wait_seconds', 'writeback_dry_run',
        'writeback_max_replica_lag_seconds',
    ] -%}
    {%- set v = {} -%}
    {%- for name in known -%}{%- do v.update({name: var(name)}) -%}{%- endfor -%}
    {%- set overrides_text = env_var('CSINFRA_WRITEBACK_SETTINGS', '') | trim -%}
    {%- if overrides_text -%}
        {%- set overrides = fromjson(overrides_text) -%}
        {%- if overrides is not mapping -%}
            {{ exceptions.raise_compiler_error("[csinfra] CSINFRA_WRITEBACK_SETTINGS must be a JSON object of writeback_* settings") }}
        {%- endif -%}
        {%- for name in overrides -%}
            {%- if name not in known -%}
                {{ exceptions.raise_compiler_error("[csinfra] CSINFRA_WRITEBACK_SETTINGS: unknown setting " ~ name
                    ~ " (known: " ~ (known | join(', ')) ~ ")") }}
            {%- endif -%}
        {%- endfor -%}
        {%- do v.update(overrides) -%}
    {%- endif -%}
    {%- set fixed = v.writeback_batch_size -%}
    {%- set target_ms = csinfra_number(v.writeback_batch_target_ms, 'writeback_batch_target_ms', 1, 3600000) -%}
    {%- set max_rows = csinfra_number(v.writeback_batch_max_rows, 'writeback_batch_max_rows', 1, 10000000, integer=true) -%}
    {%- set settings = {
        'fixed_size': csinfra_number(fixed, 'writeback_batch_size', 1, 10000000, integer=true) if fixed is not none else none,
        'target_ms': target_ms,
        'max_ms': csinfra_number(v.writeback_batch_max_ms, 'writeback_batch_max_ms', target_ms, 86400000)
                  if v.writeback_batch_max_ms is not none else 4 * target_ms,
        'min_rows': csinfra_number(v.writeback_batch_min_rows, 'writeback_batch_min_rows', 1, max_rows, integer=true),
        'max_rows': max_rows,
        'start_rows': csinfra_number(v.writeback_batch_start_rows, 'writeback_batch_start_rows', 1, max_rows, integer=true),
        'lock_timeout': csinfra_duration(v.writeback_lock_timeout, 'writeback_lock_timeout'),
        'max_timeouts': csinfra_number(v.writeback_max_lock_timeouts, 'writeback_max_lock_timeouts', 1, 1000000, integer=true),
        'pause': csinfra_number(v.writeback_pause_seconds, 'writeback_pause_seconds', 0, 3600),
        'retry_passes': csinfra_number(v.writeback_retry_passes, 'writeback_retry_passes', 0, 100, integer=true),
        'wait_seconds': csinfra_number(v.writeback_wait_seconds, 'writeback_wait_seconds', 0, 86400),
        'dry_run': (v.writeback_dry_run | string | lower) in ('true', '1', 'yes'),
        'max_lag': csinfra_number(v.writeback_max_replica_lag_seconds, 'writeback_max_replica_lag_seconds', 0, 86400)
                   if v.writeback_max_replica_lag_seconds is not none else none,
    } -%}
    {%- if not (settings.min_rows <= settings.start_rows) -%}
        {{ exceptions.raise_compiler_error("[csinfra] need writeback_batch_min_rows <= writeback_batch_start_rows "
            ~ "<= writeback_batch_max_rows") }}
    {%- endif -%}
    {{ return(settings) }}
{% endmacro %}


{#- The run log (one row per run and model), created once. -#}
{% macro writeback_log_ddl(log_rel) %}
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
        alter table {{ log_rel }} add column if not exists pid integer;
        alter table {{ log_rel }} add column if not exists dry_run boolean not null default false;
        alter table {{ log_rel }} add column if not exists preview jsonb;
        alter table {{ log_rel }} add column if not exists lock_timeouts integer not null default 0;
        alter table {{ log_rel }} add column if not exists backoffs integer not null default 0;
        alter table {{ log_rel }} add column if not exists over_time integer not null default 0;
    {%- endcall %}
    {% do adapter.commit() %}
{% endmacro %}


{#- One runner per target table: a session-level advisory lock on this connection. Waits up to `wait_seconds`
    for another run, then stops with one line naming it. -#}
{% macro writeback_lock_key(target_rel) -%}
    hashtext('csinfra.writeback'), hashtext({{ csinfra_quote(target_rel) }})
{%- endmacro %}

{% macro writeback_acquire(target_rel, log_rel, wait_seconds) %}
    {%- set polls = ((wait_seconds / 0.5) | round(0, 'ceil') | int) -%}
    {%- set lock = namespace(got=false) -%}
    {%- for attempt in range(polls + 1) if not lock.got -%}
        {%- if attempt > 0 -%}{%- do csinfra_query('select pg_sleep(0.5)') -%}{%- endif -%}
        {%- set lock.got = csinfra_query('select pg_try_advisory_lock(' ~ writeback_lock_key(target_rel) ~ ')').columns[0].values()[0] -%}
        {% do adapter.commit() %}
    {%- endfor -%}
    {%- if not lock.got -%}
        {%- set holder = csinfra_query(
            "select coalesce((select 'pid ' || l.pid || coalesce(' (' || a.application_name || ')', '') from pg_locks l "
            ~ "left join pg_stat_activity a on a.pid = l.pid where l.locktype = 'advisory' and l.granted "
            ~ "and l.classid = (hashtext('csinfra.writeback')::bigint & 4294967295)::oid "
            ~ "and l.objid = (hashtext(" ~ csinfra_quote(target_rel) ~ ")::bigint & 4294967295)::oid limit 1), 'another session') "
            ~ "|| coalesce((select ', started ' || to_char(started_at, 'YYYY-MM-DD HH24:MI:SS') || ', ' || status || ', '"
            ~ " || written || ' of ' || coalesce(candidates::text, '?') || ' rows written' from " ~ log_rel
            ~ " where target_table = " ~ csinfra_quote(target_rel | replace('\"', '')) ~ " and finished_at is null"
            ~ " order by started_at desc limit 1), '')"
        ).columns[0].values()[0] -%}
        {{ exceptions.raise_compiler_error("[csinfra] another backfill is writing " ~ (target_rel | replace('"', ''))
            ~ ": " ~ holder ~ "; waited " ~ wait_seconds ~ "s (--wait SECONDS, dbt var writeback_wait_seconds, waits longer)") }}
    {%- endif -%}
{% endmacro %}



{#- "stored values differ from derived ones" for the configured columns -#}
{% macro writeback_changed_predicate(alias, columns) -%}
    {%- set stored, derived = [], [] -%}
    {%- for model_col in columns.values() -%}
        {%- do stored.append(alias ~ '.' ~ csinfra_ident('stored_' ~ model_col)) -%}
        {%- do derived.append(alias ~ '.' ~ csinfra_ident(model_col)) -%}
    {%- endfor -%}
    {{ any_distinct(stored, derived) }}
{%- endmacro %}


{#- The guarded UPDATE and its audit rows, as CTEs named `written` and `audited`, over `source`.
    With `locked` (a CTE of keys this statement holds FOR NO KEY UPDATE), only those rows are written. -#}
{% macro writeback_update_ctes(ctx, source, where, source_label, locked=none) -%}
    written as (
        update {{ ctx.target_rel }} as t
        set
            {%- for target_col, model_col in ctx.columns.items() %}
            {{ csinfra_ident(target_col) }} = {{ source }}.{{ csinfra_ident(model_col) }}::{{ ctx.types[target_col] }}{{ ',' if not loop.last }}
            {%- endfor %}
        from {{ source }}
        {%- if locked %}
        join {{ locked }} on {{ locked }}.key = {{ source }}.{{ csinfra_ident(ctx.key) }}
        {%- endif %}
        where
            t.{{ csinfra_ident(ctx.target_key) }} = {{ source }}.{{ csinfra_ident(ctx.key) }}
            and t.xmin = {{ source }}.row_version
            and {{ where }}
        returning
            t.{{ csinfra_ident(ctx.target_key) }} as key
            {%- if ctx.audit %},
            {{ source }}.{{ csinfra_ident('stored_' ~ ctx.columns[ctx.audit.column]) }}::text as audit_from,
            {{ source }}.{{ csinfra_ident(ctx.columns[ctx.audit.column]) }}::text as audit_to
            {%- endif %}
    ),
    audited as (
        {%- if ctx.audit %}
        insert into {{ csinfra_ident(ctx.app) }}.audit_logs
            (id, action, "actorType", "actorId", "targetType", "targetId", metadata, "createdAt")
        select
            {{ csinfra_new_id('written.key') }},
            {{ csinfra_quote(ctx.audit.action) }},
            'system',
            'system',
            {{ csinfra_quote(ctx.audit.target_type) }},
            written.key,
            jsonb_strip_nulls(jsonb_build_object(
                'from', written.audit_from,
                'to', written.audit_to,
                'field', {{ csinfra_quote(ctx.audit.column) }},
                'source', {{ source_label }},
                'runId', case when {{ source_label }} like 'backfill%' then {{ csinfra_quote(invocation_id) }} end
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


{#- One batch as a PL/pgSQL function: the next `p_limit` keys after `p_after`, locked with SKIP LOCKED (never
    waiting on the application's rows), written under the row-version guard, audited, logged; the keys it could
    not write go to the skipped table. A lock_timeout (a table lock it could not get) rolls the batch back and
    reports timed_out. With a lagging replica it does nothing and reports lagging. -#}
{% macro writeback_batch_function(ctx, batch_fn, pending, skipped_rel, log_rel, s) -%}
    {%- set k = csinfra_ident(ctx.key) -%}
    drop function if exists {{ batch_fn }}(text, integer, text);
    create function {{ batch_fn }}(p_after text, p_limit integer, p_source text)
    returns table (o_upper_key text, o_batch_rows bigint, o_written_rows bigint, o_audit_rows bigint, o_skipped_rows bigint,
                   o_timed_out boolean, o_lagging boolean, o_over_time boolean)
    language plpgsql
    -- plan each batch for its own key range: a generic plan (PL/pgSQL's after five calls) cannot know how
    -- many rows the range holds, and one bad plan is one long batch holding its row locks
    set plan_cache_mode = force_custom_plan
    as $csinfra_batch$
    #variable_conflict use_column
    declare
        v_upper text;
        v_rows bigint := 0;
        v_written bigint := 0;
        v_audited bigint := 0;
        v_skipped bigint := 0;
        v_outcome text := 'done';  -- done | lock_timeout | over_time
    begin
        {%- if s.max_lag is not none %}
        if coalesce((select max(extract(epoch from replay_lag)) from pg_stat_replication), 0) > {{ s.max_lag | float }} then
            update {{ log_rel }} set backoffs = backoffs + 1
            where invocation_id = {{ csinfra_quote(invocation_id) }} and model = {{ csinfra_quote(this.identifier) }};
            return query select p_after, 0::bigint, 0::bigint, 0::bigint, 0::bigint, false, true, false;
            return;
        end if;
        {%- endif %}
        -- the whole batch in one protected block whose results are kept in variables and returned after it:
        -- when the block is rolled back (a lock timeout, the time cap), no result of the work it undid can
        -- have been returned already (RETURN QUERY appends rows at once, and the CTEs nobody reads run at
        -- the very end of their statement)
        begin
            select max(b.k) into v_upper
            from (select {{ k }} as k from {{ pending }} where {{ k }} > p_after order by {{ k }} limit p_limit) as b;
            if v_upper is not null then
                perform set_config('lock_timeout', {{ csinfra_quote(s.lock_timeout) }}, true);
                {{ writeback_batch_statement(ctx, pending, skipped_rel, log_rel) | indent(16) }}
            end if;
        exception
            when lock_not_available then
                v_outcome := 'lock_timeout';
                v_rows := 0; v_written := 0; v_audited := 0; v_skipped := 0;
                update {{ log_rel }} set lock_timeouts = lock_timeouts + 1
                where invocation_id = {{ csinfra_quote(invocation_id) }} and model = {{ csinfra_quote(this.identifier) }};
            when query_canceled then
                -- the batch ran into the statement_timeout its caller set (writeback_batch_max_ms, the safety
                -- net): rolled back, its row locks released. Any other cancel (an operator's
                -- pg_cancel_backend) stops the run.
                if clock_timestamp() - statement_timestamp() < interval '{{ (s.max_ms * 0.9) | round(3) }} milliseconds' then
                    raise;
                end if;
                v_outcome := 'over_time';
                v_rows := 0; v_written := 0; v_audited := 0; v_skipped := 0;
                update {{ log_rel }} set over_time = over_time + 1
                where invocation_id = {{ csinfra_quote(invocation_id) }} and model = {{ csinfra_quote(this.identifier) }};
        end;
        -- nothing else after the block: the timer can still strike in what follows, failing the run (nothing
        -- written by this batch, so a rerun resumes); the safety net sits far above the target, so a batch
        -- only ends this close to it when it is pathologically slow anyway
        return query select v_upper, v_rows, v_written, v_audited, v_skipped,
                            v_outcome = 'lock_timeout', false, v_outcome = 'over_time';
    end;
    $csinfra_batch$;
{%- endmacro %}


{#- One batch's statement (inside writeback_batch_function): lock the rows of the key range p_after..v_upper
    that still have the version the work table derived from, write them and their audit rows, remember
    the rest for a fresh retry, advance the run log; the counts go INTO the function's variables. -#}
{% macro writeback_batch_statement(ctx, pending, skipped_rel, log_rel) -%}
    {%- set k = csinfra_ident(ctx.key) -%}
        with
        batch as (
            select * from {{ pending }} where {{ k }} > p_after and {{ k }} <= v_upper
        ),
        locked as (
            select t.{{ csinfra_ident(ctx.target_key) }} as key
            from {{ ctx.target_rel }} as t
            join batch on t.{{ csinfra_ident(ctx.target_key) }} = batch.{{ k }} and t.xmin = batch.row_version
            for no key update of t skip locked
        ),
        {{ writeback_update_ctes(ctx, 'batch', 'true', 'p_source', locked='locked') }},
        skipped as (
            insert into {{ skipped_rel }} ({{ k }})
            select batch.{{ k }} from batch
            where not exists (select from written where written.key = batch.{{ k }})
            on conflict do nothing
            returning 1
        ),
        logged as (  -- a data-modifying CTE runs whether or not it is read
            update {{ log_rel }}
            set written = written + (select count(*) from written), audit_rows = audit_rows + (select count(*) from audited),
                batches = batches + 1, batch_size = p_limit
            where invocation_id = {{ csinfra_quote(invocation_id) }} and model = {{ csinfra_quote(this.identifier) }}
            returning 1
        )
        select (select count(*) from batch), (select count(*) from written), (select count(*) from audited),
               (select count(*) from skipped)
        into v_rows, v_written, v_audited, v_skipped;
{%- endmacro %}


{#- The batch loop over the work table, sizes adapted to the target duration. `run` (a namespace) carries the
    size and the counts across calls. Jinja has no while loop: two nested loops of 2000 allow four million
    batches (the smallest batch is writeback_batch_min_rows), and cost little once done. -#}
{% macro writeback_batches(ctx, batch_fn, pending, target_rel, s, run, source_label) %}
    {%- set loop_state = namespace(after='', done=false, timeouts_in_a_row=0) -%}
    {%- for _outer in range(2000) if not loop_state.done -%}
    {%- for _ in range(2000) if not loop_state.done -%}
        {%- set t0 = modules.datetime.datetime.now() -%}
        {#- the safety net: a batch sized by time may not hold its row locks past writeback_batch_max_ms (4x the
            target): one that would is cancelled (rolled back) and tried again at half the size; at the minimum
            size it runs uncapped -#}
        {%- set capped = s.fixed_size is none and run.size > s.min_rows -%}
        {%- set r = csinfra_query(
            ("set local statement_timeout = " ~ csinfra_quote((s.max_ms | round(3)) ~ 'ms') ~ "; " if capped else "")
            ~ "select * from " ~ batch_fn ~ "(" ~ csinfra_quote(loop_state.after) ~ ", "
            ~ run.size ~ ", " ~ csinfra_quote(source_label) ~ ")").rows[0] -%}
        {% do adapter.commit() %}
        {%- set elapsed_ms = (modules.datetime.datetime.now() - t0).total_seconds() * 1000 -%}
        {%- if r[7] -%}
            {#- over time (cancelled, nothing written): the same range again at once, half the size -#}
            {%- set run.over_time = run.over_time + 1 -%}
            {%- set run.size = [s.min_rows, run.size // 2] | max -%}
        {%- elif r[6] -%}
            {#- a replica lags: wait a second, then try the same range again -#}
            {%- set run.backoffs = run.backoffs + 1 -%}
            {%- do csinfra_query('select pg_sleep(1)') -%}
            {% do adapter.commit() %}
        {%- elif r[5] -%}
            {#- a table lock not granted within lock_timeout: give way, smaller, after a growing pause -#}
            {%- set run.timeouts = run.timeouts + 1 -%}
            {%- set loop_state.timeouts_in_a_row = loop_state.timeouts_in_a_row + 1 -%}
            {%- if loop_state.timeouts_in_a_row >= s.max_timeouts -%}
                {{ writeback_raise_lock_timeouts(target_rel, loop_state.after, r[0], run, s) }}
            {%- endif -%}
            {%- if s.fixed_size is none -%}{%- set run.size = [s.min_rows, run.size // 2] | max -%}{%- endif -%}
            {%- do csinfra_query('select pg_sleep(' ~ ([0.05 * (2 ** (loop_state.timeouts_in_a_row - 1)), 2.0] | min) ~ ')') -%}
            {% do adapter.commit() %}
        {%- elif r[0] is none -%}
            {%- set loop_state.done = true -%}
        {%- else -%}
            {%- set loop_state.timeouts_in_a_row = 0 -%}
            {%- set loop_state.after = r[0] -%}
            {%- set run.written = run.written + (r[2] | int) -%}
            {%- set run.audited = run.audited + (r[3] | int) -%}
            {%- set run.batches = run.batches + 1 -%}
            {%- if s.fixed_size is none -%}
                {#- aim at the target duration: grow by half at most, shrink to half at least, within the bounds -#}
                {%- set factor = [[s.target_ms / ([elapsed_ms, 1.0] | max), 0.5] | max, 1.5] | min -%}
                {%- set run.size = [[(run.size * factor) | int, s.min_rows] | max, s.max_rows] | min -%}
            {%- endif -%}
            {%- if s.pause > 0 -%}
                {%- do csinfra_query('select pg_sleep(' ~ s.pause ~ ')') -%}
                {% do adapter.commit() %}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {%- endfor -%}
{% endmacro %}


{#- After too many lock timeouts in a row: one line naming the table, the key range and who holds its locks. -#}
{% macro writeback_raise_lock_timeouts(target_rel, after, upper, run, s) %}
    {%- set holders = csinfra_query(
        "select coalesce(string_agg(format('pid %s holds %s (%s%s)', l.pid, l.mode, coalesce(a.state, '?'), "
        ~ "coalesce(', transaction open ' || extract(epoch from now() - a.xact_start)::int || 's', '')), '; '), "
        ~ "'no lock holder seen any more') from pg_locks l left join pg_stat_activity a on a.pid = l.pid "
        ~ "where l.relation = " ~ csinfra_quote(target_rel) ~ "::regclass and l.granted and l.pid <> pg_backend_pid()"
    ).columns[0].values()[0] -%}
    {{ exceptions.raise_compiler_error("[csinfra] the write-back of " ~ (target_rel | replace('"', ''))
        ~ " could not lock its batch of keys after '" ~ after ~ "'" ~ (" up to '" ~ upper ~ "'" if upper else "")
        ~ " within lock_timeout=" ~ s.lock_timeout ~ ", " ~ s.max_timeouts ~ " times in a row: " ~ holders
        ~ "; the " ~ run.written ~ " rows written so far are kept, rerun to resume") }}
{% endmacro %}


{#- The dry run's report, from the work table: per column, rows that change, get a first value or lose one;
    the from→to transitions of `preview.transitions`; the elements added to and removed from the JSON arrays
    of `preview.elements`. Keyed by the application's column names. -#}
{% macro writeback_preview_sql(pending, ctx, preview) -%}
    jsonb_build_object(
        'rows', (select count(*) from {{ pending }}),
        'columns', jsonb_build_object(
            {%- for target_col, model_col in ctx.columns.items() %}
            {{ csinfra_quote(target_col) }}, (
                select jsonb_build_object(
                    'changed', count(*) filter (where p.{{ csinfra_ident('stored_' ~ model_col) }} is distinct from p.{{ csinfra_ident(model_col) }}),
                    'set', count(*) filter (where p.{{ csinfra_ident('stored_' ~ model_col) }} is null and p.{{ csinfra_ident(model_col) }} is not null),
                    'cleared', count(*) filter (where p.{{ csinfra_ident('stored_' ~ model_col) }} is not null and p.{{ csinfra_ident(model_col) }} is null)
                ) from {{ pending }} as p
            ){{ ',' if not loop.last }}
            {%- endfor %}
        ),
        'transitions', jsonb_build_object(
            {%- for target_col in preview.get('transitions', []) %}
            {%- set model_col = ctx.columns[target_col] %}
            {{ csinfra_quote(target_col) }}, (
                select coalesce(jsonb_object_agg(transition, n), '{}'::jsonb) from (
                    select coalesce(p.{{ csinfra_ident('stored_' ~ model_col) }}::text, 'null') || ' -> '
                           || coalesce(p.{{ csinfra_ident(model_col) }}::text, 'null') as transition, count(*) as n
                    from {{ pending }} as p
                    where p.{{ csinfra_ident('stored_' ~ model_col) }} is distinct from p.{{ csinfra_ident(model_col) }}
                    group by 1
                ) as t
            ){{ ',' if not loop.last }}
            {%- endfor %}
        ),
        'elements', jsonb_build_object(
            {%- for target_col in preview.get('elements', []) %}
            {%- set model_col = ctx.columns[target_col] %}
            {{ csinfra_quote(target_col) }}, jsonb_build_object(
                'added', (select coalesce(jsonb_object_agg(e, n), '{}'::jsonb) from (
                    select e, count(*) as n from {{ pending }} as p
                    cross join lateral jsonb_array_elements_text(p.{{ csinfra_ident(model_col) }}) as e
                    where not coalesce(p.{{ csinfra_ident('stored_' ~ model_col) }}, '[]'::jsonb) @> to_jsonb(e)
                    group by e) as a),
                'removed', (select coalesce(jsonb_object_agg(e, n), '{}'::jsonb) from (
                    select e, count(*) as n from {{ pending }} as p
                    cross join lateral jsonb_array_elements_text(
                        case when jsonb_typeof(p.{{ csinfra_ident('stored_' ~ model_col) }}) = 'array'
                             then p.{{ csinfra_ident('stored_' ~ model_col) }} else '[]'::jsonb end) as e
                    where not coalesce(p.{{ csinfra_ident(model_col) }}, '[]'::jsonb) @> to_jsonb(e)
                    group by e) as r)
            ){{ ',' if not loop.last }}
            {%- endfor %}
        )
    )
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
