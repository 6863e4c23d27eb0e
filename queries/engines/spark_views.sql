-- The warehouse's views (events, messages, runs, sessions) in Spark SQL, over `events`.
--
-- The same definitions as the warehouse's own (README, warehouse/views.sql and
-- sessions.sql), written once more for Spark: DuckDB's arg_max(x, ts) is Spark's
-- max_by(x, ts), and `sessions` is one plain aggregate (DuckDB keeps it materialised;
-- Spark recomputes it per query). tests/test_spark.py holds every named query on these
-- views to DuckDB's answer. Statements are separated by lines holding only `;`.

CREATE OR REPLACE TEMP VIEW messages AS
SELECT event_id, ts, tenant_id, user_id, session_id, parent_session_id, run_id,
       role, content, harness, model, attrs
FROM events
WHERE type = 'message'
;
CREATE OR REPLACE TEMP VIEW runs AS
SELECT
    tenant_id,
    max_by(user_id, ts) FILTER (WHERE user_id IS NOT NULL) AS user_id,
    session_id,
    run_id,
    max_by(model, ts) FILTER (WHERE model IS NOT NULL) AS model,
    max_by(harness, ts) FILTER (WHERE harness IS NOT NULL) AS harness,
    max_by(compute, ts) FILTER (WHERE compute IS NOT NULL) AS compute,
    CASE
        WHEN count_if(type = 'run.failed') > 0
            THEN coalesce(max_by(status, ts) FILTER (WHERE type = 'run.failed'), 'error')
        WHEN count_if(type = 'run.completed') > 0
            THEN coalesce(max_by(status, ts) FILTER (WHERE type = 'run.completed'), 'ok')
        ELSE 'running'
    END AS status,
    min(ts) AS started_at,
    max(ts) FILTER (WHERE type IN ('run.completed', 'run.failed')) AS ended_at,
    max(latency_ms) AS latency_ms,
    min(ttft_ms) AS ttft_ms,
    CAST(coalesce(sum(input_tokens), 0) AS BIGINT) AS input_tokens,
    CAST(coalesce(sum(output_tokens), 0) AS BIGINT) AS output_tokens,
    CAST(coalesce(sum(cache_read_tokens), 0) AS BIGINT) AS cache_read_tokens,
    CAST(coalesce(sum(cache_write_tokens), 0) AS BIGINT) AS cache_write_tokens,
    coalesce(sum(cost_usd), 0) AS cost_usd,
    max_by(error, ts) FILTER (WHERE error IS NOT NULL) AS error
FROM events
WHERE run_id IS NOT NULL
GROUP BY tenant_id, session_id, run_id
;
CREATE OR REPLACE TEMP VIEW sessions AS
WITH summary AS (
    SELECT
        tenant_id,
        session_id,
        max_by(user_id, ts) FILTER (WHERE user_id IS NOT NULL) AS user_id,
        max_by(parent_session_id, ts) FILTER (WHERE parent_session_id IS NOT NULL) AS parent_session_id,
        max_by(harness, ts) FILTER (WHERE harness IS NOT NULL) AS harness,
        max_by(model, ts) FILTER (WHERE model IS NOT NULL) AS model,
        max_by(compute, ts) FILTER (WHERE compute IS NOT NULL) AS compute,
        min(ts) FILTER (WHERE type = 'session.created') AS created_ts,
        max(ts) FILTER (WHERE type = 'session.closed') AS closed_ts,
        max(ts) FILTER (WHERE type = 'run.started') AS run_started_ts,
        max(ts) FILTER (WHERE type IN ('run.completed', 'run.failed')) AS run_ended_ts,
        min(ts) AS first_ts,
        max(ts) AS last_ts,
        count_if(type = 'message') AS messages,
        count_if(type IN ('run.completed', 'run.failed')) AS runs,
        sum(input_tokens) AS input_tokens,
        sum(output_tokens) AS output_tokens,
        sum(cost_usd) AS cost_usd
    FROM events
    GROUP BY tenant_id, session_id
)
SELECT
    tenant_id,
    user_id,
    session_id,
    parent_session_id,
    CASE
        WHEN closed_ts IS NOT NULL THEN 'closed'
        WHEN run_started_ts > run_ended_ts OR (run_started_ts IS NOT NULL AND run_ended_ts IS NULL)
            THEN 'running'
        ELSE 'ready'
    END AS status,
    harness,
    model,
    compute,
    coalesce(created_ts, first_ts) AS created_at,
    closed_ts AS closed_at,
    last_ts AS last_event_at,
    CAST(messages AS BIGINT) AS messages,
    CAST(runs AS BIGINT) AS runs,
    CAST(coalesce(input_tokens, 0) AS BIGINT) AS input_tokens,
    CAST(coalesce(output_tokens, 0) AS BIGINT) AS output_tokens,
    CAST(coalesce(input_tokens, 0) + coalesce(output_tokens, 0) AS BIGINT) AS tokens,
    CAST(coalesce(cost_usd, 0) AS DOUBLE) AS cost_usd
FROM summary
