-- top_sessions_by_cost in SQLite: every session's summary, then the most expensive.
WITH sessions AS (
    SELECT
        tenant_id,
        substr(max(ts || user_id), 17) AS user_id,
        session_id,
        substr(max(ts || parent_session_id), 17) AS parent_session_id,
        substr(max(ts || harness), 17) AS harness,
        substr(max(ts || model), 17) AS model,
        substr(max(ts || compute), 17) AS compute,
        count(*) FILTER (WHERE type IN ('run.completed', 'run.failed')) AS runs,
        coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0) AS tokens,
        coalesce(sum(cost_usd), 0) AS cost_usd,
        coalesce(min(ts) FILTER (WHERE type = 'session.created'), min(ts)) AS created_at,
        max(ts) AS last_event_at
    FROM events
    GROUP BY tenant_id, session_id
)
SELECT *
FROM sessions
WHERE created_at >= :since AND created_at < :until
ORDER BY cost_usd DESC, tenant_id, session_id
LIMIT :limit
