"""Branches of a session: fork one from any message, and keep a child's answer in its parent.

A fork is a new session whose `session.created` names its parent and how many of the parent's
messages it reads (`fork.messages`): copy on write, as spawned children are. `select` appends
the kept child's own messages to the parent (attributed to the child and its model), after a
`session.selected`, and closes the child's spawn siblings.
"""

from __future__ import annotations

from typing import Any

from api.errors import ApiError
from api.schemas import Fork, Select
from api.sessions.events import event, new_id
from api.sessions.service import SessionService
from api.sessions.state import SessionState, message_fields


class Branches:
    """Forks sessions and keeps children's answers."""

    def __init__(self, service: SessionService):
        self.service = service
        self.store = service.store

    async def select(self, tenant_id: str, session_id: str, body: Select) -> dict[str, Any]:
        """Keep a child's answer: it joins the parent's transcript, its spawn siblings are closed."""
        parent = await self.service.writable(tenant_id, session_id)
        child = await self.store.get(tenant_id, body.session_id)
        if child is None or child.parent_session_id != session_id:
            raise ApiError(409, "not_a_child", f"{body.session_id} is not a child of {session_id}")
        key = child.spawn["spawn_id"] if child.spawn else child.session_id
        if key in parent.selected:
            raise ApiError(409, "already_selected", f"{parent.selected[key]} was already kept for {key}")
        made = parent.children.get(child.session_id, {})
        moved = (
            parent.message_ids[-1] != made.get("prompt_event_id")
            if child.spawn
            else parent.length != child.base_len
        )
        if moved:
            raise ApiError(
                409, "parent_moved", f"{session_id} has new messages since {child.session_id} was made"
            )
        skip = 1 if child.spawn else 0  # a spawned child's first message is the prompt the parent has
        branch = list(zip(child.own[skip:], child.own_ids[skip:], strict=True))
        if not any(m["role"] == "assistant" for m, _ in branch):
            raise ApiError(409, "no_answer", f"{child.session_id} has no answer to keep")
        if parent.lock.locked():
            raise ApiError(409, "run_in_flight", "a run is in flight on this session; select when it ends")
        async with parent.lock:
            selected = event(
                "session.selected",
                tenant_id,
                session_id,
                user_id=parent.user_id,
                attrs={"child_session_id": child.session_id, "spawn_id": key if child.spawn else None},
            )
            joined = [self._joined(parent, child, m, source) for m, source in branch]
            closing = []
            for sibling_id, sibling_made in parent.children.items():
                if sibling_id != child.session_id and sibling_made.get("spawn_id") == key:
                    sibling = await self.store.get(tenant_id, sibling_id)
                    if sibling is not None and not sibling.closed:
                        closed = event("session.closed", tenant_id, sibling_id, user_id=sibling.user_id)
                        closing.append((sibling, [closed]))
            await self.store.write_many([(parent, [selected, *joined]), *closing])
        return await self.service.read(tenant_id, session_id)

    def _joined(
        self, parent: SessionState, child: SessionState, message: dict[str, Any], source: str
    ) -> dict[str, Any]:
        content, attrs = message_fields(message)
        attrs.update(from_session_id=child.session_id, from_event_id=source)
        return event(
            "message",
            parent.tenant_id,
            parent.session_id,
            user_id=parent.user_id,
            role=message["role"],
            content=content,
            model=child.model if message["role"] == "assistant" else None,
            attrs=attrs,
        )

    async def fork(self, tenant_id: str, session_id: str, body: Fork) -> dict[str, Any]:
        """A new session reading this one's transcript up to `at_event_id` (default: all of it)."""
        source = await self.service.session(tenant_id, session_id)
        ids = source.message_ids
        if body.at_event_id is None:
            at = len(ids)
        elif body.at_event_id in ids:
            at = ids.index(body.at_event_id) + 1
        else:
            raise ApiError(
                422,
                "unknown_message",
                f"{body.at_event_id} is not a message of {session_id}; see message_ids",
            )
        child = SessionState(tenant_id, new_id("sess_"))
        child.base = source
        fork = {"session_id": session_id, "messages": at, "at_event_id": ids[at - 1] if at else None}
        attrs = {
            "metadata": source.metadata if body.metadata is None else body.metadata,
            "fallbacks": source.fallbacks,
            "budget_usd": source.budget_usd,
            "fork": fork,
        }
        created = event(
            "session.created",
            tenant_id,
            child.session_id,
            parent_session_id=session_id,
            user_id=source.user_id,
            model=source.model,
            harness=source.harness,
            compute=source.compute,
            attrs=attrs,
        )
        await self.store.write(child, [created])
        return await self.service.read(tenant_id, child.session_id, new=True)
