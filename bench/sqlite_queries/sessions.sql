-- sessions in SQLite: the sessions view computed from the events (SQLite keeps no summary).
-- Latest non-null values as substr(max(ts || x), 17), as in the runs questions.
WITH sessions AS (
    SELECT
        tenant_id,
        substr(max(ts || user_id), 17) AS user_id,
        session_id,
        substr(max(ts || parent_session_id), 17) AS parent_session_id,
        CASE
            WHEN count(*) FILTER (WHERE type = 'session.closed') > 0 THEN 'closed'
            WHEN max(ts) FILTER (WHERE type = 'run.started')
                > coalesce(max(ts) FILTER (WHERE type IN ('run.completed', 'run.failed')), -1)
                THEN 'running'
            ELSE 'ready'
        END AS status,
        substr(max(ts || harness), 17) AS harness,
        substr(max(ts || model), 17) AS model,
        substr(max(ts || compute), 17) AS compute,
        coalesce(min(ts) FILTER (WHERE type = 'session.created'), min(ts)) AS created_at,
        max(ts) AS last_event_at,
        count(*) FILTER (WHERE type = 'message') AS messages,
        count(*) FILTER (WHERE type IN ('run.completed', 'run.failed')) AS runs,
        coalesce(sum(input_tokens), 0) AS input_tokens,
        coalesce(sum(output_tokens), 0) AS output_tokens,
        coalesce(sum(cost_usd), 0) AS cost_usd
    FROM events
    GROUP BY tenant_id, session_id
)
SELECT
    tenant_id,
    user_id,
    session_id,
    parent_session_id,
    status,
    harness,
    model,
    compute,
    created_at,
    last_event_at,
    messages,
    runs,
    input_tokens,
    output_tokens,
    input_tokens + output_tokens AS tokens,
    cost_usd
FROM sessions
WHERE created_at >= :since AND created_at < :until
    AND (:user = '' OR user_id = :user)
ORDER BY created_at, tenant_id, session_id
