"""``ChatKimi``: Kimi chat models behind LangChain's ``BaseChatModel`` interface.

This module wires the pure steps together and holds no protocol logic:
messages -> ``_payload`` -> ``_transport`` (sync) / ``_async_transport`` ->
``_answer_reader`` (``_sse`` + ``_response``) -> LangChain results. What each
model accepts comes from ``_profiles``.
"""

from __future__ import annotations

import json
import os
import re
import threading
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
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
    field_validator,
    model_validator,
)

from langchain_kimi import _structured
from langchain_kimi._answer_reader import StreamReader, decode_json
from langchain_kimi._content import fill_missing_media_types
from langchain_kimi._payload import build_request_body
from langchain_kimi._profiles import (
    ModelRules,
    closest_known_model,
    resolve_model,
    unknown_model_message,
)
from langchain_kimi._response import parse_completion
from langchain_kimi._tools import check_tools_allowed, format_tool, format_tool_choice
from langchain_kimi._transport import (
    DEFAULT_MAX_CONNECTIONS,
    Endpoint,
    RetryPolicy,
    SyncTransport,
)
from langchain_kimi._user_warnings import warn_at_user_code
from langchain_kimi._version import __version__
from langchain_kimi.errors import (
    KimiStreamInterruptedError,
    KimiTimeoutError,
)

if TYPE_CHECKING:
    from langchain_kimi._async_transport import AsyncTransport

DEFAULT_BASE_URL = "https://api.acedata.cloud/kimi"
# Guards the lazy creation of every model's sync transport (rare, so one lock).
_TRANSPORT_LOCK = threading.Lock()


def _new_transport_lock_in_child() -> None:
    # Another thread may have held the lock when the process forked.
    global _TRANSPORT_LOCK
    _TRANSPORT_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_new_transport_lock_in_child)
TOKEN_ENV = "ACEDATACLOUD_API_TOKEN"
BASE_URL_ENV = "KIMI_BASE_URL"
# Hosts of Moonshot's own API (international and China): base URLs elsewhere get
# Ace Data Cloud's semantics unless api_flavor says otherwise.
MOONSHOT_HOSTS = frozenset({"api.moonshot.ai", "api.moonshot.cn"})
ApiFlavor = Literal["acedata", "moonshot"]
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
)
# Call-time kwargs that steer the call and are not body fields.
_NOT_BODY_KWARGS = frozenset({"stream", "stream_usage", "extra_body"})
# Words that make an unknown constructor keyword look like a credential (a
# mistyped api_key): such a keyword is refused instead of sent as a body field.
_CREDENTIAL_WORDS = frozenset(
    {"token", "secret", "secrets", "password", "passwd", "credential", "credentials", "bearer"}
)
_CREDENTIAL_NAMES = frozenset({"key", "auth", "authorization"})
# A default header whose name holds one of these has its value redacted from errors.
_CREDENTIAL_HEADER_WORDS = ("auth", "key", "token", "secret", "password", "cookie", "session")
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

    Key init args — completion params:
        model: str
            Model name (alias ``model_name``); default ``"kimi-k2.5"``. Free text,
            sent as written: new models work without an upgrade. Known models
            (``docs/models.md``) are recognised without case or a ``moonshotai/``
            prefix, and get a ``profile`` and checks before sending.
        thinking: bool | None
            ``None`` keeps the model's default; ``True``/``False`` switch thinking
            on or off where the model allows it (kimi-k2.5, kimi-k2.6, kimi-k3).
            A switch the model cannot honour raises ``ValueError``.
        reasoning_effort: str | None
            kimi-k3's reasoning effort (``"low"``, ``"high"``, ``"max"``).
        temperature, top_p, max_tokens, stop, n, presence_penalty,
        frequency_penalty, seed:
            Sent only when set. Where the model fixes sampling (kimi-k2.5,
            kimi-k2.6, kimi-k2.7-code) those parameters are not sent, and a
            different value warns once, naming the value the model uses.
            ``max_tokens`` goes out under the field the model takes
            (``max_completion_tokens`` for kimi-k3).
        model_kwargs: dict
            Any other body field Kimi accepts, passed through.

    Key init args — client params:
        api_key: SecretStr | None
            Defaults to ``ACEDATACLOUD_API_TOKEN``.
        base_url: str
            Default ``https://api.acedata.cloud/kimi`` (env ``KIMI_BASE_URL``);
            ``https://api.moonshot.ai/v1`` talks to Moonshot directly.
        api_flavor: "acedata" | "moonshot" | None
            Which service ``base_url`` speaks for (default: from its host).
        timeout: float | None
            Read timeout in seconds (default 120): the longest silence allowed
            while waiting for or reading an answer.
        connect_timeout: float | None
            Connect timeout in seconds (default 10).
        total_timeout: float | None
            The longest a whole call may take, retries included (default: none).
        max_retries: int
            Retries for connection failures and 408/429/5xx (default 2; 0 disables).
        max_connections: int
            Connections open at once, per event loop or per process (default 512).
        default_headers: dict | None
            Extra headers on every request.
        extra_body: dict | None
            Fields merged into every request body, as given.
        http_client, http_async_client:
            Your own ``requests.Session`` / ``aiohttp.ClientSession``, used as given.

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
        # [{"name": "get_weather", "args": {"city": "Paris"}, "id": "get_weather:0", ...}]
        ```

        While thinking, most models refuse a forced ``tool_choice`` (kimi-k3
        accepts ``"required"``): binding one they refuse raises a ``ValueError``
        that says what the model accepts and how to switch thinking off.

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
    """Retries after connection failures and 408/429/5xx answers; 0 disables."""
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
    """None: the model's default; True/False: ``{"type": "enabled"/"disabled"}``."""
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
    model_config = ConfigDict(populate_by_name=True, hide_input_in_errors=True)

    _sync_transport: SyncTransport | None = PrivateAttr(default=None)
    _async_transport: AsyncTransport | None = PrivateAttr(default=None)
    _warned_fixed: set[tuple[str, str]] = PrivateAttr(default_factory=set)

    # --- validation ---------------------------------------------------------

    @model_validator(mode="before")
    @classmethod
    def _collect_model_kwargs(cls, values: dict[str, Any]) -> Any:
        """Unknown constructor arguments become body fields (with a warning).

        Except those named like a credential (``openai_api_key=``, ``token=``,
        ``secret_key=``): a mistyped ``api_key`` would be sent to the service
        as a body field and shown in ``repr``, so it is refused, unquoted.
        """
        if isinstance(values, dict):
            names = _all_field_names(cls)
            for key in values:
                if key not in names and _looks_like_credential(key):
                    raise ValueError(
                        f"unknown argument {key!r} looks like a credential and was refused "
                        "(it would have been sent to the service as a request field). "
                        f"Pass the token as api_key=... or set {TOKEN_ENV}"
                    )
            return _build_model_kwargs(values, names)
        return values

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        # Never quote a URL that may hold a password: errors end up in logs.
        if "@" in urllib.parse.urlsplit(value).netloc:
            raise ValueError(
                "base_url (or KIMI_BASE_URL) must not contain credentials (user:password@): "
                f"they would be sent instead of the token. Pass the token as api_key=... "
                f"or set {TOKEN_ENV}"
            )
        if not value.startswith(("https://", "http://")):
            shown = repr(value) if "@" not in value else "(not shown: it contains '@')"
            raise ValueError(f"base_url must start with https:// or http://, got {shown}")
        return value.rstrip("/")

    @field_validator("default_headers", mode="before")
    @classmethod
    def _drop_unset_headers(cls, value: Any) -> Any:
        # A header whose value is None is not sent: what loads() gives for a
        # header value that secrets_map did not provide (see to_json).
        if isinstance(value, dict):
            return {name: item for name, item in value.items() if item is not None}
        return value

    @field_validator("timeout", "connect_timeout")
    @classmethod
    def _check_timeout(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError(f"timeouts must be positive seconds (or None), got {value}")
        return value

    @field_validator("max_retries")
    @classmethod
    def _check_retries(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f"max_retries must be 0 or more, got {value}")
        return value

    @field_validator("total_timeout")
    @classmethod
    def _check_total_timeout(cls, value: float | None) -> float | None:
        if value is not None and not value > 0:
            raise ValueError(f"total_timeout must be positive seconds (or None), got {value}")
        return value

    @field_validator("max_connections")
    @classmethod
    def _check_max_connections(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"max_connections must be at least 1, got {value}")
        return value

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
                name: {"lc": 1, "type": "secret", "id": [_header_secret_id(name)]}
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
        return rules.to_profile() if rules is not None else None

    def _effective_api_flavor(self) -> ApiFlavor:
        """``api_flavor``, or the one ``base_url``'s host implies."""
        if self.api_flavor is not None:
            return self.api_flavor
        host = urlsplit(self.base_url).hostname or ""
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
        if self.model_kwargs:
            params.update(self.model_kwargs)
        return params

    def _request_params(
        self, stop: list[str] | None, stream: bool, kwargs: Mapping[str, Any]
    ) -> tuple[dict[str, Any], bool, ModelRules | None]:
        """Everything to send besides the messages, whether the call thinks, the model's rules."""
        params = self._model_params()
        for key, value in kwargs.items():
            if key not in _NOT_BODY_KWARGS and value is not None:
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
        thinking_active, rules = self._apply_model_rules(params)
        return params, thinking_active, rules

    def _apply_model_rules(self, params: dict[str, Any]) -> tuple[bool, ModelRules | None]:
        """Check ``params`` against the model's rules and adapt them, before anything is sent.

        Raises ``ValueError`` for what the model refuses (a thinking switch it
        cannot honour, a ``reasoning_effort`` outside its levels, a ``tool_choice``
        or tool it refuses in its mode); removes the parameters it fixes (warning
        once when the user's value differs); moves ``max_tokens`` to the field the
        model takes. The model name itself is never changed. Returns whether the
        request thinks, and the rules (None for a model the client does not know).
        """
        model = str(params["model"])
        thinking = _thinking_switch(params.get("thinking"))
        rules = resolve_model(model)
        if rules is None:
            self._warn_near_miss(model)
            return bool(thinking), None
        rules.check_thinking_switch(model, thinking)
        rules.check_reasoning_effort(model, params.get("reasoning_effort"))
        thinking_active = rules.thinks(thinking)
        for name, fixed in rules.fixed_params(thinking).items():
            if name in params:
                self._warn_fixed(model, name, params.pop(name), fixed)
        check_tools_allowed(
            model, rules, params.get("tools"), params.get("tool_choice"), thinking=thinking_active
        )
        _move_output_limit(params, rules.max_tokens_field, model)
        return thinking_active, rules

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
        params, thinking_active, rules = self._request_params(stop, stream, kwargs)
        body = build_request_body(messages, params, thinking_active=thinking_active, rules=rules)
        for extra in (self.extra_body, kwargs.get("extra_body")):
            if extra:
                body.update(extra)
        try:
            return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
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
        """What error messages must never show: the token, and credential-like headers.

        A header counts when its name says auth, key, token, secret, password,
        cookie or session, and its value has at least 8 characters (a shorter
        one is no secret worth the name, and would be cut out of every message).
        """
        secrets = []
        if self.api_key is not None:
            token = self.api_key.get_secret_value().strip()
            if token:
                secrets.append(token)
        for name, value in (self.default_headers or {}).items():
            lowered = name.lower()
            if any(word in lowered for word in _CREDENTIAL_HEADER_WORDS):
                value = value.strip()
                if len(value) >= 8:
                    secrets.append(value)
        return tuple(secrets)

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
            retry=RetryPolicy(max_retries=self.max_retries),
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

    def __copy__(self) -> Self:
        # Copies get their own connections: a copy closing its client must not
        # break the original, and a copy with another base_url must not use its pool.
        copied = super().__copy__()
        copied._reset_private_state()
        return copied

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        saved = (self._sync_transport, self._async_transport)
        self._sync_transport = self._async_transport = None
        try:
            copied = super().__deepcopy__(memo)
        finally:
            self._sync_transport, self._async_transport = saved
        copied._reset_private_state()
        return copied

    def __getstate__(self) -> dict[Any, Any]:
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
        body = self._encode(messages, stop, False, kwargs)
        transport = self._sync()
        secrets = transport.endpoint.secrets
        raw = transport.post(body)
        data = decode_json(raw, secrets)
        # The bytes are done with: a large answer would otherwise be held twice
        # while LangChain copies its text (one third of the peak, measured).
        del raw
        return parse_completion(data, secrets=secrets)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        body = self._encode(messages, stop, False, kwargs)
        transport = self._async()
        secrets = transport.endpoint.secrets
        raw = await transport.post(body)
        data = decode_json(raw, secrets)
        # The bytes are done with: a large answer would otherwise be held twice
        # while LangChain copies its text (one third of the peak, measured).
        del raw
        return parse_completion(data, secrets=secrets)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        body = self._encode(messages, stop, True, kwargs)
        transport = self._sync()
        reader = StreamReader(transport.endpoint.secrets)
        try:
            for raw in transport.stream(body):
                yield from reader.feed(raw)
        except (KimiStreamInterruptedError, KimiTimeoutError) as err:
            if not reader.started:
                raise
            raise reader.interrupted(err) from None
        yield from reader.finish()

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        body = self._encode(messages, stop, True, kwargs)
        transport = self._async()
        reader = StreamReader(transport.endpoint.secrets)
        try:
            async for raw in transport.stream(body):
                for chunk in reader.feed(raw):
                    yield chunk
        except (KimiStreamInterruptedError, KimiTimeoutError) as err:
            if not reader.started:
                raise
            raise reader.interrupted(err) from None
        for chunk in reader.finish():
            yield chunk

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
        name, ``True`` (the single tool) or a wire-form dict. A thinking model
        cannot be forced to call a tool; that raises ``ValueError`` here.

        ```python
        model.bind_tools([get_weather], tool_choice="auto").invoke("Weather in Rome?")
        ChatKimi(thinking=False).bind_tools([get_weather], tool_choice="get_weather")
        ```

        """
        formatted = [format_tool(tool, strict=strict) for tool in tools]
        choice = format_tool_choice(tool_choice, formatted)
        thinking = _thinking_switch(kwargs.get("thinking", self.thinking))
        model = str(kwargs.get("model", self.model))
        rules = resolve_model(model)
        if rules is not None:
            check_tools_allowed(model, rules, formatted, choice, thinking=rules.thinks(thinking))
        if choice is not None:
            kwargs["tool_choice"] = choice
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        return super().bind(tools=formatted, **kwargs)

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


def _thinking_switch(value: Any) -> bool | None:
    """The user's thinking switch as a bool; the wire form (``{"type": ...}``) is read too."""
    if isinstance(value, Mapping):
        return value.get("type") != "disabled"
    return None if value is None else bool(value)


def _move_output_limit(params: dict[str, Any], field: str, model: str) -> None:
    """Send the user's ``max_tokens`` under the field the model takes (kimi-k3's is
    ``max_completion_tokens``); refuse two different limits."""
    if field == "max_tokens" or "max_tokens" not in params:
        return
    value = params.pop("max_tokens")
    other = params.get(field)
    if other is not None and other != value:
        raise ValueError(
            f"{model} takes its output limit as {field}, and max_tokens={value} and "
            f"{field}={other} disagree: set only one"
        )
    params[field] = value


def _looks_like_credential(name: str) -> bool:
    lowered = name.lower()
    if lowered in _CREDENTIAL_NAMES or "apikey" in lowered.replace("_", "").replace("-", ""):
        return True
    return any(word in _CREDENTIAL_WORDS for word in re.split(r"[^a-z0-9]+", lowered))


def _header_secret_id(name: str) -> str:
    return "KIMI_DEFAULT_HEADER_" + re.sub(r"[^A-Z0-9]", "_", name.upper())


def _all_field_names(cls: type[BaseModel]) -> set[str]:
    names = set()
    for name, info in cls.model_fields.items():
        names.add(name)
        if info.alias:
            names.add(info.alias)
        if isinstance(info.validation_alias, AliasChoices):
            names.update(str(choice) for choice in info.validation_alias.choices)
    return names
