-- top_sessions_by_cost: the most expensive sessions, with who ran them and on what.
-- param limit: int = 10  -- how many sessions
-- param since: timestamp = 1970-01-01  -- sessions created at or after this
-- param until: timestamp = 2100-01-01  -- and before this
SELECT
    tenant_id,
    user_id,
    session_id,
    parent_session_id,
    harness,
    model,
    compute,
    runs,
    tokens,
    cost_usd,
    created_at,
    last_event_at
FROM sessions
WHERE created_at >= $since AND created_at < $until
ORDER BY cost_usd DESC, tenant_id, session_id
LIMIT $limit
