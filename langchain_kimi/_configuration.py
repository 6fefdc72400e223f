"""What ``ChatKimi`` accepts as configuration, checked before anything is sent. Pure.

``chat_models`` wires these checks to its fields (at construction, and on
assignment); they live here so that the rules (which keyword looks like a
credential, which ``base_url`` can be sent to, how long a timeout may be) are
in one place, testable without a model.

Usage::

    check_base_url("HTTP://api.acedata.cloud/kimi/")   # 'http://api.acedata.cloud/kimi'
    check_timeout("timeout", 30.0)                     # 30.0
    looks_like_credential("moonshot_key")              # True
"""

from __future__ import annotations

import math
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

from pydantic import AliasChoices, BaseModel

TOKEN_ENV = "ACEDATACLOUD_API_TOKEN"

MAX_TIMEOUT_SECONDS = 9_223_372_036.0
"""The longest timeout the HTTP libraries accept, in seconds (about 292 years).

Python keeps a socket's timeout as a signed 64-bit count of nanoseconds:
``socket.settimeout`` refuses anything longer (``OverflowError``, measured), and
``requests`` hands its timeouts to it. ``aiohttp`` accepts longer ones, but not
infinity; a limit both flavours accept is one a model can use in either.
"""

# Words that make a keyword's name say "credential": a mistyped api_key, which
# would otherwise be sent to the service as a body field (and shown in repr).
_CREDENTIAL_WORDS = frozenset(
    {
        "key",
        "keys",
        "token",
        "secret",
        "secrets",
        "password",
        "passwd",
        "passphrase",
        "credential",
        "credentials",
        "bearer",
        "auth",
        "authorization",
    }
)
# The same words glued to another ("apikey", "accessToken" lower-cased).
_GLUED_CREDENTIALS = re.compile(r"(api|access|secret|private|auth|bearer)(key|token)")
# Request body fields Kimi documents whose names hold one of the words above:
# they are what they say, not credentials. ("tokens", a count in max_tokens
# and its kin, is not one of the words.)
_BODY_FIELDS_NAMED_LIKE_CREDENTIALS = frozenset({"prompt_cache_key"})
# Where camelCase words start: "accessKey" -> "access", "Key".
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def looks_like_credential(name: str) -> bool:
    """Whether a keyword's name says it holds a credential.

    True when one of its words (split at ``_``, ``-``, ``.`` and camelCase) is
    key, token, secret, password, credential, bearer or auth (and their
    plurals), or it glues two (``apikey``, ``AccessToken``), unless it is a
    body field Kimi documents (``prompt_cache_key``).

    >>> [looks_like_credential(n) for n in ("kimi_key", "accessKey", "apikey", "prompt_cache_key")]
    [True, True, True, False]
    """
    if name in _BODY_FIELDS_NAMED_LIKE_CREDENTIALS:
        return False
    words = re.split(r"[^a-z0-9]+", _CAMEL_BOUNDARY.sub("_", name).lower())
    if any(word in _CREDENTIAL_WORDS for word in words):
        return True
    return any(_GLUED_CREDENTIALS.search(word) for word in words)


def credential_refusal(name: str, where: str) -> str:
    """The message refusing keyword ``name`` (never its value) found in ``where``."""
    return (
        f"{where} {name!r} looks like a credential and was refused (it would have been "
        f"sent to the service as a request field). Pass the token as api_key=... or set "
        f"{TOKEN_ENV}; to send a body field of that name anyway, use extra_body={{...}}"
    )


def check_timeout(field: str, value: float | None) -> float | None:
    """``value`` if it is a usable timeout in seconds: finite, positive, not above the limit."""
    if value is None:
        return None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(
            f"{field} must be a positive, finite number of seconds (or None to wait "
            f"without limit), got {value}"
        )
    if value > MAX_TIMEOUT_SECONDS:
        raise ValueError(
            f"{field}={value:g} is longer than the HTTP libraries can wait "
            f"({MAX_TIMEOUT_SECONDS:,.0f} s, about 292 years); use None to wait without limit"
        )
    return value


# C0 controls and DEL: requests and aiohttp each send them somewhere else (one
# cuts the URL, the other escapes it), and \r\n could inject a header.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def check_base_url(value: str) -> str:
    """``value`` as requests go out to it: an http(s) URL, its scheme in lower case,
    without a trailing ``/``. Anything else raises ``ValueError``.

    Refused: credentials (``user:password@``, never quoted), control characters,
    a query or fragment (``{base_url}/chat/completions`` would put the path
    inside them), a missing host or a port out of range.
    """
    # Never quote a URL that may hold a password: errors end up in logs.
    shown = repr(value) if "@" not in value else "(not shown: it contains '@')"
    if _CONTROL_CHARACTERS.search(value):
        raise ValueError(
            f"base_url has a control character (a line break, tab, NUL...): {shown}; "
            "requests would go to a different URL sync and async"
        )
    parts = urllib.parse.urlsplit(value)
    if "@" in parts.netloc:
        raise ValueError(
            "base_url (or KIMI_BASE_URL) must not contain credentials (user:password@): "
            f"they would be sent instead of the token. Pass the token as api_key=... "
            f"or set {TOKEN_ENV}"
        )
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not value[len(scheme) :].startswith("://"):
        raise ValueError(f"base_url must start with https:// or http://, got {shown}")
    if "?" in value or "#" in value:
        raise ValueError(
            f"base_url must not have a query (?...) or a fragment (#...), got {shown}: "
            "requests go to {base_url}/chat/completions"
        )
    if not parts.hostname:
        raise ValueError(f"base_url has no host, got {shown}")
    try:
        parts.port  # noqa: B018  # raises for a port out of range or not a number
    except ValueError:
        raise ValueError(f"base_url has an invalid port, got {shown}") from None
    return scheme + value[len(scheme) :].rstrip("/")


def check_at_least(field: str, value: int, minimum: int) -> int:
    """``value`` if it is at least ``minimum``."""
    if value < minimum:
        raise ValueError(f"{field} must be at least {minimum}, got {value}")
    return value


# A default header whose name holds one of these has its value redacted from errors.
_CREDENTIAL_HEADER_WORDS = ("auth", "key", "token", "secret", "password", "cookie", "session")


def header_secrets(headers: Mapping[str, str] | None) -> tuple[str, ...]:
    """The values of ``headers`` that errors must not show.

    A header counts when its name says auth, key, token, secret, password,
    cookie or session, and its value has at least 8 characters (a shorter
    one is no secret worth the name, and would be cut out of every message).
    """
    found = []
    for name, value in (headers or {}).items():
        lowered = name.lower()
        if any(word in lowered for word in _CREDENTIAL_HEADER_WORDS):
            value = value.strip()
            if len(value) >= 8:
                found.append(value)
    return tuple(found)


def refuse_to_pickle_clients(http_client: Any, http_async_client: Any) -> None:
    """Raise ``TypeError`` saying why a model holding the user's own client cannot be pickled."""
    advice = (
        "Pickle a model without it (the loaded model opens its own connections) and, "
        "if the other process needs its own client, assign it there after loading"
    )
    if http_async_client is not None:
        raise TypeError(
            "cannot pickle a ChatKimi that holds your own http_async_client: an "
            "aiohttp.ClientSession belongs to the event loop (and the process) it was "
            f"made in. {advice} (model.http_async_client = session)"
        )
    if http_client is not None:
        raise TypeError(
            "cannot pickle a ChatKimi that holds your own http_client: a requests.Session "
            "pickles without its connections and without what custom adapters hold (TLS "
            "contexts, client certificates), so the loaded model would not send as yours "
            f"does. {advice} (model.http_client = session)"
        )


def header_secret_id(name: str) -> str:
    """The secret standing for a default header's value in ``dumps`` (``KIMI_DEFAULT_HEADER_X``)."""
    return "KIMI_DEFAULT_HEADER_" + re.sub(r"[^A-Z0-9]", "_", name.upper())


def field_names(cls: type[BaseModel]) -> set[str]:
    """Every keyword that names a field of ``cls``: names, aliases, alias choices."""
    names = set()
    for name, info in cls.model_fields.items():
        names.add(name)
        if info.alias:
            names.add(info.alias)
        if isinstance(info.validation_alias, AliasChoices):
            names.update(str(choice) for choice in info.validation_alias.choices)
    return names
