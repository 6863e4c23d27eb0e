-- what_if_cost in SQLite: the same prices table (loaded beside the events), the same formula.
-- max(a, b) with two arguments is SQLite's greatest().
WITH target AS (
    SELECT * FROM prices WHERE model = :model
),
runs AS (
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
),
repriced AS (
    SELECT
        r.model,
        r.input_tokens,
        r.output_tokens,
        r.cache_read_tokens,
        r.cache_write_tokens,
        r.cost_usd,
        max(r.input_tokens - r.cache_read_tokens - r.cache_write_tokens, 0) * t.input_cost_per_token
            + r.cache_read_tokens * coalesce(t.cache_read_cost_per_token, t.input_cost_per_token)
            + r.cache_write_tokens * coalesce(t.cache_write_cost_per_token, t.input_cost_per_token)
            + r.output_tokens * t.output_cost_per_token AS what_if_cost_usd
    FROM runs AS r
    LEFT JOIN target AS t ON true
    WHERE r.model IS NOT NULL
        AND (:from_model = '' OR r.model = :from_model)
        AND r.started_at >= :since AND r.started_at < :until
)
SELECT
    model,
    :model AS what_if_model,
    count(*) AS runs,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(cost_usd) AS cost_usd,
    sum(what_if_cost_usd) AS what_if_cost_usd,
    sum(what_if_cost_usd) - sum(cost_usd) AS difference_usd
FROM repriced
GROUP BY model
ORDER BY cost_usd DESC, model
