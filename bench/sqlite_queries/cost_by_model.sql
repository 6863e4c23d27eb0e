-- cost_by_model in SQLite: the runs view's columns this question reads, then the same aggregate.
-- ts is integer microseconds (16 digits from 2001 to 2286), so `ts || x` sorts by ts and
-- substr(max(ts || x), 17) is the latest non-null x (ts || NULL is NULL, which max skips).
WITH runs AS (
    SELECT
        substr(max(ts || model), 17) AS model,
        min(ts) AS started_at,
        coalesce(sum(input_tokens), 0) AS input_tokens,
        coalesce(sum(output_tokens), 0) AS output_tokens,
        coalesce(sum(cache_read_tokens), 0) AS cache_read_tokens,
        coalesce(sum(cache_write_tokens), 0) AS cache_write_tokens,
        coalesce(sum(cost_usd), 0) AS cost_usd
    FROM events
    WHERE run_id IS NOT NULL
    GROUP BY tenant_id, session_id, run_id
)
SELECT
    model,
    count(*) AS runs,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(input_tokens + output_tokens) AS tokens,
    sum(cost_usd) AS cost_usd,
    sum(cost_usd) / count(*) AS cost_per_run_usd
FROM runs
WHERE model IS NOT NULL
    AND started_at >= :since AND started_at < :until
GROUP BY model
ORDER BY cost_usd DESC, model
