"""Tools and ``tool_choice`` in Kimi's wire form, and the limits thinking puts on them. Pure.

Kimi takes OpenAI-style function tools plus its own built-in web search,
``{"type": "builtin_function", "function": {"name": "$web_search"}}``, which is
passed through untouched. With thinking on, the service refuses a forced
``tool_choice`` and the built-in web search; both are caught here, before a
request is spent on them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

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


def check_tools_allowed(
    model: str, tools: Sequence[Mapping[str, Any]] | None, tool_choice: Any
) -> None:
    """Raise what the service would answer with a 400 for a thinking request."""
    if tool_choice is not None and not (
        isinstance(tool_choice, str) and tool_choice in _UNFORCED_CHOICES
    ):
        raise ValueError(
            f"{model} is thinking, and Kimi refuses a forced tool_choice ({tool_choice!r}) "
            "in thinking mode: use tool_choice='auto' (or 'none'), or pass thinking=False "
            "(kimi-k2.5/k2.6) or a non-thinking model"
        )
    for tool in tools or ():
        if tool.get("type") == "builtin_function":
            raise ValueError(
                f"{model} is thinking, and Kimi does not allow the built-in "
                f"{tool_name(tool)} tool in thinking mode: pass thinking=False "
                "(kimi-k2.5/k2.6) or use a non-thinking model"
            )
