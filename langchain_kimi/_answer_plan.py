"""What ChatKimi changed in one request so the service takes it, and what the answer must then show.

Three things are sent otherwise than asked, each with its counterpart on the way back:

- a forced ``tool_choice`` a model refuses is emulated (``_tools``): the answer
  must call the tool, or :class:`~langchain_kimi.errors.KimiToolChoiceError`;
- a ``json_schema`` ``response_format`` on Ace Data Cloud becomes JSON mode plus
  the schema as an instruction (``_structured``): the answer must match the
  schema, or ``OutputParserException``; a whole answer's text is reduced to the
  bare JSON object (what a native ``json_schema`` answer is, and what
  LangChain's ``ProviderStrategy`` parses);
- a model name written in another case or with a vendor prefix goes to Ace
  Data Cloud or Moonshot in the catalogue's spelling: the answer's
  ``response_metadata["model_name_sent"]`` says which name was sent.

:func:`plan_answer` adds the instructions to the messages and returns an
:class:`AnswerPlan` (None when nothing was changed: the usual case costs
nothing). The plan checks a whole answer (:meth:`AnswerPlan.finish`) or a stream
(:meth:`AnswerPlan.watch`): a stream's chunks are passed on as they come, so a
failed check raises at its end, after the text was yielded. Pure: no I/O.

Usage::

    messages, plan = plan_answer(messages, params, written_name=model, rules=rules,
                                 forced=forced, moonshot=False)
    result = parse_completion(data)
    result = plan.finish(result) if plan is not None else result
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from langchain_kimi._profiles import ModelRules
from langchain_kimi._structured import (
    SchemaReplyCheck,
    _Draft,
    add_instruction,
    answer_draft,
    plan_schema_format,
    streamed_draft,
)
from langchain_kimi._tools import ForcedChoicePlan, ForcedToolCallCheck

__all__ = ["AnswerPlan", "plan_answer"]

NAME_SENT_KEY = "model_name_sent"


class AnswerPlan:
    """The checks and notes for the answer to one adapted request."""

    __slots__ = ("forced", "metadata", "schema")

    def __init__(
        self,
        forced: ForcedToolCallCheck | None,
        schema: SchemaReplyCheck | None,
        metadata: dict[str, Any],
    ) -> None:
        self.forced = forced
        self.schema = schema
        self.metadata = metadata

    def finish(self, result: ChatResult) -> ChatResult:
        """Check every choice of a whole answer; add the notes. Raises on a failed check."""
        generations: list[ChatGeneration] = []
        for generation in result.generations:
            message = generation.message
            info = generation.generation_info or {}
            draft = answer_draft(message, info.get("finish_reason"))
            value = self._check(draft)
            if value is not None and isinstance(message.content, str):
                bare = _bare_json(message.content, value)
                if bare is not None:
                    message = message.model_copy(update={"content": bare})
                    generation = ChatGeneration(
                        message=message, generation_info=generation.generation_info
                    )
            if self.metadata:
                message.response_metadata.update(self.metadata)
            generations.append(generation)
        return ChatResult(generations=generations, llm_output=result.llm_output)

    def watch(self, chunks: Iterator[ChatGenerationChunk]) -> Iterator[ChatGenerationChunk]:
        """Pass a stream's chunks on, noted; check the answer once they have all gone."""
        draft = self._draft()
        for chunk in chunks:
            self._see(chunk, draft)
            yield chunk
        if draft is not None:
            self._check(draft)

    async def awatch(
        self, chunks: AsyncIterator[ChatGenerationChunk]
    ) -> AsyncIterator[ChatGenerationChunk]:
        """The async twin of :meth:`watch`."""
        draft = self._draft()
        async for chunk in chunks:
            self._see(chunk, draft)
            yield chunk
        if draft is not None:
            self._check(draft)

    def _draft(self) -> _Draft | None:
        return streamed_draft() if self.forced is not None or self.schema is not None else None

    def _see(self, chunk: ChatGenerationChunk, draft: _Draft | None) -> None:
        message = chunk.message
        if self.metadata and getattr(message, "chunk_position", None) == "last":
            message.response_metadata.update(self.metadata)
        if draft is not None:
            draft.add_message(message)

    def _check(self, draft: _Draft) -> dict[str, Any] | None:
        if self.forced is not None:
            self.forced.check(draft.text, draft.called_tools())
        return self.schema.check(draft) if self.schema is not None else None


def plan_answer(
    messages: Sequence[BaseMessage],
    params: dict[str, Any],
    *,
    written_name: str,
    rules: ModelRules | None,
    forced: ForcedChoicePlan | None,
    moonshot: bool,
) -> tuple[Sequence[BaseMessage], AnswerPlan | None]:
    """The messages to send (instructions added) and the answer's plan (None: nothing to do).

    ``params``: the body fields, already adapted to the model (the name it is
    sent under, a forced choice's plan applied); a ``json_schema``
    ``response_format`` in them is replaced here where the service needs it.
    ``written_name``: the model name as the user wrote it.
    """
    schema = plan_schema_format(
        params.get("response_format"),
        moonshot=moonshot,
        model_name=written_name,
        rules=rules,
        with_tools=bool(params.get("tools")),
    )
    if schema is not None:
        params["response_format"] = schema.response_format
    sent = params.get("model")
    forced_check = forced.check if forced is not None else None
    if forced_check is None and schema is None and sent == written_name:
        return messages, None
    for instruction in (
        forced.instruction if forced is not None else None,
        schema.instruction if schema is not None else None,
    ):
        if instruction is not None:
            messages = add_instruction(messages, instruction)
    metadata = {NAME_SENT_KEY: sent} if sent != written_name else {}
    schema_check = schema.check if schema is not None else None
    return messages, AnswerPlan(forced_check, schema_check, metadata)


def _bare_json(content: str, value: dict[str, Any]) -> str | None:
    """The object as bare JSON text when ``content`` holds more (a fence); None when it is bare."""
    try:
        if json.loads(content) == value:
            return None
    except ValueError:
        pass
    return json.dumps(value, ensure_ascii=False)
