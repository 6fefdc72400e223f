"""Moonshot's platform endpoints (files, batches, balance, token count): the client's side.

Only Moonshot's API serves them; on Ace Data Cloud every platform call is
refused by :func:`require_moonshot` before anything is sent. :class:`Platform`
sends a model's platform requests over that model's own transports (the chat
calls' pooled connections, retry policy, deadlines, error mapping, size limits,
proxies and redaction: :mod:`langchain_kimi._transport`), and decodes their
JSON answers.

Used by :mod:`langchain_kimi.files` (``model.files``), the batch API and
``ChatKimi.balance()``::

    platform = Platform(model, "model.files.list()")     # refuses on Ace Data Cloud
    answer = platform.get_json("/files")                 # GET {base_url}/files
    answer = await platform.aget_json("/files")
    platform.send_json("POST", "/batches", {...}, resend=Resend.CREATE)
    for piece in platform.stream("/files/<id>/content"):  # no size limit
        ...
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from langchain_kimi._transport import PlatformAnswer, PlatformRequest, Resend, Upload
from langchain_kimi.errors import KimiResponseError

if TYPE_CHECKING:
    from langchain_kimi.chat_models import ChatKimi

__all__ = [
    "KimiBalance",
    "Platform",
    "PlatformAnswer",
    "Resend",
    "Upload",
    "path_segment",
    "require_moonshot",
]


def require_moonshot(model: ChatKimi, call: str) -> None:
    """Refuse ``call`` (``"model.files.upload()"``) unless ``model`` speaks to Moonshot's API.

    Raises ``ValueError`` naming ``api_flavor="moonshot"``; sends nothing. The one
    check every platform call (files, batches, balance, the token estimate) makes.
    """
    flavor = model._effective_api_flavor()
    if flavor == "moonshot":
        return
    raise ValueError(
        f"{call} needs Moonshot's own API, and this model talks to Ace Data Cloud "
        f"(api_flavor={flavor!r}), which serves chat completions only; nothing was sent. "
        'Point it at Moonshot: ChatKimi(base_url="https://api.moonshot.ai/v1", '
        'api_key=<your Moonshot key>), or name the flavour of a gateway: api_flavor="moonshot"'
    )


def path_segment(value: str, what: str) -> str:
    """``value`` (an id from the service) quoted as one URL path segment; refuses a blank one."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return quote(value, safe="")


class Platform:
    """One model's requests to its platform endpoints, sync and async.

    Built per call: it checks the flavour first (:func:`require_moonshot`), then
    uses the model's transports, opened as chat calls open them (so a missing
    token is reported as for chat, and nothing is sent).
    """

    def __init__(self, model: ChatKimi, call: str) -> None:
        require_moonshot(model, call)
        self._model = model

    def _request(
        self,
        method: str,
        path: str,
        *,
        resend: Resend,
        payload: Any = None,
        params: Mapping[str, str] | None = None,
        fields: Mapping[str, str] | None = None,
        upload: Upload | None = None,
    ) -> PlatformRequest:
        url = f"{self._model.base_url}{path}"
        if params:
            url = f"{url}?{urlencode(params)}"
        body = None
        if payload is not None:
            body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        return PlatformRequest(method, url, resend, body, fields or {}, upload)

    # --- sync ---------------------------------------------------------------------

    def send(self, request: PlatformRequest) -> PlatformAnswer:
        return self._model._sync().platform_request(request)

    def get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """``GET {base_url}{path}``, its JSON answer."""
        return _json_of(self.send(self._request("GET", path, resend=Resend.READ, params=params)))

    def get(self, path: str) -> PlatformAnswer:
        """``GET {base_url}{path}``, its body as it came (at most the response size limit)."""
        return self.send(self._request("GET", path, resend=Resend.READ))

    def send_json(self, method: str, path: str, payload: Any = None, *, resend: Resend) -> Any:
        """``method {base_url}{path}`` with a JSON body (or none), its JSON answer."""
        request = self._request(method, path, resend=resend, payload=payload)
        return _json_of(self.send(request))

    def upload(self, path: str, fields: Mapping[str, str], upload: Upload) -> Any:
        """A multipart ``POST`` of ``fields`` and the file ``upload``; never resent once sent."""
        request = self._request("POST", path, resend=Resend.CREATE, fields=fields, upload=upload)
        return _json_of(self.send(request))

    def stream(self, path: str) -> Iterator[bytes]:
        """``GET {base_url}{path}``'s body in pieces as they arrive, with no size limit."""
        request = self._request("GET", path, resend=Resend.READ)
        return self._model._sync().platform_stream(request)

    # --- async --------------------------------------------------------------------

    async def asend(self, request: PlatformRequest) -> PlatformAnswer:
        return await self._model._async().platform_request(request)

    async def aget_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        request = self._request("GET", path, resend=Resend.READ, params=params)
        return _json_of(await self.asend(request))

    async def aget(self, path: str) -> PlatformAnswer:
        return await self.asend(self._request("GET", path, resend=Resend.READ))

    async def asend_json(
        self, method: str, path: str, payload: Any = None, *, resend: Resend
    ) -> Any:
        request = self._request(method, path, resend=resend, payload=payload)
        return _json_of(await self.asend(request))

    async def aupload(self, path: str, fields: Mapping[str, str], upload: Upload) -> Any:
        request = self._request("POST", path, resend=Resend.CREATE, fields=fields, upload=upload)
        return _json_of(await self.asend(request))

    def astream(self, path: str) -> AsyncIterator[bytes]:
        request = self._request("GET", path, resend=Resend.READ)
        return self._model._async().platform_stream(request)


def _json_of(answer: PlatformAnswer) -> Any:
    try:
        return json.loads(answer.body)
    except (ValueError, RecursionError):
        raise KimiResponseError(
            f"the service's answer is not JSON (content type {answer.content_type or 'none'}, "
            f"{len(answer.body)} bytes)"
        ) from None


def expect_object(body: Any, what: str) -> Mapping[str, Any]:
    """``body`` when it is a JSON object, else a :class:`KimiResponseError` naming ``what``."""
    if not isinstance(body, Mapping):
        raise KimiResponseError(f"{what}: expected a JSON object, got {type(body).__name__}")
    return body


@dataclass(frozen=True)
class KimiBalance:
    """A Moonshot account's balance in USD (``model.balance()``).

    ``available`` is what inference can use (``voucher`` plus ``cash``); at or
    below zero, chat calls get a 429 (``KimiRateLimitError.quota_exceeded``).
    ``cash`` can be negative.

    Usage::

        balance = model.balance()       # or: await model.abalance()
        if balance.available < 1.0:
            print(f"{balance.available:.2f} USD left ({balance.voucher:.2f} in vouchers)")
    """

    available: float
    voucher: float
    cash: float

    @classmethod
    def from_answer(cls, body: Any) -> KimiBalance:
        """Read ``{"data": {"available_balance", "voucher_balance", "cash_balance"}}``."""
        data = expect_object(expect_object(body, "the balance answer").get("data"), "its data")
        values = []
        for name in ("available_balance", "voucher_balance", "cash_balance"):
            value = data.get(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise KimiResponseError(f"the balance answer's {name} is not a number: {value!r}")
            values.append(float(value))
        return cls(*values)


def balance(model: ChatKimi) -> KimiBalance:
    """``GET /users/me/balance`` (the wiring of ``ChatKimi.balance()``)."""
    return KimiBalance.from_answer(Platform(model, "model.balance()").get_json("/users/me/balance"))


async def abalance(model: ChatKimi) -> KimiBalance:
    platform = Platform(model, "model.abalance()")
    return KimiBalance.from_answer(await platform.aget_json("/users/me/balance"))


def estimate_tokens(model: ChatKimi, body: Mapping[str, Any]) -> int:
    """The service's count of ``body``'s prompt tokens (``POST /tokenizers/estimate-token-count``).

    Sends the request's ``model`` and ``messages`` (and ``tools`` when present:
    the endpoint takes the chat request's form, though its schema names only
    the first two).
    """
    platform = Platform(model, "the service's token count (count_tokens_with_service=True)")
    payload = {key: body[key] for key in ("model", "messages", "tools") if key in body}
    answer = expect_object(
        platform.send_json("POST", "/tokenizers/estimate-token-count", payload, resend=Resend.READ),
        "the token count answer",
    )
    data = answer.get("data")
    total = data.get("total_tokens") if isinstance(data, Mapping) else None
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise KimiResponseError(f"the token count answer has no total_tokens: {answer!r}"[:300])
    return total
