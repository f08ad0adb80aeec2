-- The floor for offers: ONE hand-written UPDATE (docs/rules.md §5, default constants), rows that differ only.
WITH v AS (
    SELECT o.id,
           coalesce(o."cashCents", 0)::numeric + coalesce(
               CASE WHEN jsonb_typeof(o."originalTermsSnapshot" -> 'stayValueCents') = 'number'
                         AND (o."originalTermsSnapshot" ->> 'stayValueCents')::numeric = trunc((o."originalTermsSnapshot" ->> 'stayValueCents')::numeric)
                    THEN (o."originalTermsSnapshot" ->> 'stayValueCents')::numeric END,
               CASE WHEN o."stayNights" > 0 THEN o."stayNights"::numeric * 15000 ELSE 0 END) AS total,
           coalesce(cardinality(o.deliverables), 0) AS nd,
           coalesce(o."trafficBonusEnabled", false) AS tb
    FROM offers o
), e AS (
    SELECT o.id, v.total,
           CASE WHEN v.total BETWEEN -2147483648 AND 2147483647 THEN v.total::int END AS tv,
           to_jsonb(array_remove(ARRAY[
               CASE WHEN v.total < 10000 THEN 'Offer value must be at least $100' END,
               CASE WHEN coalesce(o."stayNights", 0) <= 0 AND coalesce(o."cashCents", 0) < 5000 THEN 'Cash offers without a stay must be at least $50' END,
               CASE WHEN v.nd > 10 THEN 'Maximum 10 deliverables per offer' END,
               CASE WHEN v.nd = 0 THEN 'At least one deliverable is required' END,
               CASE WHEN v.tb AND coalesce(o."trafficBonusThreshold", 0) <= 0 THEN 'Traffic bonus requires a click threshold' END,
               CASE WHEN v.tb AND coalesce(o."trafficBonusCents", 0) <= 0 THEN 'Traffic bonus requires a bonus amount' END
           ]::text[], NULL)) AS errs
    FROM offers o JOIN v ON v.id = o.id
)
UPDATE offers o
SET "totalValueCents" = e.tv, "isValid" = (e.errs = '[]'::jsonb), "validationErrors" = e.errs,
    "originalTermsSnapshot" = coalesce(o."originalTermsSnapshot", jsonb_build_object(
        'offerType', o."offerType", 'cashCents', o."cashCents", 'stayNights', o."stayNights",
        'stayValueCents', CASE WHEN o."stayNights" > 0 THEN o."stayNights"::numeric * 15000 ELSE 0 END,
        'deliverables', to_jsonb(o.deliverables), 'requirements', o.requirements,
        'trafficBonusEnabled', o."trafficBonusEnabled", 'trafficBonusThreshold', o."trafficBonusThreshold",
        'trafficBonusCents', o."trafficBonusCents", 'totalValueCents', e.tv,
        'snapshotAt', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 'reconstructed', true))
FROM e
WHERE o.id = e.id
  AND (o."totalValueCents", o."isValid", o."validationErrors", o."originalTermsSnapshot" IS NULL)
      IS DISTINCT FROM (e.tv, e.errs = '[]'::jsonb, e.errs, false);
