-- errors_by_model in SQLite. A run's status as the view derives it (the latest status of its
-- run.failed events, else of its run.completed ones, else 'running'); the latest error of a model
-- is max(ended_at || error) over its failed runs (ended_at is a 16-digit integer, as ts).
WITH runs AS (
    SELECT
        substr(max(ts || model), 17) AS model,
        CASE
            WHEN count(*) FILTER (WHERE type = 'run.failed') > 0
                THEN coalesce(substr(max(ts || status) FILTER (WHERE type = 'run.failed'), 17), 'error')
            WHEN count(*) FILTER (WHERE type = 'run.completed') > 0
                THEN coalesce(substr(max(ts || status) FILTER (WHERE type = 'run.completed'), 17), 'ok')
            ELSE 'running'
        END AS status,
        min(ts) AS started_at,
        max(ts) FILTER (WHERE type IN ('run.completed', 'run.failed')) AS ended_at,
        substr(max(ts || error), 17) AS error
    FROM events
    WHERE run_id IS NOT NULL
    GROUP BY tenant_id, session_id, run_id
)
SELECT
    model,
    count(*) AS runs,
    count(*) FILTER (WHERE status <> 'ok') AS errors,
    (count(*) FILTER (WHERE status <> 'ok')) * 1.0 / count(*) AS error_rate,
    count(*) FILTER (WHERE status = 'timeout') AS timeouts,
    count(*) FILTER (WHERE status = 'interrupted') AS interrupted,
    substr(max(ended_at || error) FILTER (WHERE status <> 'ok'), 17) AS last_error,
    max(ended_at) FILTER (WHERE status <> 'ok') AS last_error_at
FROM runs
WHERE model IS NOT NULL AND status <> 'running'
    AND started_at >= :since AND started_at < :until
GROUP BY model
ORDER BY errors DESC, model
