-- sessions: one row per session: who, on which harness, model and compute, its runs, tokens and cost.
-- param since: timestamp = 1970-01-01  -- sessions created at or after this
-- param until: timestamp = 2100-01-01  -- and before this
-- param user: text = ''  -- only this user's sessions ('' = every user)
-- Harness, model and compute are the session's latest; a fan-out's child names its parent.
SELECT
    tenant_id,
    user_id,
    session_id,
    parent_session_id,
    status,
    harness,
    model,
    compute,
    created_at,
    last_event_at,
    messages,
    runs,
    input_tokens,
    output_tokens,
    tokens,
    cost_usd
FROM sessions
WHERE created_at >= $since AND created_at < $until
    AND ($user = '' OR user_id = $user)
ORDER BY created_at, tenant_id, session_id
