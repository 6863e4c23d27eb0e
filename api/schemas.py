"""Request bodies: unknown fields and wrong types are refused (422) before anything runs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")]
ModelName = Annotated[str, Field(min_length=1, max_length=200)]


class Strict(BaseModel):
    """Refuses fields it does not know."""

    model_config = ConfigDict(extra="forbid")


class CreateSession(Strict):
    """POST /v2/sessions."""

    user_id: Id
    session_id: Id | None = None
    model: ModelName | None = None
    harness: str = "litellm"
    compute: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    fallbacks: list[ModelName] = Field(default_factory=list, max_length=8)
    budget_usd: float | None = Field(default=None, ge=0)


class UpdateSession(Strict):
    """PATCH /v2/sessions/{id}: what changes; the id and transcript stay."""

    model: ModelName | None = None
    harness: str | None = None
    metadata: dict[str, Any] | None = None
    fallbacks: list[ModelName] | None = Field(default=None, max_length=8)
    budget_usd: float | None = Field(default=None, ge=0)


class ChatMessage(BaseModel):
    """A message in OpenAI chat format; tool fields pass through to the provider."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None


class RunLLM(Strict):
    """POST /v2/sessions/{id}/run-llm: one turn."""

    prompt: str | None = None
    messages: list[ChatMessage] | None = Field(default=None, max_length=256)
    model: ModelName | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    stream: bool = False

    @model_validator(mode="after")
    def _one_input(self) -> RunLLM:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of prompt or messages")
        if self.prompt is not None and not self.prompt.strip():
            raise ValueError("prompt is empty")
        if self.messages is not None and not self.messages:
            raise ValueError("messages is empty")
        return self


class Variant(Strict):
    """One way to answer a spawned prompt: a model, optionally a harness, compute and a label."""

    model: ModelName
    harness: str | None = None
    compute: str | None = None
    label: str | None = Field(default=None, max_length=200)


class Judge(Strict):
    """A model that scores each variant's answer against a rubric."""

    model: ModelName
    rubric: str = Field(min_length=1, max_length=20_000)


class Spawn(Strict):
    """POST /v2/sessions/{id}/spawn: one prompt, answered by every variant in its own child session."""

    prompt: str = Field(min_length=1)
    variants: list[Variant] = Field(min_length=1)
    judge: Judge | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    timeout_s: float | None = Field(default=None, gt=0, le=3600)
    stream: bool = False

    @model_validator(mode="after")
    def _real_prompt(self) -> Spawn:
        if not self.prompt.strip():
            raise ValueError("prompt is empty")
        return self


class Select(Strict):
    """POST /v2/sessions/{id}/select: the child whose answer the parent keeps."""

    session_id: Id


class Fork(Strict):
    """POST /v2/sessions/{id}/fork: a new session reading this one's transcript up to a message."""

    at_event_id: Id | None = None
    metadata: dict[str, Any] | None = None
