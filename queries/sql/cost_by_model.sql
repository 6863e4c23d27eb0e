-- cost_by_model: spend, tokens and runs per model, over a time range.
-- param since: timestamp = 1970-01-01  -- runs started at or after this
-- param until: timestamp = 2100-01-01  -- and before this
-- Every run with a model counts (ok, failed or still running); cost is what was recorded.
SELECT
    model,
    count(*) AS runs,
    sum(input_tokens)::BIGINT AS input_tokens,
    sum(output_tokens)::BIGINT AS output_tokens,
    sum(cache_read_tokens)::BIGINT AS cache_read_tokens,
    sum(cache_write_tokens)::BIGINT AS cache_write_tokens,
    sum(input_tokens + output_tokens)::BIGINT AS tokens,
    sum(cost_usd) AS cost_usd,
    sum(cost_usd) / count(*) AS cost_per_run_usd
FROM runs
WHERE model IS NOT NULL
    AND started_at >= $since AND started_at < $until
GROUP BY model
ORDER BY cost_usd DESC, model
