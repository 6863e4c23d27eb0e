-- fanout_comparison: each fan-out's children side by side, the kept one marked, and the cost trail.
-- param parent: text = ''  -- one parent session ('' = every parent)
-- param since: timestamp = 1970-01-01  -- children spawned at or after this
-- param until: timestamp = 2100-01-01  -- and before this
-- Children come from the parent's session.spawned events, the winner from its latest
-- session.selected. A child's model, harness and compute are its session's (else the variant
-- it was spawned with); runs, latency and status are its model runs' (status: the latest run's).
-- children_cost_usd is what the whole fan-out cost, selected_cost_usd the winner's share of it.
-- judge_score and judge_reason: the judge's verdict on the child (the latest session.updated with attrs.judge).
WITH spawned AS (
    SELECT
        tenant_id,
        session_id AS parent_session_id,
        json_extract_string(attrs, '$.child_session_id') AS child_session_id,
        arg_min(json_extract_string(attrs, '$.variant.model'), ts) AS variant_model,
        arg_min(json_extract_string(attrs, '$.variant.harness'), ts) AS variant_harness,
        arg_min(json_extract_string(attrs, '$.variant.compute'), ts) AS variant_compute,
        arg_min(json_extract_string(attrs, '$.label'), ts) AS label,
        min(ts) AS spawned_at
    FROM events
    WHERE type = 'session.spawned'
        AND ts >= $since AND ts < $until
        AND ($parent = '' OR session_id = $parent)
    GROUP BY tenant_id, session_id, child_session_id
),
kept AS (
    SELECT
        tenant_id,
        session_id AS parent_session_id,
        arg_max(json_extract_string(attrs, '$.child_session_id'), ts) AS child_session_id
    FROM events
    WHERE type = 'session.selected'
    GROUP BY tenant_id, session_id
),
judged AS (
    SELECT
        tenant_id,
        session_id AS child_session_id,
        arg_max(CAST(json_extract(attrs, '$.judge.score') AS DOUBLE), ts) AS judge_score,
        arg_max(json_extract_string(attrs, '$.judge.reason'), ts) AS judge_reason
    FROM events
    WHERE type = 'session.updated' AND json_extract(attrs, '$.judge.score') IS NOT NULL
    GROUP BY tenant_id, session_id
),
child_runs AS (
    SELECT
        tenant_id,
        session_id,
        count(*) AS runs,
        sum(latency_ms) AS latency_ms,
        arg_max(status, started_at) AS status
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
        sp.label,
        coalesce(s.model, sp.variant_model) AS model,
        coalesce(s.harness, sp.variant_harness) AS harness,
        coalesce(s.compute, sp.variant_compute) AS compute,
        coalesce(r.runs, 0) AS runs,
        r.status,
        r.latency_ms,
        coalesce(s.tokens, 0) AS tokens,
        coalesce(s.cost_usd, 0) AS cost_usd,
        coalesce(k.child_session_id = sp.child_session_id, false) AS selected,
        j.judge_score,
        j.judge_reason
    FROM spawned AS sp
    LEFT JOIN sessions AS s
        ON s.tenant_id = sp.tenant_id AND s.session_id = sp.child_session_id
    LEFT JOIN child_runs AS r
        ON r.tenant_id = sp.tenant_id AND r.session_id = sp.child_session_id
    LEFT JOIN kept AS k
        ON k.tenant_id = sp.tenant_id AND k.parent_session_id = sp.parent_session_id
    LEFT JOIN judged AS j
        ON j.tenant_id = sp.tenant_id AND j.child_session_id = sp.child_session_id
)
SELECT
    *,
    sum(cost_usd) OVER (PARTITION BY tenant_id, parent_session_id) AS children_cost_usd,
    sum(CASE WHEN selected THEN cost_usd END) OVER (PARTITION BY tenant_id, parent_session_id)
        AS selected_cost_usd
FROM children
ORDER BY tenant_id, parent_session_id, spawned_at, child_session_id
