"""HTTP for both flavours: retries, deadlines, status -> error; and sync I/O on requests.

``SyncTransport`` (``requests``, here) and ``AsyncTransport`` (``aiohttp``, in
:mod:`langchain_kimi._async_transport`, imported on the first async call)
share everything that is not I/O: the retry policy, which failures are
retryable, the per-call deadline, the error mapping, the size limits
(:mod:`langchain_kimi._limits`) and the proxy and CA settings
(:mod:`langchain_kimi._network_settings`).

Retrying is limited to what cannot be charged twice: a connection that failed
before any answer, and statuses with which the service says "not done, try
again" (408, 429, 500, 502, 503, 504). A read timeout is not retried (the
service may be working on the request), nor is anything once a 2xx answer has
started: a broken stream raises :class:`~langchain_kimi.KimiStreamInterruptedError`.

After ``os.fork()`` a child never uses the connections it inherited (they are
the parent's sockets): each transport forgets them in the child and opens its own.
"""

from __future__ import annotations

import email.utils
import logging
import math
import os
import random
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from langchain_kimi._limits import MAX_ERROR_BODY_BYTES, MAX_RESPONSE_BYTES
from langchain_kimi._network_settings import NetworkSettings
from langchain_kimi.errors import (
    KimiConnectionError,
    KimiError,
    KimiResponseError,
    KimiStreamInterruptedError,
    KimiTimeoutError,
    error_from_status,
)

logger = logging.getLogger("langchain_kimi")

_E = TypeVar("_E", bound=BaseException)

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
DEFAULT_MAX_CONNECTIONS = 512
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

    ``repr=False`` on the headers and secrets keeps the token out of every repr.
    ``secrets`` are the values no error may show (the token): error bodies that
    echo them are redacted.
    """

    url: str
    headers: Mapping[str, str] = field(repr=False)
    connect_timeout: float | None
    read_timeout: float | None
    retry: RetryPolicy
    total_timeout: float | None = None
    secrets: Sequence[str] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        check_headers(self.headers)  # a bad header fails here, before any request

    def deadline(self) -> Deadline | None:
        """A new call's deadline (None without ``total_timeout``)."""
        if self.total_timeout is None:
            return None
        return Deadline(time.monotonic() + self.total_timeout, self.total_timeout)


def check_headers(headers: Mapping[str, str]) -> None:
    """Refuse, naming it, a header HTTP cannot carry; the value (maybe the token) is never shown."""
    for name, value in headers.items():
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
        if raw_value != raw_value.strip(b" \t"):
            # HTTP drops it: aiohttp would send the value stripped, requests refuses
            # it (quoting it). Refused here, for both, without showing the value.
            raise ValueError(
                f"header {name!r} has whitespace at the start or end of its value: remove it"
            )


@dataclass(frozen=True)
class Deadline:
    """The moment (``time.monotonic()``) by which a whole call must be over."""

    at: float
    total: float

    def remaining(self) -> float:
        """Seconds left; raises :class:`~langchain_kimi.KimiTimeoutError` when none are."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise self.exceeded()
        return left

    def exceeded(self) -> KimiTimeoutError:
        return KimiTimeoutError(
            f"the call did not finish within total_timeout ({self.total} s); "
            "not retried: the request may have been served"
        )


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds or as an HTTP date -> seconds to wait.

    None when absent or unusable: not a number or a date, or not finite (``nan``,
    ``inf``), so the policy's own backoff applies instead.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def error_for_status(
    endpoint: Endpoint, status: int, headers: Mapping[str, str], raw: bytes
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
            secrets=endpoint.secrets,
        )
    retry_after = parse_retry_after(headers.get("retry-after"))
    error = error_from_status(status, raw, retry_after, secrets=endpoint.secrets)
    if status not in RETRYABLE_STATUSES:
        raise error
    return error, retry_after


def delay_before_retry(
    policy: RetryPolicy,
    attempt: int,
    error: KimiError,
    retry_after: float | None,
    deadline: Deadline | None,
) -> float:
    """Seconds to wait before attempt ``attempt + 1``; raises ``error`` when none is left.

    A retry that could not start before the call's deadline is not made: the
    call ends with the deadline's timeout, caused by (``__cause__``) ``error``.
    """
    if attempt >= policy.max_retries:
        raise error
    delay = policy.delay(attempt, retry_after)
    if deadline is not None and time.monotonic() + delay >= deadline.at:
        raise deadline.exceeded() from error
    logger.info(
        "Kimi request failed (%s); retry %d of %d in %.2f s",
        error,
        attempt + 1,
        policy.max_retries,
        delay,
    )
    return delay


def capped(timeout: float | None, deadline: Deadline | None) -> float | None:
    """``timeout``, shortened to what is left of the call's deadline."""
    if deadline is None:
        return timeout
    left = deadline.remaining()
    return left if timeout is None else min(timeout, left)


def connect_timeout_error(endpoint: Endpoint) -> KimiTimeoutError:
    return KimiTimeoutError(
        f"connecting to {endpoint.url} timed out after {endpoint.connect_timeout} s"
    )


def read_timeout_error(endpoint: Endpoint) -> KimiTimeoutError:
    return KimiTimeoutError(
        f"no answer from {endpoint.url} within the read timeout "
        f"({endpoint.read_timeout} s); not retried: the request may have been served"
    )


def stalled_error(endpoint: Endpoint) -> KimiTimeoutError:
    return KimiTimeoutError(
        f"the response stalled for longer than the read timeout ({endpoint.read_timeout} s)"
    )


def too_large_error() -> KimiResponseError:
    return KimiResponseError(
        f"the response body is larger than {MAX_RESPONSE_BYTES} bytes once decoded; "
        "no real answer is that large, so it was not read further"
    )


def certificate_refused_error(err: BaseException, endpoint: Endpoint) -> KimiConnectionError | None:
    """The error for a certificate that failed verification (it will fail again: no retry)."""
    refusal = find_cause(err, ssl.SSLCertVerificationError)
    if refusal is None:
        return None
    # aiohttp's error subclasses ssl's and wraps the original as certificate_error.
    original = getattr(refusal, "certificate_error", refusal)
    reason = getattr(original, "verify_message", None) or str(original)
    return KimiConnectionError(
        f"the TLS certificate of {endpoint.url} was not accepted ({reason}); not retried. "
        "Behind a TLS-inspecting proxy or with a private CA, name its CA bundle in "
        "REQUESTS_CA_BUNDLE or SSL_CERT_FILE"
    )


def find_cause(err: BaseException, kind: type[_E]) -> _E | None:
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


def describe_error(err: BaseException) -> str:
    """The first non-empty message of ``err`` and its causes ("Connection reset by peer")."""
    cause: BaseException | None = err
    seen = 0
    while cause is not None and seen < 8:
        if str(cause):
            return str(cause)
        cause = cause.__cause__ or cause.__context__
        seen += 1
    return type(err).__name__


# --- sync (requests) ------------------------------------------------------------

# Every live sync transport, so a forked child can make each forget its parent's
# connections (see _forget_connections_in_child).
_SYNC_TRANSPORTS: weakref.WeakSet[SyncTransport] = weakref.WeakSet()
# Sessions a forked child inherited. Never used, never closed: closing would go
# through locks that another thread of the parent may have held at the fork.
# Kept referenced so their sockets are not reported as leaked by the collector.
_INHERITED: list[requests.Session] = []


class SyncTransport:
    """Blocking HTTP over one pooled ``requests.Session`` per process, created on first use.

    ``session``: the user's own ``requests.Session`` (``ChatKimi(http_client=...)``),
    used as given (its proxies, CAs, adapters) and never closed here.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        session: requests.Session | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._max_connections = max_connections
        self._given = session
        self._session: requests.Session | None = None
        self._close_session: weakref.finalize[[], SyncTransport] | None = None
        self._lock = threading.Lock()
        # Every call is the same POST but for its body: the request is prepared
        # once (URL parsed, headers merged with requests' defaults) and copied
        # per call, and sent with Session.send. Session.post would redo both and
        # merge session settings through runtime Protocol checks on every call:
        # 38% of the requests part of a call's CPU in the benchmark.
        self._template = _prepared_post(endpoint)
        self._send_options: dict[str, Any] = {}
        _SYNC_TRANSPORTS.add(self)

    def use_endpoint(self, endpoint: Endpoint) -> None:
        """Send with ``endpoint`` (a new token, headers, timeouts) from the next request on.

        The URL stays the same, and so do the pooled connections.
        """
        if endpoint.url != self.endpoint.url:
            raise ValueError("a transport's URL cannot change: make a new transport")
        self._template = _prepared_post(endpoint)
        self.endpoint = endpoint

    def _get_session(self) -> requests.Session:
        session = self._session
        if session is None:
            with self._lock:
                session = self._session
                if session is None:
                    session = self._open_session()
        return session

    def _open_session(self) -> requests.Session:
        session = requests.Session()
        # Threads share the instance (batch): keep enough pooled connections
        # for them instead of reopening every time.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=self._max_connections)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        # The proxy and CA settings, read once for our one URL (requests would
        # re-read every variable, and stat ~/.netrc, on each call: 5% of a
        # call's CPU), the same ones async calls use.
        settings = NetworkSettings.from_environment(self.endpoint.url)
        session.trust_env = False
        if settings.proxy is not None:
            session.proxies = {"http": settings.proxy, "https": settings.proxy}
        # True is certifi's bundle, through requests' preloaded context.
        session.verify = settings.ca_bundle or True
        self._send_options = {
            "proxies": session.proxies,
            "verify": session.verify,
            "cert": None,
            "allow_redirects": False,
            "stream": True,
        }
        # A model dropped without close() must not leave its pooled sockets to
        # the garbage collector (ResourceWarning). A finalizer, unlike __del__,
        # runs before anything in a garbage cycle is torn down, and holds the
        # session until then.
        self._close_session = weakref.finalize(self, session.close)
        self._session = session
        return session

    def close(self) -> None:
        """Close this transport's pooled connections (a given session is left alone)."""
        with self._lock:
            close_session, self._close_session = self._close_session, None
            self._session = None
        if close_session is not None:
            close_session()  # closes the session once, and forgets it

    def _forget_connections_in_child(self) -> None:
        self._lock = threading.Lock()  # another thread may have held it at the fork
        if self._session is not None:
            _INHERITED.append(self._session)
        if self._close_session is not None:
            self._close_session.detach()
        self._session = None
        self._close_session = None

    def _send(self, body: bytes, deadline: Deadline | None) -> requests.Response:
        """POST with retries; returns a 2xx response whose body is not read yet."""
        endpoint = self.endpoint
        policy = endpoint.retry
        attempt = 0
        while True:
            retry_after: float | None = None
            # Raised after the except clauses, not in them: requests' exception
            # holds the request, token included, and would ride along as __context__.
            fatal: KimiError | None = None
            try:
                timeout = (
                    capped(endpoint.connect_timeout, deadline),
                    capped(endpoint.read_timeout, deadline),
                )
                response = self._post(body, timeout)
            except requests.exceptions.ConnectTimeout:
                error: KimiError = connect_timeout_error(endpoint)
            except requests.exceptions.ReadTimeout:
                fatal = _timed_out(deadline) or read_timeout_error(endpoint)
            except requests.exceptions.ConnectionError as err:
                fatal = certificate_refused_error(err, endpoint)
                error = KimiConnectionError(
                    f"could not reach {endpoint.url}: {_describe_requests_error(err)}"
                )
            except requests.exceptions.RequestException as err:
                fatal = KimiConnectionError(f"request to {endpoint.url} failed: {err}")
            else:
                status = response.status_code
                if status < 300:
                    return response
                try:
                    raw = response.raw.read(MAX_ERROR_BODY_BYTES, decode_content=True)
                except Exception:  # the error status is what matters; the body is a bonus
                    raw = b""
                finally:
                    response.close()
                error, retry_after = error_for_status(endpoint, status, response.headers, raw)
            if fatal is not None:
                raise fatal
            time.sleep(delay_before_retry(policy, attempt, error, retry_after, deadline))
            attempt += 1

    def _post(self, body: bytes, timeout: tuple[float | None, float | None]) -> requests.Response:
        if self._given is not None:
            # The user's session decides proxies, CAs and adapters, as it would
            # for their own calls.
            return self._given.post(
                self.endpoint.url,
                data=body,
                headers=self.endpoint.headers,
                timeout=timeout,
                allow_redirects=False,
                stream=True,
            )
        session = self._get_session()
        request = self._template.copy()
        request.prepare_body(body, None)
        return session.send(request, timeout=timeout, **self._send_options)

    def post(self, body: bytes) -> bytes:
        """POST ``body``; return the whole (decoded) response body."""
        deadline = self.endpoint.deadline()
        response = self._send(body, deadline)
        try:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
                raise too_large_error()
            parts = []
            size = 0
            while True:
                piece = self._read(response, deadline)
                if not piece:
                    break
                size += len(piece)
                if size > MAX_RESPONSE_BYTES:
                    raise too_large_error()
                parts.append(piece)
            return b"".join(parts)
        finally:
            response.close()

    def stream(self, body: bytes) -> Iterator[bytes]:
        """POST ``body``; yield the response body's bytes as they arrive."""
        deadline = self.endpoint.deadline()
        response = self._send(body, deadline)
        raw = response.raw
        try:
            if deadline is None and raw.chunked and raw.supports_chunked_reads():
                # Servers flush one SSE event per HTTP chunk. urllib3's chunk
                # reader costs about a third of what read1() does per chunk
                # (3 vs 10 us), and read1() never returns more than one chunk.
                # (With a deadline, read1 is used: it returns as soon as bytes
                # arrive, where a chunk read waits for the whole chunk.)
                yield from self._read_chunks(response)
                return
            while True:
                piece = self._read(response, deadline)
                if not piece:
                    return
                yield piece
        finally:
            # Also runs when the consumer stops early: the connection is closed
            # rather than returned to the pool with unread bytes in it.
            response.close()

    def _read(self, response: requests.Response, deadline: Deadline | None) -> bytes:
        try:
            if deadline is not None:
                _limit_socket_wait(response, capped(self.endpoint.read_timeout, deadline))
            return response.raw.read1(_READ_SIZE, decode_content=True)
        except urllib3.exceptions.ReadTimeoutError:
            error: KimiError = _timed_out(deadline) or stalled_error(self.endpoint)
        except (urllib3.exceptions.HTTPError, OSError) as err:
            error = KimiStreamInterruptedError(f"the connection broke: {err}")
        raise error

    def _read_chunks(self, response: requests.Response) -> Iterator[bytes]:
        """The (decoded) data of each HTTP chunk of a chunked body, as it arrives."""
        try:
            yield from response.raw.read_chunked(_READ_SIZE, decode_content=True)
            return
        except urllib3.exceptions.ReadTimeoutError:
            error: KimiError = stalled_error(self.endpoint)
        except (urllib3.exceptions.HTTPError, OSError) as err:
            error = KimiStreamInterruptedError(f"the connection broke: {err}")
        raise error


def _prepared_post(endpoint: Endpoint) -> requests.PreparedRequest:
    """The POST every call sends, but for its body."""
    headers = requests.utils.default_headers()
    headers.update(endpoint.headers)
    return requests.Request("POST", endpoint.url, headers=headers).prepare()


def _timed_out(deadline: Deadline | None) -> KimiTimeoutError | None:
    """The deadline's error when a timeout fired because the call's deadline passed."""
    if deadline is not None and time.monotonic() >= deadline.at:
        return deadline.exceeded()
    return None


def _limit_socket_wait(response: requests.Response, seconds: float | None) -> None:
    """Make the next socket read wait at most ``seconds`` (the call's deadline is near)."""
    connection = response.raw.connection
    sock: socket.socket | None = getattr(connection, "sock", None)
    if sock is not None:
        sock.settimeout(seconds)


def _describe_requests_error(err: Exception) -> str:
    # requests nests the cause a few levels deep; the innermost reason is the
    # readable one ("Connection refused"), the outer ones repeat the URL.
    reason: Any = err
    while reason.args and isinstance(reason.args[0], Exception):
        reason = reason.args[0]
    inner = getattr(reason, "reason", None)
    return str(inner or reason)


def _forget_sync_connections_in_child() -> None:
    for transport in list(_SYNC_TRANSPORTS):
        transport._forget_connections_in_child()


os.register_at_fork(after_in_child=_forget_sync_connections_in_child)
