-- latency_by_model in SQLite. Percentiles interpolate as DuckDB's quantile_cont: row_number()
-- ranks each run's latency (and time to first token) within its model from 0, count() gives n,
-- and each row weighs max(0, 1 - |rank - (n - 1) * q|) in percentile q (compute_time_by_provider.sql).
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
        max(latency_ms) AS latency_ms,
        min(ttft_ms) AS ttft_ms
    FROM events
    WHERE run_id IS NOT NULL
    GROUP BY tenant_id, session_id, run_id
),
ranked AS (
    SELECT
        model,
        latency_ms,
        ttft_ms,
        row_number() OVER (PARTITION BY model, latency_ms IS NULL ORDER BY latency_ms) - 1 AS lat_k,
        count(latency_ms) OVER (PARTITION BY model) - 1 AS lat_last,
        row_number() OVER (PARTITION BY model, ttft_ms IS NULL ORDER BY ttft_ms) - 1 AS ttft_k,
        count(ttft_ms) OVER (PARTITION BY model) - 1 AS ttft_last
    FROM runs
    WHERE model IS NOT NULL AND status <> 'running'
        AND (:status = '' OR status = :status)
        AND started_at >= :since AND started_at < :until
),
weighted AS (
    -- a null value's weight does not matter: value * weight is null, which sum skips
    SELECT
        model,
        latency_ms,
        ttft_ms,
        max(0, 1 - abs(lat_k - lat_last * 0.50)) AS lat_w50,
        max(0, 1 - abs(lat_k - lat_last * 0.95)) AS lat_w95,
        max(0, 1 - abs(lat_k - lat_last * 0.99)) AS lat_w99,
        max(0, 1 - abs(ttft_k - ttft_last * 0.50)) AS ttft_w50,
        max(0, 1 - abs(ttft_k - ttft_last * 0.95)) AS ttft_w95,
        max(0, 1 - abs(ttft_k - ttft_last * 0.99)) AS ttft_w99
    FROM ranked
)
SELECT
    model,
    count(*) AS runs,
    avg(latency_ms) AS latency_mean_ms,
    sum(latency_ms * lat_w50) AS latency_p50_ms,
    sum(latency_ms * lat_w95) AS latency_p95_ms,
    sum(latency_ms * lat_w99) AS latency_p99_ms,
    count(ttft_ms) AS streamed_runs,
    sum(ttft_ms * ttft_w50) AS ttft_p50_ms,
    sum(ttft_ms * ttft_w95) AS ttft_p95_ms,
    sum(ttft_ms * ttft_w99) AS ttft_p99_ms
FROM weighted
GROUP BY model
ORDER BY model
