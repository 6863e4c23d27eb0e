# %% [markdown]
# # A tour of the warehouse
#
# Open alongside a running server (read-only), look at sessions, runs and costs, and
# read the same Delta table with Polars to see that the format is open. Runs as a
# notebook (Jupyter or VS Code read the `# %%` cells) or as a script:
# `python notebooks/warehouse_tour.py [DATA]`.

# %%
import sys

import polars as pl

import warehouse

data = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else warehouse.default_url()
wh = warehouse.open(data, read_only=True)
print(wh.info())

# %% [markdown]
# Sessions: one row each, with their latest model, messages, runs, tokens and cost.

# %%
sessions = pl.from_arrow(wh.sql("select * from sessions order by last_event_at desc limit 20"))
print(sessions.select("tenant_id", "user_id", "session_id", "status", "model", "runs", "cost_usd"))

# %% [markdown]
# Cost and latency by model, from the `runs` view.

# %%
by_model = pl.from_arrow(
    wh.sql(
        """
        select model, count(*) as runs, sum(cost_usd) as cost_usd,
               quantile_cont(latency_ms, 0.5) as p50_ms, quantile_cont(latency_ms, 0.95) as p95_ms
        from runs group by model order by cost_usd desc
        """
    )
)
print(by_model)

# %% [markdown]
# The same table, read by Polars straight from Delta Lake (flushed events only:
# the unflushed tail lives in the writer's log until the next flush).

# %%
flushed = pl.read_delta(str(wh.root / "events")) if wh.info()["files"] else pl.DataFrame()
print(f"{flushed.height} flushed events read by Polars; {wh.info()['tail_events']} still in the log")
wh.close()
