"""``ChatKimi``: Kimi chat models behind LangChain's ``BaseChatModel`` interface.

This module wires the pure steps together and holds no protocol logic:
messages -> ``_payload`` -> ``_transport`` (sync) / ``_async_transport`` ->
``_answer_reader`` (``_sse`` + ``_response``) -> LangChain results. What each
model accepts comes from ``_profiles``.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Self
from urllib.parse import urlsplit

import requests
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import (
    BaseChatModel,
    LangSmithParams,
    LanguageModelInput,
    ModelProfile,
)
from langchain_core.load.serializable import SerializedConstructor, SerializedNotImplemented
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.prompt_values import ChatPromptValue, PromptValue
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils import from_env, secret_from_env
from langchain_core.utils.utils import _build_model_kwargs
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from langchain_kimi import _structured
from langchain_kimi._answer_plan import AnswerPlan, plan_answer
from langchain_kimi._answer_reader import StreamReader, read_completion
from langchain_kimi._configuration import (
    TOKEN_ENV,
    check_at_least,
    check_base_url,
    check_timeout,
    credential_refusal,
    field_names,
    header_secret_id,
    header_secrets,
    looks_like_credential,
    refuse_to_pickle_clients,
)
from langchain_kimi._content import fill_missing_media_types
from langchain_kimi._payload import build_request_body
from langchain_kimi._profiles import (
    ApiFlavor,
    ModelRules,
    closest_known_model,
    move_output_limit,
    name_to_send,
    resolve_model,
    unknown_model_message,
)
from langchain_kimi._thinking import apply_thinking, thinking_switch
from langchain_kimi._tools import (
    ForcedChoicePlan,
    check_binding,
    check_tools_allowed,
    format_tool,
    format_tool_choice,
    plan_forced_choice,
)
from langchain_kimi._transport import (
    DEFAULT_MAX_CONNECTIONS,
    Endpoint,
    RetryPolicy,
    SyncTransport,
    check_headers,
)
from langchain_kimi._user_warnings import warn_at_user_code
from langchain_kimi._version import __version__
from langchain_kimi.errors import (
    KimiStreamInterruptedError,
    KimiTimeoutError,
)

if TYPE_CHECKING:
    # What BaseChatModel.bind returns (a RunnableBinding typed for chat models).
    from langchain_core.language_models.chat_models import _ChatModelBinding

    from langchain_kimi._async_transport import AsyncTransport
    from langchain_kimi._platform import KimiBalance
    from langchain_kimi.batch import KimiBatchJob
    from langchain_kimi.files import KimiFiles

DEFAULT_BASE_URL = "https://api.acedata.cloud/kimi"
# Guards the lazy creation of every model's sync transport (rare, so one lock).
_TRANSPORT_LOCK = threading.Lock()


def _new_transport_lock_in_child() -> None:
    # Another thread may have held the lock when the process forked.
    global _TRANSPORT_LOCK
    _TRANSPORT_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_new_transport_lock_in_child)
BASE_URL_ENV = "KIMI_BASE_URL"
# Hosts of Moonshot's own API (international and China): base URLs elsewhere get
# Ace Data Cloud's semantics unless api_flavor says otherwise.
MOONSHOT_HOSTS = frozenset({"api.moonshot.ai", "api.moonshot.cn"})
# Model names already warned about as near misses of a known model (once per process).
_warned_near_miss: set[str] = set()

# Fields that go into the body under the same name when set.
_BODY_FIELDS = (
    "temperature",
    "top_p",
    "max_tokens",
    "n",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "reasoning_effort",
    "prompt_cache_key",
)
# Call-time kwargs that steer the call and are not body fields.
_NOT_BODY_KWARGS = frozenset({"stream", "stream_usage", "extra_body"})
# Settings the transports read from their Endpoint: a value assigned after the
# first call is handed to them, and their connection pools are kept.
_ENDPOINT_FIELDS = frozenset(
    {"api_key", "default_headers", "timeout", "connect_timeout", "total_timeout", "max_retries"}
)
# Settings a transport is built with: a value assigned later gets new transports.
_TRANSPORT_FIELDS = frozenset({"base_url", "max_connections", "http_client", "http_async_client"})
# Shown instead of a default header's value.
_HIDDEN = "**********"


class ChatKimi(BaseChatModel):
    """Kimi (Moonshot AI) chat models, served by Ace Data Cloud or Moonshot.

    Unlike ``ChatOpenAI`` pointed at Kimi, ``ChatKimi`` keeps the model's
    reasoning (``additional_kwargs["reasoning_content"]`` and reasoning content
    blocks) and sends it back with every assistant message, so tool loops on the
    thinking models (kimi-k2.5, kimi-k2-thinking, kimi-k3) do not fail on their
    second call. It knows which parameters each model fixes, raises typed errors
    that carry the service's ``trace_id``, and retries only where a retry cannot
    be charged twice.

    Setup:
        Install the package from its repository (the name ``langchain-kimi`` on
        the Python Package Index is an unrelated placeholder) and set your Ace
        Data Cloud token:

        ```bash
        pip install .    # in a clone of the repository
        export ACEDATACLOUD_API_TOKEN="your-token"
        ```

    Key init args:
        Every field, with its type, default and what it does, is listed below
        (the reference shows them grouped). The ones most programs set:

        - `model` (alias `model_name`; default `"kimi-k2.5"`): The model. Free text:
          new models work without an upgrade; known ones (`docs/models.md`) are
          recognised without case or a `moonshotai/` prefix, get a `profile` and checks,
          and reach Ace Data Cloud and Moonshot in the catalogue's spelling
          (`response_metadata["model_name_sent"]`).
        - `thinking` (default `None`: the model's default): `True`/`False` switch
          thinking where the model allows it (kimi-k2.5, kimi-k2.6; kimi-k3 has no
          switch); a switch the model cannot honour raises `ValueError`.
        - `reasoning_effort` (default `None`): kimi-k3's effort: `"low"`, `"high"`,
          `"max"`.
        - `preserve_thinking`, `prompt_cache_key` (default `None`): Preserved Thinking
          (kimi-k2.6); Moonshot's prompt cache key.
        - `temperature`, `top_p`, `max_tokens`, `stop`, `n`, `presence_penalty`,
          `frequency_penalty`, `seed` (default unset): Sent only when set. Where the
          model fixes sampling (kimi-k2.5, kimi-k2.6, kimi-k2.7-code) they are not sent,
          and another value warns once. `max_tokens` goes out under the field the model
          takes (`max_completion_tokens` for kimi-k3).
        - `model_kwargs`, `extra_body` (default empty): Other body fields Kimi accepts;
          fields merged into every body as given.
        - `api_key` (default `ACEDATACLOUD_API_TOKEN`): The token (a `SecretStr`, never
          shown).
        - `base_url` (default `KIMI_BASE_URL`, else `https://api.acedata.cloud/kimi`):
          `https://api.moonshot.ai/v1` talks to Moonshot directly.
        - `api_flavor` (default from `base_url`'s host): `"acedata"` or `"moonshot"`:
          which service `base_url` speaks for (`resolved_api_flavor` says which is in
          use).
        - `timeout`, `connect_timeout`, `total_timeout` (default `120`, `10`, none):
          Seconds: the longest silence while reading, to connect, for a whole call with
          its retries.
        - `max_retries`, `retry_on_ambiguous_failure` (default `2`, `False`): Retries
          when no connection was made and after 408/429/5xx (0 disables); the opt-in
          also retries a connection lost after sending.
        - `max_connections`, `default_headers` (default `512`, none): Connections open
          at once per event loop or process; extra headers on every request.
        - `http_client`, `http_async_client` (default none): Your own `requests.Session`
          / `aiohttp.ClientSession`, used as given.

    Instantiate:
        ```python
        from langchain_kimi import ChatKimi

        model = ChatKimi(model="kimi-k2.5", max_tokens=16384)
        ```

    Invoke:
        ```python
        message = model.invoke("Why is the sky blue? One sentence.")
        message.content                               # the answer
        message.additional_kwargs["reasoning_content"]  # what it thought
        ```

    Stream:
        ```python
        for chunk in model.stream("Tell me a joke"):
            print(chunk.content, end="", flush=True)
        ```

    Async:
        ```python
        message = await model.ainvoke("hi")
        async for chunk in model.astream("hi"):
            ...
        messages = await model.abatch(["hi", "hello"])
        ```

    Tool calling:
        ```python
        from langchain_core.tools import tool

        @tool
        def get_weather(city: str) -> str:
            \"\"\"Current weather in a city.\"\"\"
            return "sunny"

        model_with_tools = model.bind_tools([get_weather])
        ai = model_with_tools.invoke("Weather in Paris?")
        ai.tool_calls
        # [{"name": "get_weather", "args": {"city": "Paris"},
        #   "id": "functions.get_weather:0", "type": "tool_call"}]
        ```

        A forced ``tool_choice`` works on every model: sent (kimi-k3), with
        thinking off (kimi-k2.5), or emulated where the model refuses it
        (kimi-k2.6, kimi-k2.7-code: ``KimiToolChoiceError`` if it declines).

    Structured output:
        ```python
        from pydantic import BaseModel

        class Joke(BaseModel):
            setup: str
            punchline: str

        model.with_structured_output(Joke).invoke("A joke about cats")
        ```

        Built on Kimi's JSON mode: the schema goes into a system instruction and
        the reply is validated on arrival. On Moonshot's API,
        ``method="json_schema"`` sends the schema as ``response_format`` instead.
        A ``json_schema`` ``response_format`` (LangChain agents') works on both.

    Token usage:
        ```python
        ai.usage_metadata
        # {"input_tokens": 12, "output_tokens": 80, "total_tokens": 92,
        #  "output_token_details": {"reasoning": 50}}
        ```

    Response metadata:
        ```python
        ai.response_metadata
        # {"model_name": "kimi-k2.5", "finish_reason": "stop", "id": "chatcmpl-...",
        #  "model_provider": "kimi", ...}
        ```

    """

    # validation_alias, not alias: type checkers then read the constructor's
    # keyword as `model`, while `model_name=` (LangChain's other spelling) works too.
    model: str = Field(default="kimi-k2.5", validation_alias=AliasChoices("model", "model_name"))
    """Model name, e.g. ``kimi-k2.5``, ``kimi-k2-thinking``, ``kimi-k3``."""
    api_key: SecretStr | None = Field(default_factory=secret_from_env(TOKEN_ENV, default=None))
    """Ace Data Cloud (or Moonshot) API token; defaults to ``ACEDATACLOUD_API_TOKEN``."""
    base_url: str = Field(
        default_factory=from_env(BASE_URL_ENV, default=DEFAULT_BASE_URL), validate_default=True
    )
    """Base URL; requests go to ``{base_url}/chat/completions``."""
    timeout: float | None = 120.0
    """Read timeout in seconds: the longest silence allowed while waiting for the
    answer or between its pieces (None waits forever). Not retried."""
    connect_timeout: float | None = 10.0
    """Connect timeout in seconds (None waits forever). Retried."""
    max_retries: int = 2
    """Retries after failures to connect and 408/429/5xx answers; 0 disables."""
    retry_on_ambiguous_failure: bool = False
    """Also retry when the connection is lost after the request was sent and before
    any answer. The service may have received it whole: a retry can run, and be
    charged, twice. Off by default; nothing is retried once an answer has begun."""
    temperature: float | None = None
    """Sampling temperature. Sent only when set; a model that fixes it (see the
    models page) does not get it, and a different value warns once."""
    top_p: float | None = None
    """Nucleus sampling. Sent only when set; fixed by some models, like ``temperature``."""
    max_tokens: int | None = None
    """Output limit. Thinking models count reasoning against it: give them 16K+."""
    stop: list[str] | str | None = Field(
        default=None, validation_alias=AliasChoices("stop", "stop_sequences")
    )
    """Stop sequences (alias ``stop_sequences``): generation ends before any of them."""
    n: int | None = None
    """Answers to generate per request (``invoke`` returns the first; ``generate``
    returns all). Cannot be streamed; fixed at 1 by some models."""
    presence_penalty: float | None = None
    """Presence penalty. Sent only when set; fixed by some models."""
    frequency_penalty: float | None = None
    """Frequency penalty. Sent only when set; fixed by some models."""
    seed: int | None = None
    """Seed for sampling, sent only when set."""
    thinking: bool | None = None
    """None: the model's default; True/False: ``{"type": "enabled"/"disabled"}``
    (kimi-k3 takes no such field: True is not sent, False is refused)."""
    preserve_thinking: bool | None = None
    """Preserved Thinking (earlier turns' reasoning reaches the model, billed as input):
    True sends ``keep: "all"`` on kimi-k2.6; kimi-k2.7-code and kimi-k3 always preserve."""
    prompt_cache_key: str | None = None
    """Moonshot's prompt cache key (a session or task id, for more cache hits); sent when set."""
    reasoning_effort: str | None = None
    """How hard the model reasons, where it documents levels (kimi-k3: ``"low"``,
    ``"high"``, ``"max"``). Another value, or any value for a known model without
    levels, is refused before sending; an unknown model gets it as given."""
    stream_usage: bool = True
    """Ask for token usage at the end of streams."""
    streaming: bool = False
    """Stream under the hood even for ``invoke`` (callbacks get tokens as they come)."""
    default_headers: dict[str, str] | None = None
    """Extra HTTP headers on every request; one you set replaces ours (``User-Agent``...)."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Other request body fields Kimi accepts (``response_format``, ``user``...)."""
    extra_body: dict[str, Any] | None = None
    """Fields merged into the top level of every request body, as given (also a
    call option: ``model.invoke(..., extra_body={...})``); for fields this package
    does not model, e.g. a gateway's own. Merged last: they override the rest."""
    count_tokens_with_service: bool | None = None
    """How ``get_num_tokens_from_messages`` counts (docs/tokens.md). None (default):
    Moonshot's own count on Moonshot (one request per call, as ChatAnthropic asks
    Anthropic's), the local estimate elsewhere. False: always the local estimate
    (no network). True: always the service's count (Moonshot only)."""
    total_timeout: float | None = None
    """The longest a whole call may take, in seconds, retries and waits included:
    ``invoke``, ``stream`` and their async twins end with ``KimiTimeoutError`` at
    that point, however slowly the server dribbles. None (default): no limit
    beyond ``timeout``, which only measures silence."""
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    """The most connections open at once: per event loop for async calls, per
    process for sync ones (512 by default, so a 500-call ``abatch`` runs at once).
    Calls beyond it wait for a free connection."""
    http_client: Any = Field(default=None, exclude=True)
    """Your own ``requests.Session`` for sync calls, used as given (its proxies,
    certificates, adapters) and never closed by ChatKimi."""
    http_async_client: Any = Field(default=None, exclude=True)
    """Your own ``aiohttp.ClientSession`` for async calls, used as given and never
    closed by ChatKimi. It belongs to the event loop it was created in: use the
    model from that loop only."""
    api_flavor: ApiFlavor | None = None
    """Which service's request semantics ``base_url`` speaks: ``"moonshot"`` (Moonshot's
    own API, which takes ``response_format`` of type ``json_schema``) or ``"acedata"``
    (Ace Data Cloud, which documents only ``json_object``). None (the default) decides
    from ``base_url``: ``api.moonshot.ai`` and ``api.moonshot.cn`` are Moonshot, any
    other host is taken as Ace Data Cloud. Set it for a proxy or gateway in front of
    Moonshot: ``ChatKimi(base_url="https://gateway.example/v1", api_flavor="moonshot")``."""

    # hide_input_in_errors: a refused argument can be a credential (a mistyped
    # api_key, a base_url with a password); pydantic would quote it, and a
    # model-level error would quote every argument, api_key included.
    # validate_assignment: `model.timeout = ...` gets the checks the constructor
    # applies, and so can take effect on the next call (see __setattr__).
    model_config = ConfigDict(
        populate_by_name=True, hide_input_in_errors=True, validate_assignment=True
    )

    _sync_transport: SyncTransport | None = PrivateAttr(default=None)
    _async_transport: AsyncTransport | None = PrivateAttr(default=None)
    _warned_fixed: set[tuple[str, str]] = PrivateAttr(default_factory=set)

    # --- validation ---------------------------------------------------------

    @model_validator(mode="before")
    @classmethod
    def _collect_model_kwargs(cls, values: Any, info: ValidationInfo) -> Any:
        """Unknown constructor arguments become body fields (with a warning).

        Except those named like a credential (``openai_api_key=``, ``token=``,
        ``kimi_key=``), here or in ``model_kwargs``: a mistyped ``api_key``
        would be sent to the service as a body field and shown in ``repr``, so
        it is refused, unquoted.
        """
        if not isinstance(values, dict):
            return values
        extra = values.get("model_kwargs")
        for key in extra if isinstance(extra, dict) else ():
            if looks_like_credential(str(key)):
                raise ValueError(credential_refusal(str(key), "model_kwargs key"))
        if info.field_name is not None:
            # An assignment (`model.x = ...`): values is the instance's whole
            # __dict__, cached properties included; only field_name is new.
            return values
        names = field_names(cls)
        for key in values:
            if key not in names and looks_like_credential(key):
                raise ValueError(credential_refusal(key, "unknown argument"))
        return _build_model_kwargs(values, names)

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        return check_base_url(value)

    @field_validator("default_headers", mode="before")
    @classmethod
    def _drop_unset_headers(cls, value: Any) -> Any:
        # A header whose value is None is not sent: what loads() gives for a
        # header value that secrets_map did not provide (see to_json).
        if isinstance(value, dict):
            return {name: item for name, item in value.items() if item is not None}
        return value

    @field_validator("default_headers")
    @classmethod
    def _check_headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        # Here, not at the first call: sync and async would fail differently.
        if value:
            check_headers(value)
        return value

    @field_validator("timeout", "connect_timeout", "total_timeout")
    @classmethod
    def _check_timeout(cls, value: float | None, info: ValidationInfo) -> float | None:
        return check_timeout(str(info.field_name), value)

    @field_validator("max_retries", "max_connections")
    @classmethod
    def _check_counts(cls, value: int, info: ValidationInfo) -> int:
        return check_at_least(
            str(info.field_name), value, 0 if info.field_name == "max_retries" else 1
        )

    @field_validator("http_client")
    @classmethod
    def _check_http_client(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, requests.Session):
            raise ValueError(
                f"http_client must be a requests.Session, got {type(value).__name__} "
                "(an aiohttp.ClientSession goes in http_async_client)"
            )
        return value

    @field_validator("http_async_client")
    @classmethod
    def _check_http_async_client(cls, value: Any) -> Any:
        if value is None:
            return value
        import aiohttp  # only when one is given: aiohttp is imported on the first async call

        if not isinstance(value, aiohttp.ClientSession):
            raise ValueError(
                f"http_async_client must be an aiohttp.ClientSession, got {type(value).__name__}"
            )
        return value

    @field_validator("max_tokens", "n")
    @classmethod
    def _check_positive(cls, value: int | None) -> int | None:
        if value is not None and value <= 0:
            raise ValueError(f"must be a positive integer, got {value}")
        return value

    @model_validator(mode="after")
    def _check_against_the_model(self) -> Self:
        """What is set on the model, checked against what the model takes, now.

        Errors and warnings then point at the line that built the model, not at
        the first call: a thinking switch or ``reasoning_effort`` the model
        cannot honour raises; a fixed parameter set to another value warns once.
        """
        self._apply_model_rules(self._model_params())
        return self

    # --- LangChain surface --------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "kimi-chat"

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        return ["langchain_kimi", "chat_models"]

    @property
    def lc_secrets(self) -> dict[str, str]:
        # default_headers is listed so that LangChain leaves the per-header
        # secret markers to_json puts there as they are (it escapes other dicts).
        return {"api_key": TOKEN_ENV, "default_headers": "KIMI_DEFAULT_HEADERS"}

    def to_json(self) -> SerializedConstructor | SerializedNotImplemented:
        """Serialized form (``dumpd``/``dumps``): header values are secrets, like the token.

        ``default_headers`` keeps its names; each value becomes a secret named
        ``KIMI_DEFAULT_HEADER_<NAME>`` (upper case, other characters ``_``), which
        ``loads(..., secrets_map={...})`` fills in. A header left without a
        value is not sent by the loaded model.
        """
        serialized = super().to_json()
        kwargs = serialized.get("kwargs")
        if isinstance(kwargs, dict) and "default_headers" in kwargs:
            kwargs["default_headers"] = {
                name: {"lc": 1, "type": "secret", "id": [header_secret_id(name)]}
                for name in self.default_headers or {}
            }
        return serialized

    def __repr_args__(self) -> Any:
        # Header names are enough to recognise a configuration; values can be keys.
        for name, value in super().__repr_args__():
            if name == "default_headers" and isinstance(value, dict):
                value = dict.fromkeys(value, _HIDDEN)
            yield name, value

    @property
    def _identifying_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.model, "base_url": self.base_url}
        for name in (*_BODY_FIELDS, "stop", "thinking"):
            value = getattr(self, name)
            if value is not None:
                params[name] = value
        return {**params, **self.model_kwargs}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="kimi",
            ls_model_name=str(kwargs.get("model", self.model)),
            ls_model_type="chat",
        )
        temperature = kwargs.get("temperature", self.temperature)
        if temperature is not None:
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None:
            params["ls_max_tokens"] = max_tokens
        stop_list = stop or kwargs.get("stop") or self.stop
        if stop_list:
            params["ls_stop"] = [stop_list] if isinstance(stop_list, str) else list(stop_list)
        return params

    def _resolve_model_profile(self) -> ModelProfile | None:
        rules = resolve_model(self.model)
        return rules.to_profile(self._effective_api_flavor()) if rules is not None else None

    def _is_moonshot(self) -> bool:
        return self._effective_api_flavor() == "moonshot"

    @property
    def resolved_api_flavor(self) -> ApiFlavor:
        """The service this model speaks to: ``api_flavor`` if set, else what
        ``base_url``'s host implies (``api.moonshot.ai``/``.cn``: ``"moonshot"``;
        any other host: ``"acedata"``). Read-only; ``api_flavor`` stays as set.

        >>> ChatKimi(base_url="https://api.moonshot.ai/v1", api_key="k").resolved_api_flavor
        'moonshot'
        """
        return self._effective_api_flavor()

    def _effective_api_flavor(self) -> ApiFlavor:
        """``api_flavor``, or the one ``base_url``'s host implies."""
        if self.api_flavor is not None:
            return self.api_flavor
        host = _host_of(self.base_url)
        return "moonshot" if host.lower() in MOONSHOT_HOSTS else "acedata"

    # --- request building ---------------------------------------------------

    def _model_params(self) -> dict[str, Any]:
        """The body fields set on the model itself (before call options)."""
        params: dict[str, Any] = {"model": self.model}
        for name in _BODY_FIELDS:
            value = getattr(self, name)
            if value is not None:
                params[name] = value
        if self.stop is not None:
            params["stop"] = self.stop
        if self.thinking is not None:
            params["thinking"] = self.thinking
        if self.preserve_thinking is not None:
            params["preserve_thinking"] = self.preserve_thinking
        if self.model_kwargs:
            params.update(self.model_kwargs)
        return params

    def _request_params(
        self, stop: list[str] | None, stream: bool, kwargs: Mapping[str, Any]
    ) -> tuple[dict[str, Any], bool, ModelRules | None, ForcedChoicePlan | None]:
        """The body fields but the messages, and what ``_apply_model_rules`` returns."""
        params = self._model_params()
        for key, value in kwargs.items():
            if key not in _NOT_BODY_KWARGS and value is not None:
                if looks_like_credential(key):
                    raise ValueError(credential_refusal(key, "call option"))
                params[key] = value
        if stop is not None:
            params["stop"] = stop
        if stream:
            params["stream"] = True
            if kwargs.get("stream_usage", self.stream_usage):
                params["stream_options"] = {"include_usage": True}
            if params.get("n", 1) != 1:
                raise ValueError("n > 1 cannot be streamed: use invoke for several choices")
        max_tokens = params.get("max_tokens")
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens <= 0):
            raise ValueError(f"max_tokens must be a positive integer, got {max_tokens!r}")
        thinking_active, rules, forced = self._apply_model_rules(params)
        return params, thinking_active, rules, forced

    def _apply_model_rules(
        self, params: dict[str, Any]
    ) -> tuple[bool, ModelRules | None, ForcedChoicePlan | None]:
        """Check ``params`` against the model's rules and adapt them, before anything is sent.

        Raises ``ValueError`` for what the model refuses (a thinking switch, a
        ``reasoning_effort``, a tool it refuses in its mode). Adapts: a forced
        ``tool_choice`` (``_tools.plan_forced_choice``), fixed parameters (dropped,
        warning once), the output-limit field, the name (``_profiles.name_to_send``).
        Returns whether the request thinks, the rules (None: an unknown model) and
        the forced-choice plan (None: sent as asked).
        """
        model = str(params["model"])
        rules = resolve_model(model)
        if rules is None:
            self._warn_near_miss(model)
        thinking = apply_thinking(params, model, rules)
        if rules is None:
            return params.get("thinking", {}).get("type") == "enabled", None, None
        rules.check_reasoning_effort(model, params.get("reasoning_effort"))
        tools, choice = params.get("tools"), params.get("tool_choice")
        forced = plan_forced_choice(model, rules, tools, choice, thinking=rules.thinks(thinking))
        thinking = forced.apply(params, thinking) if forced is not None else thinking
        thinking_active = rules.thinks(thinking)
        for name, fixed in rules.fixed_params(thinking).items():
            if name in params:
                self._warn_fixed(model, name, params.pop(name), fixed)
        check_tools_allowed(
            model, rules, params.get("tools"), params.get("tool_choice"), thinking=thinking_active
        )
        move_output_limit(params, rules.max_tokens_field, model)
        params["model"] = name_to_send(model, _host_of(self.base_url))
        return thinking_active, rules, forced

    def _warn_fixed(self, model: str, name: str, value: Any, fixed: float) -> None:
        if value == fixed or (model, name) in self._warned_fixed:
            return
        self._warned_fixed.add((model, name))
        warn_at_user_code(
            f"{model} fixes {name} at {fixed} in this mode; the value {value!r} "
            "is not sent (the service would refuse it)"
        )

    @staticmethod
    def _warn_near_miss(model: str) -> None:
        if model in _warned_near_miss:
            return
        closest = closest_known_model(model)
        if closest is not None:
            _warned_near_miss.add(model)
            warn_at_user_code(unknown_model_message(model, closest))

    def _encode(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        stream: bool,
        kwargs: Mapping[str, Any],
    ) -> bytes:
        return self._prepare(messages, stop, stream, kwargs)[0]

    def _prepare(
        self,
        messages: Sequence[BaseMessage],
        stop: list[str] | None,
        stream: bool,
        kwargs: Mapping[str, Any],
    ) -> tuple[bytes, AnswerPlan | None]:
        """The request body, and what its answer goes through (None: nothing)."""
        params, thinking_active, rules, forced = self._request_params(stop, stream, kwargs)
        written, moonshot = str(kwargs.get("model", self.model)), self._is_moonshot()
        messages, plan = plan_answer(
            messages, params, written_name=written, rules=rules, forced=forced, moonshot=moonshot
        )
        body = build_request_body(messages, params, thinking_active=thinking_active, rules=rules)
        for extra in (self.extra_body, kwargs.get("extra_body")):
            if extra:
                body.update(extra)
        try:
            return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(), plan
        except (TypeError, ValueError) as err:
            raise ValueError(f"the request body is not JSON-serializable: {err}") from None

    # --- transports -----------------------------------------------------------

    def _require_api_key(self) -> str:
        """The token to send; a missing, empty or blank one raises ``ValueError``.

        Surrounding whitespace (a token read from a file) is removed.
        """
        token = self.api_key.get_secret_value().strip() if self.api_key is not None else ""
        if not token:
            state = "is empty" if self.api_key is not None else "is not set"
            raise ValueError(
                f"no Kimi API token (api_key {state}): set {TOKEN_ENV} or pass api_key=... "
                "(for tests, point base_url at langchain_kimi.testing.FakeKimiServer)"
            )
        return token

    def _secrets(self) -> tuple[str, ...]:
        """What error messages must never show: the token, and credential-like headers."""
        token = self.api_key.get_secret_value().strip() if self.api_key is not None else ""
        return (*([token] if token else []), *header_secrets(self.default_headers))

    def _endpoint(self) -> Endpoint:
        headers = {
            "Authorization": f"Bearer {self._require_api_key()}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "User-Agent": f"langchain-kimi/{__version__}",
        }
        if self.default_headers:
            headers.update(self.default_headers)
        return Endpoint(
            url=f"{self.base_url}/chat/completions",
            headers=headers,
            connect_timeout=self.connect_timeout,
            read_timeout=self.timeout,
            retry=RetryPolicy(self.max_retries, self.retry_on_ambiguous_failure),
            total_timeout=self.total_timeout,
            secrets=self._secrets(),
        )

    def _sync(self) -> SyncTransport:
        transport = self._sync_transport
        if transport is None:
            # Threads of a batch reach here together on a model's first call:
            # one transport (one connection pool) for all of them.
            with _TRANSPORT_LOCK:
                transport = self._sync_transport
                if transport is None:
                    transport = self._sync_transport = SyncTransport(
                        self._endpoint(),
                        max_connections=self.max_connections,
                        session=self.http_client,
                    )
        return transport

    def _async(self) -> AsyncTransport:
        transport = self._async_transport
        if transport is None:
            # Imported here: aiohttp costs tens of milliseconds to import, paid
            # only by async users.
            from langchain_kimi._async_transport import AsyncTransport

            transport = self._async_transport = AsyncTransport(
                self._endpoint(),
                max_connections=self.max_connections,
                session=self.http_async_client,
            )
        return transport

    def close(self) -> None:
        """Close pooled sync connections (the next call opens new ones).

        Async connections need their event loop: ``await model.aclose()`` closes
        them, and each loop's are closed when ``asyncio.run`` ends it. Clients
        you passed in (``http_client``, ``http_async_client``) stay open.
        """
        transport, self._sync_transport = self._sync_transport, None
        if transport is not None:
            transport.close()

    async def aclose(self) -> None:
        """Close pooled connections, async (every loop's) and sync."""
        transport, self._async_transport = self._async_transport, None
        if transport is not None:
            await transport.aclose()
        self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "profile":
            # LangChain's own validator assigns the profile during construction;
            # validating that assignment would rerun every model validator inside
            # it, where LangChain suppresses errors (and so our warnings' context).
            self.__dict__[name] = value
            self.__pydantic_fields_set__.add(name)
            return
        # Validated first (validate_assignment): a refused value changes nothing.
        super().__setattr__(name, value)
        if name in _ENDPOINT_FIELDS:
            self._update_transports()
        elif name in _TRANSPORT_FIELDS:
            self._drop_transports()

    def _update_transports(self) -> None:
        """Hand the transports already open the endpoint the settings now describe."""
        if self._sync_transport is None and self._async_transport is None:
            return
        try:
            endpoint = self._endpoint()
        except ValueError:
            # No token now: the next call builds its transport and says so.
            self._drop_transports()
            return
        for transport in (self._sync_transport, self._async_transport):
            if transport is not None:
                transport.use_endpoint(endpoint)

    def _drop_transports(self) -> None:
        # Sync connections close now, async ones with their loop (only it can close them).
        self._async_transport = None
        self.close()

    def __copy__(self) -> Self:
        # Copies get their own connections: a copy closing its client must not
        # break the original, and a copy with another base_url must not use its pool.
        copied = super().__copy__()
        copied._reset_private_state()
        return copied

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        memo = {} if memo is None else memo
        for client in (self.http_client, self.http_async_client):
            if client is not None:
                # The user's own client is shared, not copied: it holds live
                # connections (an aiohttp session cannot even be copied), and
                # ChatKimi uses it as given.
                memo[id(client)] = client
        saved = (self._sync_transport, self._async_transport)
        self._sync_transport = self._async_transport = None
        try:
            copied = super().__deepcopy__(memo)
        finally:
            self._sync_transport, self._async_transport = saved
        copied._reset_private_state()
        return copied

    def __getstate__(self) -> dict[Any, Any]:
        refuse_to_pickle_clients(self.http_client, self.http_async_client)
        state = super().__getstate__()
        private = dict(state.get("__pydantic_private__") or {})
        private.update(_sync_transport=None, _async_transport=None, _warned_fixed=set())
        state["__pydantic_private__"] = private
        return state

    def _reset_private_state(self) -> None:
        self._sync_transport = None
        self._async_transport = None
        self._warned_fixed = set()

    # --- before LangChain's own handling of the messages ------------------------

    def _convert_input(self, model_input: LanguageModelInput) -> PromptValue:
        # invoke, stream and their async twins pass here before langchain-core
        # formats image blocks for tracing, where it refuses base64 data without a
        # mime_type: the type is read from the bytes first.
        prompt = super()._convert_input(model_input)
        if isinstance(prompt, ChatPromptValue):
            messages = fill_missing_media_types(prompt.messages)
            if messages is not prompt.messages:
                return ChatPromptValue(messages=messages)
        return prompt

    # --- the four calls -----------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        body, plan = self._prepare(messages, stop, False, kwargs)
        transport = self._sync()
        result = read_completion(transport.post(body), transport.endpoint.secrets)
        return result if plan is None else plan.finish(result)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        body, plan = self._prepare(messages, stop, False, kwargs)
        transport = self._async()
        result = read_completion(await transport.post(body), transport.endpoint.secrets)
        return result if plan is None else plan.finish(result)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        body, plan = self._prepare(messages, stop, True, kwargs)
        chunks = self._stream_answer(body)
        # A plan's check runs once the chunks have gone: the text was already yielded.
        yield from chunks if plan is None else plan.watch(chunks)

    def _stream_answer(self, body: bytes) -> Iterator[ChatGenerationChunk]:
        transport = self._sync()
        reader = StreamReader(transport.endpoint.secrets)
        try:
            # The transport stops reading once the reader has the answer's end.
            for raw in transport.stream(body, reader.answer_ended):
                yield from reader.feed(raw)
        except (KimiStreamInterruptedError, KimiTimeoutError) as err:
            raise reader.broken_off(err)  # noqa: B904 (err itself, or one that replaces it)
        yield from reader.finish()

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        body, plan = self._prepare(messages, stop, True, kwargs)
        chunks = self._astream_answer(body)
        async for chunk in chunks if plan is None else plan.awatch(chunks):
            yield chunk

    async def _astream_answer(self, body: bytes) -> AsyncIterator[ChatGenerationChunk]:
        transport = self._async()
        reader = StreamReader(transport.endpoint.secrets)
        try:
            async for raw in transport.stream(body, reader.answer_ended):
                for chunk in reader.feed(raw):
                    yield chunk
        except (KimiStreamInterruptedError, KimiTimeoutError) as err:
            raise reader.broken_off(err)  # noqa: B904 (err itself, or one that replaces it)
        for chunk in reader.finish():
            yield chunk

    # --- token counting (estimate: _tokens; accuracy: docs/tokens.md) -------------

    def get_num_tokens(self, text: str) -> int:
        """Estimated Kimi tokens in ``text`` alone: offline, no tokenizer download.

        ``model.get_num_tokens("Hello, world")  # 3``
        """
        if self.custom_get_token_ids is not None:
            return super().get_num_tokens(text)
        from langchain_kimi._tokens import estimate_text_tokens

        return estimate_text_tokens(text)

    def get_num_tokens_from_messages(
        self, messages: list[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """Estimated prompt tokens of a request with these messages (and ``tools``).

        The body is built as ``invoke`` builds it (replayed reasoning, tool calls,
        images, the tool schemas), then estimated offline. Works as a
        ``token_counter`` for ``trim_messages`` and the summarization middleware:
        ``trim_messages(history, max_tokens=8000, token_counter=model)``.
        """
        if self.custom_get_token_ids is not None:
            return super().get_num_tokens_from_messages(messages, tools)
        if isinstance(messages, (str, BaseMessage)) or not isinstance(messages, Sequence):
            raise TypeError(f"messages must be a list of messages, got {type(messages).__name__}")
        if not messages:
            return 0
        body = json.loads(self._encode(list(messages), None, False, {}))
        if tools:
            body["tools"] = [format_tool(tool) for tool in tools]
        return self._count_tokens(body)

    def _count_tokens(self, body: dict[str, Any]) -> int:
        """Prompt tokens of a request body: the one place that decides how they are counted.

        Moonshot's own count (``POST /tokenizers/estimate-token-count``) on Moonshot
        or when ``count_tokens_with_service`` is True (refused on Ace Data Cloud);
        otherwise the local estimate.
        """
        with_service = self.count_tokens_with_service
        if with_service is None:
            with_service = self._is_moonshot()
        if with_service:
            from langchain_kimi._platform import estimate_tokens

            return estimate_tokens(self, body)
        from langchain_kimi._tokens import estimate_request_tokens

        return estimate_request_tokens(body)

    # --- Moonshot's platform endpoints (logic: files, _platform) ----------------

    @property
    def files(self) -> KimiFiles:
        """Moonshot's Files API: ``model.files.upload(path, purpose="file-extract")``..."""
        from langchain_kimi.files import KimiFiles

        return KimiFiles(self)

    def balance(self) -> KimiBalance:
        """The Moonshot account's balance (USD): ``model.balance().available``."""
        from langchain_kimi._platform import balance

        return balance(self)

    async def abalance(self) -> KimiBalance:
        """Async :meth:`balance`."""
        from langchain_kimi._platform import abalance

        return await abalance(self)

    def batch_submit(
        self,
        inputs: Iterable[LanguageModelInput],
        *,
        completion_window: str = "24h",
        metadata: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> KimiBatchJob:
        """Send ``inputs`` through Moonshot's Batch API (40% cheaper; answered within the window).

        ``kwargs`` are what ``invoke`` takes (``tools=[...]``, ``response_format=...``,
        ``stop=...``). Returns the job: ``job.wait()``, then ``job.results()``, one
        ``AIMessage`` (or ``KimiError``) per input, in order. See docs/batch.md.
        """
        from langchain_kimi.batch import submit

        return submit(self, inputs, completion_window, metadata, kwargs)

    async def abatch_submit(
        self,
        inputs: Iterable[LanguageModelInput],
        *,
        completion_window: str = "24h",
        metadata: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> KimiBatchJob:
        """Async :meth:`batch_submit`."""
        from langchain_kimi.batch import asubmit

        return await asubmit(self, inputs, completion_window, metadata, kwargs)

    def batch_job(self, ids: str | Sequence[str]) -> KimiBatchJob:
        """Reattach to a job submitted earlier (``job.ids``), from any process."""
        from langchain_kimi.batch import KimiBatchJob

        return KimiBatchJob(self, [ids] if isinstance(ids, str) else list(ids))

    # --- tools and structured output ------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | bool | dict[str, Any] | None = None,
        parallel_tool_calls: bool | None = None,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (any LangChain form, or Kimi's ``$web_search`` built-in).

        ``tool_choice``: ``"auto"``, ``"none"``, ``"any"``/``"required"``, a tool
        name, ``True`` (the single tool) or a wire-form dict. A forced choice works
        on every model, the way the model takes one: sent as is (kimi-k3, models
        that do not think), with thinking off for that request (kimi-k2.5), or
        emulated (kimi-k2.6, kimi-k2.7-code, kimi-k2-thinking: ``"auto"``, an
        instruction, and ``KimiToolChoiceError`` if the answer calls no tool).

        ```python
        model.bind_tools([get_weather], tool_choice="get_weather").invoke("Weather in Rome?")
        ```

        """
        formatted = [format_tool(tool, strict=strict) for tool in tools]
        choice = format_tool_choice(tool_choice, formatted)
        thinking = thinking_switch(kwargs.get("thinking", self.thinking))
        model = str(kwargs.get("model", self.model))
        # Checked here too, so a bad choice fails (and a warning points) at this line.
        check_binding(model, resolve_model(model), formatted, choice, thinking=thinking)
        if choice is not None:
            kwargs["tool_choice"] = choice
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        return self.bind(tools=formatted, **kwargs)

    def bind(self, **kwargs: Any) -> _ChatModelBinding:
        """Bind call options (``model.bind(stop=["END"])``); sent with every call.

        A keyword named like a credential (``api_key=``, ``kimi_key=``) raises
        ``ValueError`` here: it would be sent to the service as a body field.
        """
        for key in kwargs:
            if looks_like_credential(key):
                raise ValueError(credential_refusal(key, "call option"))
        return super().bind(**kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: Literal["json_mode", "json_schema", "function_calling"] = "json_mode",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """A runnable that answers with data matching ``schema``, validated on arrival.

        Args:
            schema: a Pydantic class (instances come back), a TypedDict, a JSON
                schema dict or an OpenAI function/tool dict (dicts come back), or
                None with ``method="json_mode"`` (any JSON object).
            method: ``"json_mode"`` (default): the schema goes into a system
                instruction, the request asks for JSON mode, the reply is checked
                laxly. ``"json_schema"``: checked strictly; on Moonshot's own API
                (``api_flavor``) the schema also goes into ``response_format``.
                ``"function_calling"``: one tool, forced; a thinking model that
                cannot be forced falls back to ``"json_mode"`` with a warning.
            include_raw: return ``{"raw": AIMessage, "parsed": ..., "parsing_error":
                ...}`` and never raise on a bad reply.
            strict: ``True`` checks strictly under any method, ``False`` relaxes
                ``"json_schema"``; None keeps each method's default.
            **kwargs: call options bound to the model (``max_tokens=...``,
                ``thinking=False``).

        Raises:
            ValueError: at once, for an unknown method, a schema it cannot read,
                or options it sets itself (``response_format``, ``tools``).
            OutputParserException: when called, for a reply that is not valid
                (quoting its start; saying so when ``max_tokens`` cut it short).

        Usage:
            ```python
            from pydantic import BaseModel

            class Movie(BaseModel):
                title: str
                year: int

            movie = ChatKimi(model="kimi-k2.6").with_structured_output(Movie)
            movie.invoke("The first Matrix film?")  # Movie(title='The Matrix', year=1999)
            ```

        """
        return _structured.structured_runnable(
            self, schema, method=method, include_raw=include_raw, strict=strict, **kwargs
        )


@functools.lru_cache(maxsize=64)
def _host_of(base_url: str) -> str:
    """The host of a base URL, lower case (parsed once per URL: every request asks)."""
    return (urlsplit(base_url).hostname or "").lower()
