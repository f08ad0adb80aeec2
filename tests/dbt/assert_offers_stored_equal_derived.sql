-- Stored value and validation of every offer equal the rules' values, and every offer has a
-- terms snapshot. Runs after the write-back.
-- depends_on: {{ ref('wb_offers') }}
select
    offer_id,
    stored_total_value_cents,
    total_value_cents,
    stored_is_valid,
    is_valid,
    stored_validation_errors,
    validation_errors
from {{ ref('int_offers_validated') }}
where is_drifted
