-- daily_active_users in SQLite: straight over the events, days as UTC dates in text.
SELECT
    date(ts / 1000000, 'unixepoch') AS day,
    tenant_id,
    count(DISTINCT user_id) AS users,
    count(DISTINCT session_id) AS sessions,
    count(*) FILTER (WHERE type IN ('run.completed', 'run.failed')) AS runs,
    coalesce(sum(cost_usd), 0) AS cost_usd
FROM events
WHERE user_id IS NOT NULL
    AND ts >= :since AND ts < :until
GROUP BY day, tenant_id
ORDER BY day, tenant_id
