-- compute_time_by_provider: commands run and compute time per compute provider.
-- param since: timestamp = 1970-01-01  -- commands run at or after this
-- param until: timestamp = 2100-01-01  -- and before this
-- From compute.exec events: `compute` names the provider, latency_ms the command's duration.
SELECT
    compute,
    count(*) AS execs,
    count(DISTINCT tenant_id || '/' || session_id) AS sessions,
    count(*) FILTER (WHERE status <> 'ok') AS failed,
    sum(latency_ms) / 1000 AS total_s,
    quantile_cont(latency_ms, 0.5) AS p50_ms,
    quantile_cont(latency_ms, 0.95) AS p95_ms,
    max(latency_ms) AS max_ms
FROM events
WHERE type = 'compute.exec'
    AND ts >= $since AND ts < $until
GROUP BY compute
ORDER BY total_s DESC, compute
