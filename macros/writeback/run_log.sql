{#- The run log (one row per run and model), created once. `csinfra backfill` polls it for progress; the
    on-run-end audit row sums it. -#}
{% macro writeback_log_ddl(log_rel) %}
    {% call statement('writeback_log') -%}
        create table if not exists {{ log_rel }} (
            invocation_id text not null,
            model text not null,
            target_table text not null,
            started_at timestamptz not null default clock_timestamp(),
            finished_at timestamptz,
            status text not null default 'deriving',
            scanned bigint,
            candidates bigint,
            written bigint not null default 0,
            skipped bigint not null default 0,
            retried bigint not null default 0,
            audit_rows bigint not null default 0,
            batches integer not null default 0,
            batch_size integer not null,
            derive_ms bigint,
            pid integer,
            dry_run boolean not null default false,
            preview jsonb,
            lock_timeouts integer not null default 0,
            backoffs integer not null default 0,
            over_time integer not null default 0,
            primary key (invocation_id, model)
        );
        comment on table {{ log_rel }} is
            'One row per write-back run and model (macros/writeback/run_log.sql): progress, counts, the dry run''s preview.';
    {%- endcall %}
    {% do adapter.commit() %}
{% endmacro %}


{#- The advisory lock key of one target table (two int4: the write-back's namespace and the table's name). -#}
{% macro writeback_lock_key(target_rel) -%}
    hashtext('csinfra.writeback'), hashtext({{ csinfra_quote(target_rel) }})
{%- endmacro %}

{#- One runner per target table: a session-level advisory lock on this connection. Waits up to `wait_seconds`
    for another run, then stops with one line naming it (pid, start, progress from the run log). -#}
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
