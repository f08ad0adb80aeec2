{#- The change marker of the incremental marts built from the application's mutable rows.

    A mart such as dim_creators or fct_offer_funnel derives each row from rows the application (and the
    write-back, and anyone with SQL) updates in place. Their `updatedAt` is not a change marker: the
    write-back sets trust tiers and readiness without touching it, and so does a fix by hand. PostgreSQL's
    own row version is one: every insert and update gives the new row version the writing transaction's
    id (`xmin`), whoever wrote it. So each incremental mart records, in {{ target.schema }}.incremental_marks,
    the snapshot its build began with (`pg_current_snapshot()`: which transactions it could see). The next
    build recomputes exactly the keys with a source row written by a transaction that snapshot could not
    see (`pg_visible_in_snapshot`), and deletes the keys whose source rows are gone; a full refresh
    recomputes everything.

    Conservative by construction: the snapshot is taken before the build reads, so a transaction that
    commits in between counts as new next time (its rows are re-derived once more, never missed); a
    transaction still running then is in the snapshot's in-progress list and counts as new too, while
    everything that committed around it does not (a long transaction elsewhere does not make the next build
    a full one); a mart with no mark recomputes every key. The 32-bit `xmin` is widened to 64 bits against
    the current snapshot's xmax, exact while fewer than 2^31 transactions separate two builds (a longer gap
    makes old rows look new: more work, not wrong results). PostgreSQL only: on Spark the marts are rebuilt
    whole (`csinfra_mutable_materialization`). -#}


{#- The materialization of a mart derived from mutable rows: incremental (delete+insert on its key, driven by
    the change marks) on PostgreSQL, a table rebuilt whole on Spark, whose lake has no row versions. -#}
{% macro csinfra_mutable_materialization() -%}
    {{ return('incremental' if target.type == 'postgres' else 'table') }}
{%- endmacro %}


{#- The table of change marks, one row per incremental mart (csinfra_change_marks_ddl creates it). -#}
{% macro csinfra_change_marks_relation() -%}
    {{ return(adapter.quote(target.schema) ~ '.' ~ adapter.quote('incremental_marks')) }}
{%- endmacro %}


{#- on-run-start: the table of change marks, created once before any model runs (the marts built in parallel would
    race to create it), in its own transaction. -#}
{% macro csinfra_change_marks_ddl() %}
    {%- if not execute or target.type != 'postgres' -%}{{ return('') }}{%- endif -%}
    {% call statement('change_marks_ddl') -%}
        create schema if not exists {{ csinfra_ident(target.schema) }};
        create table if not exists {{ csinfra_change_marks_relation() }} (
            model text primary key,
            snapshot pg_snapshot,
            pending_snapshot pg_snapshot,
            built_at timestamptz,
            full_refresh boolean,
            as_of timestamp,
            pending_as_of timestamp,
            changed_xid xid8,
            census_rows bigint,
            census_keys text[]
        );
        do $marks$
        declare
            wanted constant text[][] := array[
                ['as_of', 'timestamp'], ['pending_as_of', 'timestamp'], ['changed_xid', 'xid8'],
                ['census_rows', 'bigint'], ['census_keys', 'text[]']
            ];
            description constant text :=
                'What each incremental mart was last built from (macros/marts/change_marks.sql): the snapshot and the as-of of its last build, the transaction of its last build that changed a row (changed_xid), and, during a build, what it read of its application table (census_rows, census_keys).';
            i int;
        begin
            -- a marks table from an older version: each column it lacks is added once (the lock only then)
            for i in 1 .. array_length(wanted, 1) loop
                if not exists (
                    select from pg_attribute
                    where
                        attrelid = {{ csinfra_quote(csinfra_change_marks_relation()) }}::regclass
                        and attname = wanted[i][1] and not attisdropped
                ) then
                    execute format(
                        'alter table %s add column %I %s',
                        {{ csinfra_quote(csinfra_change_marks_relation()) }}, wanted[i][1], wanted[i][2]
                    );
                end if;
            end loop;
            -- its comment, written only when it differs (COMMENT takes the lock autovacuum holds)
            if obj_description({{ csinfra_quote(csinfra_change_marks_relation()) }}::regclass, 'pg_class')
                is distinct from description then
                execute format('comment on table %s is %L', {{ csinfra_quote(csinfra_change_marks_relation()) }}, description);
            end if;
        end $marks$;
    {%- endcall %}
    {% do adapter.commit() %}
{% endmacro %}


{#- Pre-hook of a mart built from mutable rows: note the mark of this build (the snapshot it starts from, and the
    moment it describes, var marts_as_of) as pending. The model's own SQL still reads the previous mark; the post-hook
    makes the pending one current, in the same transaction as the build, so a failed build keeps the previous mark. -#}
{% macro csinfra_change_mark_begin() -%}
    {%- if target.type != 'postgres' -%}{{ return('') }}{%- endif -%}
    insert into {{ csinfra_change_marks_relation() }} (model, pending_snapshot, pending_as_of)
    values ({{ csinfra_quote(this.identifier) }}, pg_current_snapshot(), {{ marts_as_of() }})
    on conflict (model) do update
    set pending_snapshot = excluded.pending_snapshot, pending_as_of = excluded.pending_as_of
{%- endmacro %}


{#- Post-hook: the pending mark becomes the mart's mark (see csinfra_change_mark_begin), and the build's transaction
    becomes the mart's changed_xid when it changed a row (csinfra_wrote_rows). -#}
{% macro csinfra_change_mark_commit() -%}
    {%- if target.type != 'postgres' -%}{{ return('') }}{%- endif -%}
    update {{ csinfra_change_marks_relation() }}
    set
        snapshot = pending_snapshot,
        pending_snapshot = null,
        as_of = pending_as_of,
        pending_as_of = null,
        built_at = clock_timestamp(),
        full_refresh = {{ 'false' if is_incremental() else 'true' }},
        changed_xid = case when {{ csinfra_wrote_rows() }} then pg_current_xact_id() else changed_xid end,
        census_keys = null
    where model = {{ csinfra_quote(this.identifier) }}
{%- endmacro %}


{#- Pre-hook of an incremental mart whose keys are those of an application table (`source`, its staging view), after
    csinfra_change_mark_begin: one read of the table records, in the mart's marks row, both things the build needs
    from it, the keys (`key`) of its rows written since the mart's mark (csinfra_census_keys) and the number of keys
    the mart must hold, the rows where `universe_filter` holds (csinfra_census_rows, the expected count of
    csinfra_delete_vanished). Otherwise the build reads the table twice, once for each: on a table of millions of
    rows, each read costs seconds, and the count runs inside the vanished-row DELETE, where PostgreSQL plans no
    parallel scan. In the build's transaction: a failed build leaves nothing; the mark's commit clears the keys. -#}
{% macro csinfra_census_begin(source, key, universe_filter='true') -%}
    {%- if target.type != 'postgres' or not is_incremental() -%}{{ return('') }}{%- endif -%}
    update {{ csinfra_change_marks_relation() }} as marks
    set census_rows = census.universe_rows, census_keys = census.changed_keys
    from (
        select
            count(*) filter (where {{ universe_filter }}) as universe_rows,
            coalesce(
                array_agg({{ key }}::text) filter (where {{ csinfra_changed_since_mark('row_version') }}), '{}'
            ) as changed_keys
        from {{ source }}
    ) as census
    where marks.model = {{ csinfra_quote(this.identifier) }}
{%- endmacro %}


{#- A select of the keys csinfra_census_begin found written since the mart's mark, as column `key_name`. -#}
{% macro csinfra_census_keys(key_name) -%}
    select unnest(marks.census_keys) as {{ key_name }}
    from {{ csinfra_change_marks_relation() }} as marks
    where marks.model = {{ csinfra_quote(this.identifier) }}
{%- endmacro %}


{#- A select of the number of keys csinfra_census_begin counted (the expected rows of csinfra_delete_vanished). -#}
{% macro csinfra_census_rows() -%}
    select marks.census_rows
    from {{ csinfra_change_marks_relation() }} as marks
    where marks.model = {{ csinfra_quote(this.identifier) }}
{%- endmacro %}


{#- Post-hook of an incremental model that keeps no mark of its own (the event models): record its build's
    transaction as its changed_xid when the build changed a row, for the marts downstream
    (csinfra_upstream_changed). -#}
{% macro csinfra_change_mark_record() -%}
    {%- if target.type != 'postgres' -%}{{ return('') }}{%- endif -%}
    insert into {{ csinfra_change_marks_relation() }} as marks (model, changed_xid)
    values (
        {{ csinfra_quote(this.identifier) }},
        case when {{ csinfra_wrote_rows() }} then pg_current_xact_id() end
    )
    on conflict (model) do update
    set changed_xid = coalesce(excluded.changed_xid, marks.changed_xid)
{%- endmacro %}


{#- In a post-hook: true when this build inserted, updated or deleted a row of the model, from the transaction's own
    row counts (pg_stat_get_xact_tuples_*: this transaction's, exact, whatever the statistics collector has
    flushed). Always true in a full build, and when track_counts is off (then nothing is counted). -#}
{% macro csinfra_wrote_rows() -%}
    {%- if not is_incremental() -%}
        true
    {%- else -%}
        {%- set relation = csinfra_quote(csinfra_ident(this.schema) ~ '.' ~ csinfra_ident(this.identifier)) ~ '::regclass' -%}
        (
            current_setting('track_counts') is distinct from 'on'
            or pg_stat_get_xact_tuples_inserted({{ relation }})
            + pg_stat_get_xact_tuples_updated({{ relation }})
            + pg_stat_get_xact_tuples_deleted({{ relation }}) > 0
        )
    {%- endif -%}
{%- endmacro %}


{#- In an incremental run on PostgreSQL: whether any of `upstreams` (a list of models that record their changed_xid:
    the incremental marts and event models) may have changed a row since this mart's last build, i.e. whether the
    transaction of its last build that changed a row is one this mart's mark could not see. A test of the marks table
    alone: PostgreSQL evaluates it once, before the scan it guards (a one-time filter), so a mart whose upstream marts did
    not change reads none of their rows. True when an upstream has recorded no change yet, when this mart has no mark,
    and in a full build. What it guards must depend on nothing else: not on var marts_as_of (its models test that
    themselves) nor on a table the application writes. A mart written by anything but its own build (a fix by hand)
    is not seen as changed downstream: `--full-refresh` after such an edit. -#}
{% macro csinfra_upstream_changed(upstreams) -%}
    {%- if not is_incremental() or target.type != 'postgres' -%}
        true
    {%- else -%}
        (
            select count(*)
            from {{ csinfra_change_marks_relation() }} as upstream
            where
                upstream.model in (
                    {%- for relation in upstreams -%}
                        {{ csinfra_quote(relation.identifier) }}{{ ', ' if not loop.last }}
                    {%- endfor -%}
                )
                and pg_visible_in_snapshot(
                    upstream.changed_xid,
                    (
                        select mine.snapshot from {{ csinfra_change_marks_relation() }} as mine
                        where mine.model = {{ csinfra_quote(this.identifier) }}
                    )
                )
        ) < {{ upstreams | length }}
    {%- endif -%}
{%- endmacro %}


{#- In an incremental run of a mart built from mutable rows: true for a source row (its `row_version`, the row's
    xmin as staging exposes it) written by a transaction the mart's last build could not see; `true` in a
    full build. When the rows are another mart's (`upstream`, its relation), they are read only when that mart
    changed a row since (csinfra_upstream_changed). -#}
{% macro csinfra_changed_since_mark(row_version, upstream=none) -%}
    {%- if is_incremental() -%}
        {%- if upstream is not none %}
        /* a mart upstream: its rows are read only when it changed since (csinfra_upstream_changed) */
        {{ csinfra_upstream_changed([upstream]) }} and
        {%- endif %}
        /* rows older than the mark's oldest running transaction are settled (a cheap 32-bit test, age(), for most
           rows); the others are looked up in the mark's snapshot */
        case
            when age({{ row_version }}) > (
                select age((pg_snapshot_xmin(marks.snapshot)::text::bigint % 4294967296)::text::xid)
                from {{ csinfra_change_marks_relation() }} as marks
                where marks.model = {{ csinfra_quote(this.identifier) }}
            ) then false
            else not pg_visible_in_snapshot(
            (
                (select pg_snapshot_xmax(pg_current_snapshot())::text::bigint)
                - ((select pg_snapshot_xmax(pg_current_snapshot())::text::bigint % 4294967296)
                    - {{ row_version }}::text::bigint + 4294967296) % 4294967296
            )::text::xid8,
            coalesce(
                (
                    select marks.snapshot from {{ csinfra_change_marks_relation() }} as marks
                    where marks.model = {{ csinfra_quote(this.identifier) }}
                ),
                '1:1:'::pg_snapshot
            )
        )
        end
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}


{#- Post-hook of an incremental run: delete the mart's rows whose key (`this_key`) no longer has a row in
    `universe` (a select of the keys a full build would produce, as a column named `key`). delete+insert
    replaces the keys it recomputes; this removes the keys nothing recomputes any more (deleted source rows,
    rows that left the mart's scope). After delete+insert the mart holds every row a full build would (each
    key is either unchanged since the mark or was just recomputed), so it holds a vanished one exactly when it
    has more rows than a full build would: two counts decide, and the anti-join runs only then.
    `expected_rows` is a select of that number; by default the universe's size (one row per key). A report of one
    row per group compares the source rows it counts instead: `stored_rows` is then the sum of its count column
    (a vanished group still counts its rows, every other group counts exactly the source's). When the universe is
    read from other marts only (`upstreams`, their relations), nothing is counted unless one of them changed a row
    since this mart's last build (csinfra_upstream_changed): a key vanishes only when its upstream row does. -#}
{% macro csinfra_delete_vanished(this_key, universe, expected_rows=none, stored_rows='count(*)', upstreams=none) -%}
    {%- if target.type != 'postgres' or not is_incremental() -%}{{ return('') }}{%- endif -%}
    {%- set expected_rows = expected_rows or ('select count(*) from (' ~ universe ~ ') as everything') -%}
    delete from {{ this }} as kept
    where
        {% if upstreams %}{{ csinfra_upstream_changed(upstreams) }} and {% endif -%}
        (select {{ stored_rows }} from {{ this }}) > ({{ expected_rows }})
        and not exists (
            select 1 from ({{ universe }}) as universe
            where universe.key = kept.{{ this_key }}
        )
{%- endmacro %}


{#- In an incremental run: `key_expr` is one of the keys `changed_keys` (a select of one column, from a CTE) returns,
    as `= any(array(...))`, which the planner turns into an index lookup, also through a view; when no key changed,
    a one-time test (exists) skips the read, which matters where the key has no index (a week); `true` in a full
    build. One line either way, so the model reads (and lints) the same in both. -#}
{% macro csinfra_key_is_changed(key_expr, changed_keys) -%}
    {%- if is_incremental() -%}
        exists ({{ changed_keys }}) and {{ key_expr }} = any(array({{ changed_keys }}))
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}


{#- The model's final select, of its last CTE (`cte`), one row per `key` (a column, or a list of columns): in an
    incremental run on PostgreSQL only the rows that differ from the stored ones (new, or any column changed), so
    that delete+insert rewrites those and leaves the others as they were, row versions included. What the models
    downstream take as changed is then what really changed, not everything that was re-derived. `select * from
    <cte>` in a full build and on Spark (whose incremental runs rewrite whole partitions). One row per key only: a
    key with several rows would lose its unchanged ones. The comparison runs on the re-derived rows only (offset 0
    keeps the planner from pushing it below the model's own filters) and looks each stored row up through the
    key's index (a scalar subquery: never a hash join over the whole model, whatever the planner estimates). -#}
{% macro csinfra_select_rows_that_differ(cte, key) -%}
    {%- set keys = [key] if key is string else key -%}
    {%- if is_incremental() and target.type == 'postgres' -%}
        select * from (select * from {{ cte }} offset 0) as {{ cte }}
        where {{ cte }}::text is distinct from (
            select kept::text from {{ this }} as kept
            where
                {% for k in keys -%}
                kept.{{ k }} = {{ cte }}.{{ k }}{{ ' and ' if not loop.last }}
                {%- endfor %}
        )
    {%- else -%}
        select * from {{ cte }}
    {%- endif -%}
{%- endmacro %}


{#- The moment the mart's last build described (var marts_as_of then; NULL before the first mark). -#}
{% macro csinfra_previous_as_of() -%}
    (
        select marks.as_of from {{ csinfra_change_marks_relation() }} as marks
        where marks.model = {{ csinfra_quote(this.identifier) }}
    )
{%- endmacro %}


{#- In an incremental run: true when a condition `<moment> <= marts_as_of` can read differently now than in the last
    build, for some moment in [`earliest`, `latest`], i.e. when var marts_as_of moved across part of that range
    since (or there is no previous moment). -#}
{% macro csinfra_as_of_crossed(earliest, latest) -%}
    (
        {{ csinfra_previous_as_of() }} is null
        or (
            {{ csinfra_previous_as_of() }} <> {{ marts_as_of() }}
            and {{ earliest }} <= greatest({{ csinfra_previous_as_of() }}, {{ marts_as_of() }})
            and {{ latest }} > least({{ csinfra_previous_as_of() }}, {{ marts_as_of() }})
        )
    )
{%- endmacro %}


{#- The groups an incremental report of one row per group (`group_column`) must recompute: those with a source
    row written since its last build (the source, `source_relation`, is itself a mart that only rewrites the
    rows that differ: csinfra_select_rows_that_differ), those that lost a source row (deleted, or moved to another
    group: the count of source rows, stored in `count_column`, no longer matches), and those for which
    `also_when` holds (a condition on the group, e.g. one that depends on var marts_as_of). A select of one
    column, `group_key`; groups that are gone come out too (csinfra_delete_vanished removes their rows). The source
    is a mart: when it changed no row since this report's last build (csinfra_upstream_changed), no group has a
    changed or lost row, its rows are not read, and only `also_when` picks groups. -#}
{% macro csinfra_changed_groups(source_relation, group_column, count_column, also_when='false') -%}
    {%- set source_changed = csinfra_upstream_changed([source_relation]) -%}
    select coalesce(source_groups.group_key, kept.{{ group_column }}) as group_key
    from (
        select
            {{ group_column }} as group_key,
            count(*) as source_rows,
            bool_or({{ csinfra_changed_since_mark(source_relation ~ '.xmin') }}) as has_changed
        from {{ source_relation }}
        where {{ source_changed }}
        group by {{ group_column }}
    ) as source_groups
    full outer join {{ this }} as kept on source_groups.group_key = kept.{{ group_column }}
    where
        (
            {{ source_changed }}
            and (
                source_groups.has_changed
                or source_groups.source_rows is distinct from kept.{{ count_column }}
            )
        )
        or {{ also_when | replace('{group}', 'coalesce(source_groups.group_key, kept.' ~ group_column ~ ')') }}
{%- endmacro %}
