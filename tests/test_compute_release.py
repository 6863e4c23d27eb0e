"""A closed session lets go of its compute: a sandbox is paused, the server forgets its handle.

In the library, on a real warehouse under tmp_path. E2B cannot run here, so its adapter runs
against tests/e2b_double.py, the in-process double of the SDK (as in the contract suite);
`local` runs for real.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from api.adapters.compute import ComputeConfig
from api.schemas import CreateSession, Select, Spawn, Variant
from api.sessions.branches import Branches
from api.sessions.compute import ComputeService
from api.sessions.fanout import FanOut
from api.sessions.runner import Runner
from api.settings import Settings
from tests.e2b_double import DoubleSandbox
from tests.library import sessions_at


def test_closing_pauses_a_sandbox_and_forgets_every_workspace(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with sessions_at(tmp_path / "data") as service:
            store, settings = service.store, Settings()
            config = ComputeConfig(tmp_path / "workspaces", extra={"e2b_sandbox": DoubleSandbox})
            compute = ComputeService(service, config)
            user = {"user_id": "u", "model": "offline/echo"}

            boxed, _ = await service.create("t", CreateSession(**user))
            await compute.attach("t", boxed["session_id"], "e2b", {})
            sandbox_id = (await compute.workspace("t", boxed["session_id"])).sandbox.sandbox_id  # type: ignore[union-attr]
            local, _ = await service.create("t", CreateSession(**user))
            await compute.attach("t", local["session_id"], "local", {})
            await (await compute.workspace("t", local["session_id"])).write_file("kept.txt", b"x")  # type: ignore[union-attr]
            assert len(compute._open) == 2

            for session in (boxed, local):
                await service.close("t", session["session_id"])
            await store.settle()
            assert DoubleSandbox.sandboxes[sandbox_id].state == "paused"  # not running, not gone
            assert compute._open == {}
            assert any((tmp_path / "workspaces").rglob("kept.txt"))  # local files stay on disk

            # Children a selection closes let go of theirs too.
            parent, _ = await service.create("t", CreateSession(**user))
            fanout = FanOut(service, Runner(service, settings), settings)
            variants = [Variant(model="offline/echo", compute="local")] * 2
            plan = await fanout.start("t", parent["session_id"], Spawn(prompt="go", variants=variants))
            async for _kind, _item in fanout.execute(plan):
                pass
            kept, dropped = (c.state.session_id for c in plan.children)
            for child in (kept, dropped):
                await compute.ensure("t", child, await service.session("t", child))
            await Branches(service).select("t", parent["session_id"], Select(session_id=kept))
            await store.settle()
            assert set(compute._open) == {("t", kept)}

    asyncio.run(scenario())
