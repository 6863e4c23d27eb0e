-- cost_by_user: spend per user per day (UTC), beside the user's total over the range.
-- param since: timestamp = 1970-01-01  -- runs started at or after this
-- param until: timestamp = 2100-01-01  -- and before this
-- param user: text = ''  -- only this user ('' = every user)
-- One row per (tenant, user, day) with runs; total_runs and total_cost_usd sum the user's days.
SELECT
    tenant_id,
    user_id,
    started_at::DATE AS day,
    count(*) AS runs,
    sum(input_tokens + output_tokens)::BIGINT AS tokens,
    sum(cost_usd) AS cost_usd,
    sum(count(*)) OVER (PARTITION BY tenant_id, user_id)::BIGINT AS total_runs,
    sum(sum(cost_usd)) OVER (PARTITION BY tenant_id, user_id) AS total_cost_usd
FROM runs
WHERE model IS NOT NULL
    AND started_at >= $since AND started_at < $until
    AND ($user = '' OR user_id = $user)
GROUP BY tenant_id, user_id, day
ORDER BY total_cost_usd DESC, tenant_id, user_id, day
