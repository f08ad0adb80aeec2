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


{#- The table of change marks, one row per incremental mart (created on first use). -#}
{% macro csinfra_change_marks_relation() -%}
    {{ return(adapter.quote(target.schema) ~ '.' ~ adapter.quote('incremental_marks')) }}
{%- endmacro %}


{#- Pre-hook of a mart built from mutable rows: note the mark of this build (the oldest transaction running now)
    as pending. The model's own SQL still reads the previous mark; the post-hook makes the pending one current,
    in the same transaction as the build, so a failed build keeps the previous mark. -#}
{% macro csinfra_change_mark_begin() -%}
    {%- if target.type != 'postgres' -%}{{ return('') }}{%- endif -%}
    create table if not exists {{ csinfra_change_marks_relation() }} (
        model text primary key,
        snapshot pg_snapshot,
        pending_snapshot pg_snapshot,
        built_at timestamptz,
        full_refresh boolean
    );
    insert into {{ csinfra_change_marks_relation() }} (model, pending_snapshot)
    values ({{ csinfra_quote(this.identifier) }}, pg_current_snapshot())
    on conflict (model) do update set pending_snapshot = excluded.pending_snapshot
{%- endmacro %}


{#- Post-hook: the pending mark becomes the mart's mark (see csinfra_change_mark_begin). -#}
{% macro csinfra_change_mark_commit() -%}
    {%- if target.type != 'postgres' -%}{{ return('') }}{%- endif -%}
    update {{ csinfra_change_marks_relation() }}
    set
        snapshot = pending_snapshot,
        pending_snapshot = null,
        built_at = clock_timestamp(),
        full_refresh = {{ 'false' if is_incremental() else 'true' }}
    where model = {{ csinfra_quote(this.identifier) }}
{%- endmacro %}


{#- In an incremental run of a mart built from mutable rows: true for a source row (its `row_version`, the row's
    xmin as staging exposes it) written by a transaction the mart's last build could not see; `true` in a
    full build. -#}
{% macro csinfra_changed_since_mark(row_version) -%}
    {%- if is_incremental() -%}
        not pg_visible_in_snapshot(
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
    `expected_rows` is a select of that number; by default the universe's size (one row per key). -#}
{% macro csinfra_delete_vanished(this_key, universe, expected_rows=none) -%}
    {%- if target.type != 'postgres' or not is_incremental() -%}{{ return('') }}{%- endif -%}
    {%- set expected_rows = expected_rows or ('select count(*) from (' ~ universe ~ ') as everything') -%}
    delete from {{ this }} as kept
    where
        (select count(*) from {{ this }}) > ({{ expected_rows }})
        and not exists (
            select 1 from ({{ universe }}) as universe
            where universe.key = kept.{{ this_key }}
        )
{%- endmacro %}


{#- In an incremental run: `key_expr` is one of the keys `changed_keys` (a select of one column) returns, as
    `= any(array(...))`, which the planner turns into an index lookup, also through a view; `true` in a full
    build. One line either way, so the model reads (and lints) the same in both. -#}
{% macro csinfra_key_is_changed(key_expr, changed_keys) -%}
    {%- if is_incremental() -%}
        {{ key_expr }} = any(array({{ changed_keys }}))
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
