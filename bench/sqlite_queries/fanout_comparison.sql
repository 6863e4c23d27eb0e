-- fanout_comparison in SQLite. The children's session summaries and runs are computed for the
-- spawned children only (session_id IN spawned, through the session_id index), where DuckDB
-- reads its kept sessions summary; arg_min / arg_max by ts are substr(min/max(ts || x), 17).
WITH spawned AS (
    SELECT
        tenant_id,
        session_id AS parent_session_id,
        attrs ->> '$.child_session_id' AS child_session_id,
        substr(min(ts || (attrs ->> '$.variant.model')), 17) AS variant_model,
        substr(min(ts || (attrs ->> '$.variant.harness')), 17) AS variant_harness,
        substr(min(ts || (attrs ->> '$.variant.compute')), 17) AS variant_compute,
        min(ts) AS spawned_at
    FROM events
    WHERE type = 'session.spawned'
        AND ts >= :since AND ts < :until
        AND (:parent = '' OR session_id = :parent)
    GROUP BY tenant_id, session_id, child_session_id
),
kept AS (
    SELECT
        tenant_id,
        session_id AS parent_session_id,
        substr(max(ts || (attrs ->> '$.child_session_id')), 17) AS child_session_id
    FROM events
    WHERE type = 'session.selected'
    GROUP BY tenant_id, session_id
),
child_events AS (
    SELECT * FROM events WHERE session_id IN (SELECT child_session_id FROM spawned)
),
child_sessions AS (
    SELECT
        tenant_id,
        session_id,
        substr(max(ts || model), 17) AS model,
        substr(max(ts || harness), 17) AS harness,
        substr(max(ts || compute), 17) AS compute,
        coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0) AS tokens,
        coalesce(sum(cost_usd), 0) AS cost_usd
    FROM child_events
    GROUP BY tenant_id, session_id
),
runs AS (
    SELECT
        tenant_id,
        session_id,
        substr(max(ts || model), 17) AS model,
        CASE
            WHEN count(*) FILTER (WHERE type = 'run.failed') > 0
                THEN coalesce(substr(max(ts || status) FILTER (WHERE type = 'run.failed'), 17), 'error')
            WHEN count(*) FILTER (WHERE type = 'run.completed') > 0
                THEN coalesce(substr(max(ts || status) FILTER (WHERE type = 'run.completed'), 17), 'ok')
            ELSE 'running'
        END AS status,
        min(ts) AS started_at,
        max(latency_ms) AS latency_ms
    FROM child_events
    WHERE run_id IS NOT NULL
    GROUP BY tenant_id, session_id, run_id
),
child_runs AS (
    SELECT
        tenant_id,
        session_id,
        count(*) AS runs,
        sum(latency_ms) AS latency_ms,
        substr(max(started_at || status), 17) AS status
    FROM runs
    WHERE model IS NOT NULL
    GROUP BY tenant_id, session_id
),
children AS (
    SELECT
        sp.tenant_id,
        sp.parent_session_id,
        sp.child_session_id,
        sp.spawned_at,
        coalesce(s.model, sp.variant_model) AS model,
        coalesce(s.harness, sp.variant_harness) AS harness,
        coalesce(s.compute, sp.variant_compute) AS compute,
        coalesce(r.runs, 0) AS runs,
        r.status,
        r.latency_ms,
        coalesce(s.tokens, 0) AS tokens,
        coalesce(s.cost_usd, 0) AS cost_usd,
        coalesce(k.child_session_id = sp.child_session_id, 0) AS selected
    FROM spawned AS sp
    LEFT JOIN child_sessions AS s
        ON s.tenant_id = sp.tenant_id AND s.session_id = sp.child_session_id
    LEFT JOIN child_runs AS r
        ON r.tenant_id = sp.tenant_id AND r.session_id = sp.child_session_id
    LEFT JOIN kept AS k
        ON k.tenant_id = sp.tenant_id AND k.parent_session_id = sp.parent_session_id
)
SELECT
    *,
    sum(cost_usd) OVER (PARTITION BY tenant_id, parent_session_id) AS children_cost_usd,
    sum(CASE WHEN selected THEN cost_usd END) OVER (PARTITION BY tenant_id, parent_session_id)
        AS selected_cost_usd
FROM children
ORDER BY tenant_id, parent_session_id, spawned_at, child_session_id
