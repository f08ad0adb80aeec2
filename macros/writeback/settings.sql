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
