-- daily_active_users: per UTC day and tenant, the users with any event, their sessions, runs and spend.
-- param since: timestamp = 1970-01-01  -- events at or after this
-- param until: timestamp = 2100-01-01  -- and before this
SELECT
    ts::DATE AS day,
    tenant_id,
    count(DISTINCT user_id) AS users,
    count(DISTINCT session_id) AS sessions,
    count(*) FILTER (WHERE type IN ('run.completed', 'run.failed')) AS runs,
    coalesce(sum(cost_usd), 0) AS cost_usd
FROM events
WHERE user_id IS NOT NULL
    AND ts >= $since AND ts < $until
GROUP BY day, tenant_id
ORDER BY day, tenant_id
