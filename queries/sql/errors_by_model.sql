-- errors_by_model: failed runs per model: how many, the rate, timeouts and the latest error.
-- param since: timestamp = 1970-01-01  -- runs started at or after this
-- param until: timestamp = 2100-01-01  -- and before this
-- An error is a finished run whose status is not 'ok' (error, timeout, interrupted, …);
-- retries inside a run that then succeeded are not errors.
SELECT
    model,
    count(*) AS runs,
    count(*) FILTER (WHERE status <> 'ok') AS errors,
    count(*) FILTER (WHERE status <> 'ok') / count(*) AS error_rate,
    count(*) FILTER (WHERE status = 'timeout') AS timeouts,
    count(*) FILTER (WHERE status = 'interrupted') AS interrupted,
    arg_max(error, ended_at) FILTER (WHERE status <> 'ok' AND error IS NOT NULL) AS last_error,
    max(ended_at) FILTER (WHERE status <> 'ok') AS last_error_at
FROM runs
WHERE model IS NOT NULL AND status <> 'running'
    AND started_at >= $since AND started_at < $until
GROUP BY model
ORDER BY errors DESC, model
