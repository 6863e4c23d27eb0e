-- what_if_cost: what runs would have cost on another model: each run's tokens re-priced at its prices.
-- param model: text  -- the model to price at, as litellm names it (e.g. anthropic/claude-sonnet-4-5)
-- param from_model: text = ''  -- only runs of this model ('' = every model)
-- param since: timestamp = 1970-01-01  -- runs started at or after this
-- param until: timestamp = 2100-01-01  -- and before this
-- tables: prices
-- Prices come from litellm's bundled price map. input_tokens include cache reads and writes
-- (as litellm counts them): those are priced at the model's cache rates where it has them,
-- the rest at its input rate. Long-context surcharges are not applied. what_if_cost_usd is
-- null when litellm has no price for the model.
WITH target AS (
    SELECT * FROM prices WHERE model = $model
),
repriced AS (
    SELECT
        r.model,
        r.input_tokens,
        r.output_tokens,
        r.cache_read_tokens,
        r.cache_write_tokens,
        r.cost_usd,
        greatest(r.input_tokens - r.cache_read_tokens - r.cache_write_tokens, 0) * t.input_cost_per_token
            + r.cache_read_tokens * coalesce(t.cache_read_cost_per_token, t.input_cost_per_token)
            + r.cache_write_tokens * coalesce(t.cache_write_cost_per_token, t.input_cost_per_token)
            + r.output_tokens * t.output_cost_per_token AS what_if_cost_usd
    FROM runs AS r
    LEFT JOIN target AS t ON true
    WHERE r.model IS NOT NULL
        AND ($from_model = '' OR r.model = $from_model)
        AND r.started_at >= $since AND r.started_at < $until
)
SELECT
    model,
    $model AS what_if_model,
    count(*) AS runs,
    sum(input_tokens)::BIGINT AS input_tokens,
    sum(output_tokens)::BIGINT AS output_tokens,
    sum(cache_read_tokens)::BIGINT AS cache_read_tokens,
    sum(cache_write_tokens)::BIGINT AS cache_write_tokens,
    sum(cost_usd) AS cost_usd,
    sum(what_if_cost_usd) AS what_if_cost_usd,
    sum(what_if_cost_usd) - sum(cost_usd) AS difference_usd
FROM repriced
GROUP BY model
ORDER BY cost_usd DESC, model
