-- The `sessions` view, kept materialised: one row per session summarising its events.
--
-- A session's summary is mergeable state (latest non-null values with their ts,
-- minima, maxima, counts, sums), so the summary of the Parquet parts is computed
-- once per table version and kept as a table, and each query only merges in the
-- sessions the unflushed tail touches. The result is exactly the aggregate over
-- `events`; tests/test_sessions_view.py holds it to that.

-- section: macros
CREATE OR REPLACE MACRO session_partials(src) AS TABLE
SELECT
    tenant_id,
    session_id,
    arg_max(user_id, ts) FILTER (WHERE user_id IS NOT NULL) AS user_id,
    max(ts) FILTER (WHERE user_id IS NOT NULL) AS user_id_ts,
    arg_max(parent_session_id, ts) FILTER (WHERE parent_session_id IS NOT NULL) AS parent_session_id,
    max(ts) FILTER (WHERE parent_session_id IS NOT NULL) AS parent_session_id_ts,
    arg_max(harness, ts) FILTER (WHERE harness IS NOT NULL) AS harness,
    max(ts) FILTER (WHERE harness IS NOT NULL) AS harness_ts,
    arg_max(model, ts) FILTER (WHERE model IS NOT NULL) AS model,
    max(ts) FILTER (WHERE model IS NOT NULL) AS model_ts,
    arg_max(compute, ts) FILTER (WHERE compute IS NOT NULL) AS compute,
    max(ts) FILTER (WHERE compute IS NOT NULL) AS compute_ts,
    min(ts) FILTER (WHERE type = 'session.created') AS created_ts,
    max(ts) FILTER (WHERE type = 'session.closed') AS closed_ts,
    max(ts) FILTER (WHERE type = 'run.started') AS run_started_ts,
    max(ts) FILTER (WHERE type IN ('run.completed', 'run.failed')) AS run_ended_ts,
    min(ts) AS first_ts,
    max(ts) AS last_ts,
    count(*) FILTER (WHERE type = 'message') AS messages,
    count(*) FILTER (WHERE type IN ('run.completed', 'run.failed')) AS runs,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cost_usd) AS cost_usd
FROM query_table(src)
GROUP BY tenant_id, session_id;

CREATE OR REPLACE MACRO merge_session_partials(src) AS TABLE
SELECT
    tenant_id,
    session_id,
    arg_max(user_id, user_id_ts) AS user_id,
    max(user_id_ts) AS user_id_ts,
    arg_max(parent_session_id, parent_session_id_ts) AS parent_session_id,
    max(parent_session_id_ts) AS parent_session_id_ts,
    arg_max(harness, harness_ts) AS harness,
    max(harness_ts) AS harness_ts,
    arg_max(model, model_ts) AS model,
    max(model_ts) AS model_ts,
    arg_max(compute, compute_ts) AS compute,
    max(compute_ts) AS compute_ts,
    min(created_ts) AS created_ts,
    max(closed_ts) AS closed_ts,
    max(run_started_ts) AS run_started_ts,
    max(run_ended_ts) AS run_ended_ts,
    min(first_ts) AS first_ts,
    max(last_ts) AS last_ts,
    sum(messages) AS messages,
    sum(runs) AS runs,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cost_usd) AS cost_usd
FROM query_table(src)
GROUP BY tenant_id, session_id;

-- section: view
-- {parts} is the name of the parts' summary table (an identifier the engine makes).
CREATE OR REPLACE TEMP VIEW _session_tail AS SELECT * FROM session_partials('_tail');

CREATE OR REPLACE TEMP VIEW _session_touched AS
SELECT p.* FROM {parts} AS p SEMI JOIN _session_tail AS t
    ON p.tenant_id = t.tenant_id AND p.session_id = t.session_id
UNION ALL BY NAME
SELECT * FROM _session_tail;

CREATE OR REPLACE TEMP VIEW sessions AS
WITH summary AS (
    SELECT p.* FROM {parts} AS p ANTI JOIN _session_tail AS t
        ON p.tenant_id = t.tenant_id AND p.session_id = t.session_id
    UNION ALL BY NAME
    SELECT * FROM merge_session_partials('_session_touched')
)
SELECT
    tenant_id,
    user_id,
    session_id,
    parent_session_id,
    CASE
        WHEN closed_ts IS NOT NULL THEN 'closed'
        WHEN run_started_ts > coalesce(run_ended_ts, TIMESTAMPTZ '-infinity') THEN 'running'
        ELSE 'ready'
    END AS status,
    harness,
    model,
    compute,
    coalesce(created_ts, first_ts) AS created_at,
    closed_ts AS closed_at,
    last_ts AS last_event_at,
    messages::BIGINT AS messages,
    runs::BIGINT AS runs,
    coalesce(input_tokens, 0)::BIGINT AS input_tokens,
    coalesce(output_tokens, 0)::BIGINT AS output_tokens,
    (coalesce(input_tokens, 0) + coalesce(output_tokens, 0))::BIGINT AS tokens,
    coalesce(cost_usd, 0)::DOUBLE AS cost_usd
FROM summary;
