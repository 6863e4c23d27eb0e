-- latency_by_model: p50, p95 and p99 of run latency and time to first token, per model.
-- param since: timestamp = 1970-01-01  -- runs started at or after this
-- param until: timestamp = 2100-01-01  -- and before this
-- param status: text = ok  -- only finished runs with this status ('' = every finished run)
-- Percentiles interpolate between runs (quantile_cont); time to first token only covers
-- streamed runs (streamed_runs of them), latency every run that reported one.
SELECT
    model,
    count(*) AS runs,
    avg(latency_ms) AS latency_mean_ms,
    quantile_cont(latency_ms, 0.5) AS latency_p50_ms,
    quantile_cont(latency_ms, 0.95) AS latency_p95_ms,
    quantile_cont(latency_ms, 0.99) AS latency_p99_ms,
    count(ttft_ms) AS streamed_runs,
    quantile_cont(ttft_ms, 0.5) AS ttft_p50_ms,
    quantile_cont(ttft_ms, 0.95) AS ttft_p95_ms,
    quantile_cont(ttft_ms, 0.99) AS ttft_p99_ms
FROM runs
WHERE model IS NOT NULL AND status <> 'running'
    AND ($status = '' OR status = $status)
    AND started_at >= $since AND started_at < $until
GROUP BY model
ORDER BY model
