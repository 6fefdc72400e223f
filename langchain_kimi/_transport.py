"""HTTP for both flavours: retries, timeouts, status -> error; and sync I/O.

``SyncTransport`` (requests, one pooled ``Session``, here) and
``AsyncTransport`` (httpcore on asyncio, in :mod:`langchain_kimi._async_transport`,
imported on the first async call) share everything that is not I/O: the retry
policy, which failures are retryable, the error mapping.

Retrying is limited to what cannot be charged twice: a connection that failed
before any answer, and statuses with which the service says "not done, try
again" (408, 429, 500, 502, 503, 504). A read timeout is not retried (the
service may be working on the request), nor is anything once a 2xx answer has
started: a broken stream raises :class:`~langchain_kimi.KimiStreamInterruptedError`.
"""

from __future__ import annotations

import email.utils
import logging
import random
import ssl
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from langchain_kimi._tls import ca_bundle
from langchain_kimi.errors import (
    KimiConnectionError,
    KimiError,
    KimiStreamInterruptedError,
    KimiTimeoutError,
    error_from_status,
)

logger = logging.getLogger("langchain_kimi")

_E = TypeVar("_E", bound=BaseException)

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# An error body is read only to explain the error; a gateway's page can be huge.
_MAX_ERROR_BODY = 64 * 1024
_READ_SIZE = 64 * 1024


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before trying again.

    Backoff is "full jitter": a random wait between 0 and
    ``min(max_delay, base_delay * 2**attempt)``, so many clients hit by the same
    outage do not come back in step. A ``Retry-After`` from the service replaces
    the backoff, capped at ``max_retry_after`` so a bad header cannot park a
    call for hours.

    The three timings are class attributes, not per-instance fields: a
    dataclass field's default is copied into every instance, so patching the
    class would silently do nothing. Tests make retries fast with::

        monkeypatch.setattr(RetryPolicy, "base_delay", 0.001)
        monkeypatch.setattr(RetryPolicy, "max_delay", 0.005)
        monkeypatch.setattr(RetryPolicy, "max_retry_after", 0.2)
    """

    max_retries: int = 2
    base_delay: ClassVar[float] = 0.5
    max_delay: ClassVar[float] = 8.0
    max_retry_after: ClassVar[float] = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return random.uniform(0.0, min(self.max_delay, self.base_delay * (2**attempt)))


@dataclass(frozen=True)
class Endpoint:
    """Where and how to send: URL, headers (with the token), timeouts, retries.

    ``repr=False`` on the headers keeps the token out of every repr.
    """

    url: str
    headers: Mapping[str, str] = field(repr=False)
    connect_timeout: float | None
    read_timeout: float | None
    retry: RetryPolicy

    def __post_init__(self) -> None:
        self.encoded_headers()  # a bad header fails here, before any request

    def encoded_headers(self) -> list[tuple[bytes, bytes]]:
        """The headers as bytes; a header HTTP cannot carry raises ``ValueError`` naming it.

        The value is never shown: it may be the token.
        """
        encoded = []
        for name, value in self.headers.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise ValueError(f"header {name!r}: names and values must be strings")
            try:
                raw_name, raw_value = name.encode("ascii"), value.encode("latin-1")
            except UnicodeEncodeError:
                raise ValueError(
                    f"header {name!r} has a character HTTP headers cannot carry "
                    "(names are ASCII, values Latin-1)"
                ) from None
            if (
                not raw_name
                or any(c in raw_name for c in b" \t\r\n:")
                or any(c in raw_value for c in b"\r\n\0")
            ):
                raise ValueError(
                    f"header {name!r} has a line break, NUL, or (in its name) a space or colon"
                )
            encoded.append((raw_name, raw_value))
        return encoded


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds or as an HTTP date -> seconds to wait (None if absent/bad)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _error_for_status(
    status: int, headers: Mapping[str, str], raw: bytes
) -> tuple[KimiError, float | None]:
    """The typed error for a non-2xx answer and its ``Retry-After``.

    Raises it at once when the status must not be retried.
    """
    if status < 400:
        # Redirects are not followed: a POST would be replayed elsewhere, maybe
        # with the token. A moved endpoint is a configuration problem to show.
        raise error_from_status(
            status,
            f"the endpoint answered with a redirect to {headers.get('location') or '(nowhere)'}; "
            "check base_url (redirects are not followed so the token never leaves the host)",
        )
    retry_after = parse_retry_after(headers.get("retry-after"))
    error = error_from_status(status, raw, retry_after)
    if status not in RETRYABLE_STATUSES:
        raise error
    return error, retry_after


def _delay_before_retry(
    policy: RetryPolicy, attempt: int, error: KimiError, retry_after: float | None
) -> float:
    """Seconds to wait before attempt ``attempt + 1``; raises ``error`` when none is left."""
    if attempt >= policy.max_retries:
        raise error
    delay = policy.delay(attempt, retry_after)
    logger.info(
        "Kimi request failed (%s); retry %d of %d in %.2f s",
        error,
        attempt + 1,
        policy.max_retries,
        delay,
    )
    return delay


def _connect_timeout(endpoint: Endpoint) -> KimiTimeoutError:
    return KimiTimeoutError(
        f"connecting to {endpoint.url} timed out after {endpoint.connect_timeout} s"
    )


def _read_timeout(endpoint: Endpoint) -> KimiTimeoutError:
    return KimiTimeoutError(
        f"no answer from {endpoint.url} within the read timeout "
        f"({endpoint.read_timeout} s); not retried: the request may have been served"
    )


def _stalled(endpoint: Endpoint) -> KimiTimeoutError:
    return KimiTimeoutError(
        f"the response stalled for longer than the read timeout ({endpoint.read_timeout} s)"
    )


# --- sync (requests) ------------------------------------------------------------


class SyncTransport:
    """Blocking HTTP over one pooled ``requests.Session``, created on first use."""

    def __init__(self, endpoint: Endpoint, *, pool_size: int = 64) -> None:
        self.endpoint = endpoint
        self._pool_size = pool_size
        self._session: requests.Session | None = None
        self._close_session: weakref.finalize[[], SyncTransport] | None = None
        self._lock = threading.Lock()
        # Every call is the same POST but for its body: the request is prepared
        # once (URL parsed, headers merged with requests' defaults) and copied
        # per call, and sent with Session.send. Session.post would redo both and
        # merge session settings through runtime Protocol checks on every call:
        # 38% of the requests part of a call's CPU in the benchmark.
        headers = requests.utils.default_headers()
        headers.update(endpoint.headers)
        self._template = requests.Request("POST", endpoint.url, headers=headers).prepare()
        self._send_options: dict[str, Any] = {}

    def _get_session(self) -> requests.Session:
        session = self._session
        if session is None:
            with self._lock:
                session = self._session
                if session is None:
                    session = requests.Session()
                    # Threads share the instance (batch): keep enough pooled
                    # connections for them instead of reopening every time.
                    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=self._pool_size)
                    session.mount("https://", adapter)
                    session.mount("http://", adapter)
                    # The user's proxy and CA settings, read from the environment
                    # once for our one URL: requests would re-read every variable
                    # (and stat ~/.netrc) on each call, 5% of a call's CPU.
                    settings = session.merge_environment_settings(
                        self.endpoint.url, {}, None, None, None
                    )
                    session.trust_env = False
                    session.proxies = settings["proxies"]
                    # The same CA setting as async calls (see _tls), never off.
                    # True is certifi's bundle, through requests' preloaded context.
                    session.verify = ca_bundle() or True
                    self._send_options = {
                        "proxies": session.proxies,
                        "verify": session.verify,
                        "cert": None,
                        "timeout": (self.endpoint.connect_timeout, self.endpoint.read_timeout),
                        "allow_redirects": False,
                        "stream": True,
                    }
                    # A model dropped without close() must not leave its pooled
                    # sockets to the garbage collector (ResourceWarning). A
                    # finalizer, unlike __del__, runs before anything in a
                    # garbage cycle is torn down, and holds the session until then.
                    self._close_session = weakref.finalize(self, session.close)
                    self._session = session
        return session

    def close(self) -> None:
        with self._lock:
            close_session, self._close_session = self._close_session, None
            self._session = None
        if close_session is not None:
            close_session()  # closes the session once, and forgets it

    def _send(self, body: bytes) -> requests.Response:
        """POST with retries; returns a 2xx response whose body is not read yet."""
        endpoint = self.endpoint
        policy = endpoint.retry
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                session = self._get_session()
                request = self._template.copy()
                request.prepare_body(body, None)
                response = session.send(request, **self._send_options)
            except requests.exceptions.ConnectTimeout:
                error: KimiError = _connect_timeout(endpoint)
            except requests.exceptions.ReadTimeout:
                raise _read_timeout(endpoint) from None
            except requests.exceptions.ConnectionError as err:
                _raise_if_certificate_refused(err, endpoint)
                error = KimiConnectionError(
                    f"could not reach {endpoint.url}: {_describe_requests_error(err)}"
                )
            except requests.exceptions.RequestException as err:
                raise KimiConnectionError(f"request to {endpoint.url} failed: {err}") from None
            else:
                status = response.status_code
                if status < 300:
                    return response
                try:
                    raw = response.raw.read(_MAX_ERROR_BODY, decode_content=True)
                except Exception:  # the error status is what matters; the body is a bonus
                    raw = b""
                finally:
                    response.close()
                error, retry_after = _error_for_status(status, response.headers, raw)
            time.sleep(_delay_before_retry(policy, attempt, error, retry_after))
            attempt += 1

    def post(self, body: bytes) -> bytes:
        """POST ``body``; return the whole (decoded) response body."""
        response = self._send(body)
        try:
            parts = []
            while True:
                piece = self._read(response)
                if not piece:
                    break
                parts.append(piece)
            return b"".join(parts)
        finally:
            response.close()

    def stream(self, body: bytes) -> Iterator[bytes]:
        """POST ``body``; yield the response body's bytes as they arrive."""
        response = self._send(body)
        raw = response.raw
        try:
            if raw.chunked and raw.supports_chunked_reads():
                # Servers flush one SSE event per HTTP chunk. urllib3's chunk
                # reader costs about a third of what read1() does per chunk
                # (3 vs 10 us), and read1() never returns more than one chunk.
                yield from self._read_chunks(response)
                return
            while True:
                piece = self._read(response)
                if not piece:
                    return
                yield piece
        finally:
            # Also runs when the consumer stops early: the connection is closed
            # rather than returned to the pool with unread bytes in it.
            response.close()

    def _read(self, response: requests.Response) -> bytes:
        try:
            return response.raw.read1(_READ_SIZE, decode_content=True)
        except urllib3.exceptions.ReadTimeoutError:
            raise _stalled(self.endpoint) from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise KimiStreamInterruptedError(f"the connection broke: {err}") from None

    def _read_chunks(self, response: requests.Response) -> Iterator[bytes]:
        """The (decoded) data of each HTTP chunk of a chunked body, as it arrives."""
        try:
            yield from response.raw.read_chunked(_READ_SIZE, decode_content=True)
        except urllib3.exceptions.ReadTimeoutError:
            raise _stalled(self.endpoint) from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise KimiStreamInterruptedError(f"the connection broke: {err}") from None


def _raise_if_certificate_refused(err: BaseException, endpoint: Endpoint) -> None:
    """A certificate that failed verification will fail again: raise at once, no retry."""
    refusal = _find_cause(err, ssl.SSLCertVerificationError)
    if refusal is None:
        return
    reason = refusal.verify_message or str(refusal)
    raise KimiConnectionError(
        f"the TLS certificate of {endpoint.url} was not accepted ({reason}); not retried. "
        "Behind a TLS-inspecting proxy or with a private CA, name its CA bundle in "
        "REQUESTS_CA_BUNDLE or SSL_CERT_FILE"
    ) from None


def _find_cause(err: BaseException, kind: type[_E]) -> _E | None:
    """``err`` or the first exception of type ``kind`` it wraps (as cause, context or arg)."""
    pending: list[BaseException] = [err]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return current
        pending.extend(
            e
            for e in (current.__cause__, current.__context__, *current.args)
            if isinstance(e, BaseException)
        )
    return None


def _describe_error(err: Exception) -> str:
    # A reset can surface as an exception with an empty message whose cause says
    # why ("Connection reset by peer"); the first one with text is the reason.
    cause: BaseException | None = err
    seen = 0
    while cause is not None and seen < 8:
        if str(cause):
            return str(cause)
        cause = cause.__cause__ or cause.__context__
        seen += 1
    return type(err).__name__


def _describe_requests_error(err: Exception) -> str:
    # requests nests the cause a few levels deep; the innermost reason is the
    # readable one ("Connection refused"), the outer ones repeat the URL.
    reason: Any = err
    while reason.args and isinstance(reason.args[0], Exception):
        reason = reason.args[0]
    inner = getattr(reason, "reason", None)
    return str(inner or reason)
