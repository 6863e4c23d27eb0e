-- compute_time_by_provider in SQLite. Percentiles interpolate as DuckDB's quantile_cont: over a
-- provider's n sorted latencies (0-based rank k), percentile q sits at p = (n - 1) * q, so each
-- row weighs max(0, 1 - |k - p|): 1 - frac(p) at floor(p), frac(p) at floor(p) + 1, else 0.
WITH execs AS (
    SELECT
        compute,
        tenant_id,
        session_id,
        status,
        latency_ms,
        row_number() OVER (PARTITION BY compute, latency_ms IS NULL ORDER BY latency_ms) - 1 AS k,
        count(latency_ms) OVER (PARTITION BY compute) - 1 AS last
    FROM events
    WHERE type = 'compute.exec'
        AND ts >= :since AND ts < :until
)
SELECT
    compute,
    count(*) AS execs,
    count(DISTINCT tenant_id || '/' || session_id) AS sessions,
    count(*) FILTER (WHERE status <> 'ok') AS failed,
    sum(latency_ms) / 1000 AS total_s,
    sum(latency_ms * max(0, 1 - abs(k - last * 0.50))) AS p50_ms,
    sum(latency_ms * max(0, 1 - abs(k - last * 0.95))) AS p95_ms,
    max(latency_ms) AS max_ms
FROM execs
GROUP BY compute
ORDER BY total_s DESC, compute
