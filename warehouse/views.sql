-- The warehouse's views over `events` (the Parquet parts plus the unflushed tail).
-- Each statement is one view; the README documents them column by column.
-- `sessions` lives in sessions.sql: it is kept materialised.
-- Tokens and cost are summed over every event: a producer records each once, on
-- the event that incurred it (run.completed, run.failed or usage).

CREATE OR REPLACE TEMP VIEW messages AS
SELECT event_id, ts, tenant_id, user_id, session_id, parent_session_id, run_id,
       role, content, harness, model, attrs
FROM events
WHERE type = 'message';

CREATE OR REPLACE TEMP VIEW runs AS
SELECT
    tenant_id,
    arg_max(user_id, ts) FILTER (WHERE user_id IS NOT NULL) AS user_id,
    session_id,
    run_id,
    arg_max(model, ts) FILTER (WHERE model IS NOT NULL) AS model,
    arg_max(harness, ts) FILTER (WHERE harness IS NOT NULL) AS harness,
    arg_max(compute, ts) FILTER (WHERE compute IS NOT NULL) AS compute,
    CASE
        WHEN count(*) FILTER (WHERE type = 'run.failed') > 0
            THEN coalesce(arg_max(status, ts) FILTER (WHERE type = 'run.failed'), 'error')
        WHEN count(*) FILTER (WHERE type = 'run.completed') > 0
            THEN coalesce(arg_max(status, ts) FILTER (WHERE type = 'run.completed'), 'ok')
        ELSE 'running'
    END AS status,
    min(ts) AS started_at,
    max(ts) FILTER (WHERE type IN ('run.completed', 'run.failed')) AS ended_at,
    max(latency_ms) AS latency_ms,
    min(ttft_ms) AS ttft_ms,
    coalesce(sum(input_tokens), 0)::BIGINT AS input_tokens,
    coalesce(sum(output_tokens), 0)::BIGINT AS output_tokens,
    coalesce(sum(cache_read_tokens), 0)::BIGINT AS cache_read_tokens,
    coalesce(sum(cache_write_tokens), 0)::BIGINT AS cache_write_tokens,
    coalesce(sum(cost_usd), 0) AS cost_usd,
    arg_max(error, ts) FILTER (WHERE error IS NOT NULL) AS error
FROM events
WHERE run_id IS NOT NULL
GROUP BY tenant_id, session_id, run_id;
