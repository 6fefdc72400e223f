"""Tools and ``tool_choice`` in Kimi's wire form, and the limits thinking puts on them. Pure.

Kimi takes OpenAI-style function tools plus its own built-in web search,
``{"type": "builtin_function", "function": {"name": "$web_search"}}``, which is
passed through untouched. With thinking on, each model accepts only some
``tool_choice`` values (``"auto"``/``"none"``; kimi-k3 also ``"required"``; a
named tool never) and no built-in web search: the model's rules (see
``_profiles``) say which, and both are caught here, before a request is spent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_kimi._profiles import ModelRules

ToolLike = Mapping[str, Any] | type | Callable[..., Any] | BaseTool

WEB_SEARCH_TOOL: dict[str, Any] = {
    "type": "builtin_function",
    "function": {"name": "$web_search"},
}
_UNFORCED_CHOICES = frozenset({"auto", "none"})


def format_tool(tool: ToolLike, *, strict: bool | None = None) -> dict[str, Any]:
    """Any tool form LangChain users pass -> Kimi's ``tools`` entry."""
    if isinstance(tool, Mapping) and tool.get("type") == "builtin_function":
        return dict(tool)
    return convert_to_openai_tool(tool, strict=strict)


def tool_name(tool: Mapping[str, Any]) -> str:
    return str(tool.get("function", {}).get("name", ""))


def format_tool_choice(
    tool_choice: str | bool | Mapping[str, Any] | None, tools: Sequence[Mapping[str, Any]]
) -> str | dict[str, Any] | None:
    """LangChain's ``tool_choice`` forms -> Kimi's.

    ``"auto"``/``"none"`` pass; ``"any"`` and ``"required"`` mean "call some tool"
    (``"required"``); a tool's name or ``True`` (with exactly one tool) forces that
    tool; a dict is taken as already in wire form.
    """
    if tool_choice is None or tool_choice is False:
        return None
    if tool_choice is True:
        if len(tools) != 1:
            raise ValueError(
                f"tool_choice=True needs exactly one tool to force, got {len(tools)}; "
                "pass the tool's name instead"
            )
        return {"type": "function", "function": {"name": tool_name(tools[0])}}
    if isinstance(tool_choice, Mapping):
        return dict(tool_choice)
    if tool_choice in _UNFORCED_CHOICES:
        return tool_choice
    if tool_choice in ("any", "required"):
        return "required"
    names = [tool_name(tool) for tool in tools]
    if tool_choice not in names:
        raise ValueError(f"tool_choice {tool_choice!r} is not one of the bound tools {names}")
    return {"type": "function", "function": {"name": tool_choice}}


def describe_tool_choice(choice: Any) -> str:
    """A wire ``tool_choice`` as error messages name it."""
    if isinstance(choice, Mapping):
        name = choice.get("function", {}).get("name") if choice.get("type") == "function" else None
        return f"{name!r} (a named tool)" if name else repr(dict(choice))
    return repr(choice)


def check_tools_allowed(
    model: str,
    rules: ModelRules | None,
    tools: Sequence[Mapping[str, Any]] | None,
    tool_choice: Any,
    *,
    thinking: bool,
) -> None:
    """Raise what the service would answer with a 400: a ``tool_choice`` or tool it refuses.

    ``model`` is the name as the user wrote it (for the message); ``rules`` its
    resolved rules, None for a model the client does not know (nothing is
    checked: the service decides). Only thinking requests have limits.
    """
    if rules is None or not thinking:
        return
    if not rules.accepts_tool_choice(tool_choice, thinking=True):
        accepted = "tool_choice=" + ", ".join(
            repr(value) for value in sorted(rules.tool_choice_when_thinking)
        )
        raise ValueError(
            f"{model} is thinking, and refuses the forced tool_choice "
            f"{describe_tool_choice(tool_choice)} in thinking mode: it accepts {accepted}. "
            f"Use one of those, or {_answer_without_thinking(rules)} to force a tool"
        )
    if rules.web_search_when_thinking:
        return
    for tool in tools or ():
        if tool.get("type") == "builtin_function":
            raise ValueError(
                f"{model} is thinking, and Kimi does not allow the built-in "
                f"{tool_name(tool)} tool in thinking mode: {_answer_without_thinking(rules)}"
            )


def _answer_without_thinking(rules: ModelRules) -> str:
    """What to do instead, for a model that is thinking: switch it off if it can."""
    if rules.thinking in ("default_on", "toggle"):
        return "pass thinking=False"
    return "use a model that can answer without thinking (kimi-k2.6 with thinking=False)"
