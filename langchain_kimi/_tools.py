"""Tools and ``tool_choice`` in Kimi's wire form, and what each model makes of them. Pure.

Kimi takes OpenAI-style function tools plus its own built-in web search,
``{"type": "builtin_function", "function": {"name": "$web_search"}}``, which is
passed through untouched. With thinking on, no model takes the built-in web
search (refused here, before a request is spent), and each model takes only
some ``tool_choice`` values. A *forced* choice (``"required"``, a named tool)
follows the model's ``forced_tool_choice`` rule (see ``_profiles``), so that it
works on every model, as :func:`plan_forced_choice` works out:

``send``
    The model takes it (kimi-k3 takes ``"required"`` while thinking, so a named
    tool goes out as ``"required"`` with only that tool offered, thinking or
    not; the models that never think take anything).
``thinking_off``
    The model takes it only without thinking (kimi-k2.5): thinking is turned off
    for that request.
``emulate``
    The model refuses it in every mode (kimi-k2.6, kimi-k2.7-code,
    kimi-k2-thinking): ``"auto"`` is sent, offering only the named tool when one
    is named, with a system instruction to call a tool, and the answer is
    checked (:class:`ForcedToolCallCheck`): one without the call raises
    :class:`~langchain_kimi.errors.KimiToolChoiceError`.

Each adaptation warns once per model name, at the user's line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_kimi._profiles import ModelRules
from langchain_kimi._user_warnings import warn_at_user_code
from langchain_kimi.errors import KimiToolChoiceError

ToolLike = Mapping[str, Any] | type | Callable[..., Any] | BaseTool

WEB_SEARCH_TOOL: dict[str, Any] = {
    "type": "builtin_function",
    "function": {"name": "$web_search"},
}
_UNFORCED_CHOICES = frozenset({"auto", "none"})
# How much of a declined answer the error quotes (the whole text is on the error).
_QUOTED_CHARS = 200
# Model names already warned about an adapted forced tool_choice (once per process).
_warned_forced: set[str] = set()


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
    if tools and not rules.accepts_tool_choice(tool_choice, thinking=True):
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


def check_binding(
    model: str,
    rules: ModelRules | None,
    tools: Sequence[Mapping[str, Any]],
    tool_choice: Any,
    *,
    thinking: bool | None,
) -> None:
    """What ``bind_tools`` checks: the tools and the choice, as the request would send them."""
    if rules is None:
        return
    thinks = rules.thinks(thinking)
    forced = plan_forced_choice(model, rules, tools, tool_choice, thinking=thinks)
    if forced is not None:
        tool_choice = forced.tool_choice
        thinks = thinks and not forced.thinking_off
    check_tools_allowed(model, rules, tools, tool_choice, thinking=thinks)


def _answer_without_thinking(rules: ModelRules) -> str:
    """What to do instead, for a model that is thinking: switch it off if it can."""
    if rules.thinking in ("default_on", "toggle"):
        return "pass thinking=False"
    return "use a model that can answer without thinking (kimi-k2.6 with thinking=False)"


# --- forced tool choice ---------------------------------------------------------------


def forced_tool_name(tool_choice: Any) -> str | None:
    """``"required"`` or the named tool's name for a forced wire ``tool_choice``; else None.

    >>> forced_tool_name({"type": "function", "function": {"name": "f"}}), forced_tool_name("auto")
    ('f', None)
    """
    if tool_choice == "required":
        return "required"
    if isinstance(tool_choice, Mapping) and tool_choice.get("type") == "function":
        function = tool_choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else None
        if isinstance(name, str) and name:
            return name
    return None


class ForcedChoicePlan:
    """What one request sends for a forced ``tool_choice``, and what its answer must show.

    ``tool_choice``/``tools``: the values to send instead of the user's;
    ``thinking_off``: switch thinking off for this request; ``instruction``: a
    system instruction to add; ``check``: run on the answer (emulation only).
    """

    __slots__ = ("check", "instruction", "thinking_off", "tool_choice", "tools")

    def __init__(
        self,
        *,
        tool_choice: Any,
        tools: list[Any] | None,
        thinking_off: bool = False,
        instruction: str | None = None,
        check: ForcedToolCallCheck | None = None,
    ) -> None:
        self.tool_choice = tool_choice
        self.tools = tools
        self.thinking_off = thinking_off
        self.instruction = instruction
        self.check = check

    def apply(self, params: dict[str, Any], thinking: bool | None) -> bool | None:
        """Put the plan into the request's ``params``; returns the thinking switch to use."""
        params["tool_choice"] = self.tool_choice
        if self.tools is not None:
            params["tools"] = self.tools
        if self.thinking_off:
            params["thinking"] = thinking = False
        return thinking


def plan_forced_choice(
    model: str,
    rules: ModelRules | None,
    tools: Sequence[Any] | None,
    tool_choice: Any,
    *,
    thinking: bool,
) -> ForcedChoicePlan | None:
    """How to send a forced ``tool_choice`` to ``model``; None when nothing changes.

    ``rules`` are the model's (None for a model the client does not know: its
    choice is sent as given); ``thinking``: whether the request would think.
    A named tool that is not among ``tools`` raises ``ValueError`` (the service
    could not call it). Warns once per model name when the request is adapted.
    """
    forced = forced_tool_name(tool_choice)
    offered = list(tools or ())
    if rules is None or forced is None or not offered:
        # No tools (yet): a model_kwargs choice whose tools come per call, or a
        # request the service will judge. Nothing to adapt.
        return None
    if forced != "required" and forced not in [tool_name(tool) for tool in offered]:
        raise ValueError(
            f"tool_choice forces the tool {forced!r}, which is not among the tools offered "
            f"({[tool_name(tool) for tool in offered]}): bind it with bind_tools"
        )
    only_named = offered if forced == "required" else [t for t in offered if tool_name(t) == forced]
    rule = rules.forced_tool_choice
    if rule == "send":
        if forced != "required" and rules.thinking != "never":
            # A named tool is refused while thinking, and whether kimi-k3 honours
            # thinking=False is disputed: "required" with only that tool is the same
            # ask, taken in either mode.
            return ForcedChoicePlan(tool_choice="required", tools=only_named)
        return None
    if rule == "thinking_off":
        if not thinking:
            return None
        _warn_once(
            model,
            f"{model} takes a forced tool_choice only with thinking off: ChatKimi turns "
            "thinking off for each request that forces a tool (their answers carry no "
            "reasoning). Leave tool_choice unforced to keep thinking",
        )
        return ForcedChoicePlan(tool_choice=tool_choice, tools=None, thinking_off=True)
    _warn_once(
        model,
        f"{model} refuses a forced tool_choice: ChatKimi emulates it, sending "
        "tool_choice='auto' (with only the named tool, when one is named) and an instruction "
        "to call a tool, and raises KimiToolChoiceError if the answer calls none. A model "
        "that takes a forced choice: kimi-k3, kimi-k2-instruct-0905",
    )
    return ForcedChoicePlan(
        tool_choice="auto",
        tools=only_named,
        instruction=forced_call_instruction(None if forced == "required" else forced),
        check=ForcedToolCallCheck(model, forced),
    )


def forced_call_instruction(name: str | None) -> str:
    """The system instruction that stands in for a forced ``tool_choice``.

    >>> forced_call_instruction("get_weather")[:60]
    'You must answer this request by calling the tool `get_weather'
    """
    if name is None:
        target = "one of the tools offered to you (at least one tool call)"
    else:
        target = f"the tool `{name}`"
    return f"You must answer this request by calling {target}. Do not answer in text instead."


class ForcedToolCallCheck:
    """Checks that an answer honoured an emulated forced ``tool_choice``.

    ``tool`` is ``"required"`` (any tool call will do) or the forced tool's name.
    Invalid calls (arguments that are not JSON) count: the model did call.
    """

    __slots__ = ("model", "tool")

    def __init__(self, model: str, tool: str) -> None:
        self.model = model
        self.tool = tool

    def check(self, text: str, called: Sequence[str]) -> None:
        """Raise :class:`KimiToolChoiceError` unless ``called`` holds the forced call.

        ``text``: the answer's text; ``called``: the names of the tools it called.
        """
        called = tuple(called)
        if called and (self.tool == "required" or self.tool in called):
            return
        wanted = "a tool" if self.tool == "required" else f"the tool {self.tool!r}"
        instead = f"it called {list(called)}" if called else "it answered in text"
        quoted = text[:_QUOTED_CHARS] + ("..." if len(text) > _QUOTED_CHARS else "")
        raise KimiToolChoiceError(
            f"{self.model} declined the forced tool_choice: it was asked to call {wanted} and "
            f"{instead} ({quoted!r}). {self.model} refuses a forced tool_choice, so ChatKimi "
            "emulated it with tool_choice='auto' and an instruction. Ask again, make the "
            "prompt call for the tool, or use a model that takes a forced choice (kimi-k3)",
            model=self.model,
            tool_choice=self.tool,
            content=text,
            called=called,
        )


def _warn_once(model: str, message: str) -> None:
    if model not in _warned_forced:
        _warned_forced.add(model)
        warn_at_user_code(message)
