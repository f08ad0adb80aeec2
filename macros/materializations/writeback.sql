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
