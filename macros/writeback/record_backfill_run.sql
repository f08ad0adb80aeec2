{#- on-run-end: one summary audit row per dbt invocation whose write-back changed something (docs/rules.md §6),
    with each model's counts and the run's duration. Nothing when no write-back model ran, and nothing when
    the write-back found every row already right: a run on unchanged data writes nothing at all to the
    application's tables (csinfra.writeback_log, the project's own table, still records it). -#}
{% macro csinfra_record_backfill_run(results) %}
    {#- the application's PostgreSQL only: nothing to check or grant where the marts build from the lake -#}
    {%- if not execute or target.type != 'postgres' -%}{{ return('') }}{%- endif -%}
    {%- set ran = [] -%}
    {%- for r in results if r.node.config.materialized == 'writeback' and (r.status | string) == 'success' -%}
        {%- do ran.append(r) -%}
    {%- endfor -%}
    {%- if ran | length == 0 -%}{{ return('') }}{%- endif -%}
    {%- set app = csinfra_app_schema() -%}
    {%- set log_rel = csinfra_ident(ran[0].node.schema) ~ '.writeback_log' -%}
    {%- set statuses = {} -%}
    {%- for r in ran -%}{%- do statuses.update({r.node.name: r.status | string}) -%}{%- endfor -%}
    insert into {{ csinfra_ident(app) }}.audit_logs
        (id, action, "actorType", "actorId", "targetType", "targetId", metadata, "createdAt")
    select
        {{ csinfra_new_id(csinfra_quote(invocation_id)) }},
        'admin.backfill_infrastructure',
        'system',
        'system',
        'System',
        {{ csinfra_quote(invocation_id) }},
        jsonb_build_object(
            'runId', {{ csinfra_quote(invocation_id) }},
            'status', {{ csinfra_quote(tojson(statuses)) }}::jsonb,
            'durationMs', coalesce((extract(epoch from max(finished_at) - min(started_at)) * 1000)::bigint, 0),
            'models', coalesce(jsonb_object_agg(model, jsonb_build_object(
                'table', target_table,
                'scanned', scanned,
                'candidates', candidates,
                'written', written,
                'skipped', skipped,
                'retried', retried,
                'auditRows', audit_rows,
                'batches', batches,
                'batchSize', batch_size,
                'deriveMs', derive_ms,
                'durationMs', (extract(epoch from finished_at - started_at) * 1000)::bigint
            )), '{}'::jsonb),
            'totals', jsonb_build_object(
                'candidates', coalesce(sum(candidates), 0),
                'written', coalesce(sum(written), 0),
                'skipped', coalesce(sum(skipped), 0),
                'auditRows', coalesce(sum(audit_rows), 0)
            )
        ),
        (now() at time zone 'UTC')::timestamp(3)
    from {{ log_rel }}
    where invocation_id = {{ csinfra_quote(invocation_id) }}
    having coalesce(sum(written), 0) + coalesce(sum(skipped), 0) + coalesce(sum(retried), 0) + coalesce(sum(audit_rows), 0) > 0;
    commit;
{% endmacro %}
