{#- The SQL the write-back materialization (macros/materializations/writeback.sql) runs: which rows differ, the
    batch function and statement, the batch loop, the dry run's preview. -#}

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
