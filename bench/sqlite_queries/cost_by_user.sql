-- cost_by_user in SQLite. A day is date(ts / 1e6, 'unixepoch'), the UTC day, as text.
WITH runs AS (
    SELECT
        tenant_id,
        substr(max(ts || user_id), 17) AS user_id,
        substr(max(ts || model), 17) AS model,
        min(ts) AS started_at,
        coalesce(sum(input_tokens), 0) AS input_tokens,
        coalesce(sum(output_tokens), 0) AS output_tokens,
        coalesce(sum(cost_usd), 0) AS cost_usd
    FROM events
    WHERE run_id IS NOT NULL
    GROUP BY tenant_id, session_id, run_id
)
SELECT
    tenant_id,
    user_id,
    date(started_at / 1000000, 'unixepoch') AS day,
    count(*) AS runs,
    sum(input_tokens + output_tokens) AS tokens,
    sum(cost_usd) AS cost_usd,
    sum(count(*)) OVER (PARTITION BY tenant_id, user_id) AS total_runs,
    sum(sum(cost_usd)) OVER (PARTITION BY tenant_id, user_id) AS total_cost_usd
FROM runs
WHERE model IS NOT NULL
    AND started_at >= :since AND started_at < :until
    AND (:user = '' OR user_id = :user)
GROUP BY tenant_id, user_id, day
ORDER BY total_cost_usd DESC, tenant_id, user_id, day
