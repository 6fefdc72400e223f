"""HTTP for both flavours: retries, deadlines, status -> error; and sync I/O on requests.

``SyncTransport`` (``requests``, here) and ``AsyncTransport`` (``aiohttp``, in
:mod:`langchain_kimi._async_transport`, imported on the first async call)
share everything that is not I/O: the retry policy, which failures are
retryable, the per-call deadline, the error mapping, the size limits
(:mod:`langchain_kimi._limits`) and the proxy and CA settings
(:mod:`langchain_kimi._network_settings`).

Retrying is limited to what cannot be charged twice (:class:`RetryPolicy`,
one policy for both transports, each of which sorts its library's errors into
a :class:`Failure`): a connection that could not be made, and statuses with
which the service says "not done, try again" (408, 429, 500, 502, 503, 504).
A connection lost after the request went out and before any answer is
ambiguous (the service may have it whole): retried only when the user opts in
(``retry_on_ambiguous_failure``). A read timeout is not retried (the service
may be working on the request), nor is anything once an answer has begun: a
broken stream raises :class:`~langchain_kimi.KimiStreamInterruptedError`.

After ``os.fork()`` a child never uses the connections it inherited (they are
the parent's sockets): each transport forgets them in the child and opens its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.utils
import enum
import io
import logging
import math
import os
import random
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, TypeVar

import requests
import urllib3.exceptions

from langchain_kimi._limits import MAX_ERROR_BODY_BYTES, MAX_RESPONSE_BYTES
from langchain_kimi._network_settings import NetworkSettings, proxy_credential_forms
from langchain_kimi.errors import (
    KimiConnectionError,
    KimiError,
    KimiRateLimitError,
    KimiResponseError,
    KimiStreamInterruptedError,
    KimiTimeoutError,
    error_from_status,
)

if TYPE_CHECKING:
    from langchain_kimi._requests_adapter import ReadClock

logger = logging.getLogger("langchain_kimi")

_E = TypeVar("_E", bound=BaseException)

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
DEFAULT_MAX_CONNECTIONS = 512
_READ_SIZE = 64 * 1024
# After the event that ends an answer ([DONE]), how long the rest of the body
# (the chunked terminator, which servers often write separately) may take to
# arrive: in time, the connection is reused; past it, or with more bytes, it
# is discarded, and the answer is returned either way.
AFTER_ANSWER_GRACE = 0.1


class Failure(enum.Enum):
    """What one attempt's failure says about the request: whether the service can have it.

    Each transport sorts its library's errors into these; :class:`RetryPolicy`
    alone decides which are retried. The values name the rows of the retry
    table in ``docs/errors.md`` (a test reads the table against the policy).
    """

    CONNECT_FAILED = "connect-failed"
    """No connection: refused, host not found, TLS handshake failed, proxy unreachable."""
    CONNECT_TIMEOUT = "connect-timeout"
    """Connecting took longer than ``connect_timeout``."""
    RETRYABLE_STATUS = "retryable-status"
    """The service answered 408, 429, 500, 502, 503 or 504: not done, try again."""
    LOST_BEFORE_ANSWER = "lost-before-answer"
    """The request went out; the connection was lost before any byte of an answer."""
    READ_TIMEOUT = "read-timeout"
    """No answer within the read timeout: the service may be working on it."""
    ANSWER_BROKEN = "answer-broken"
    """The answer began (a status line arrived), then broke or could not be read."""
    ERROR_STATUS = "error-status"
    """Any other error status (400, 401, 403, 404, 422, 501...)."""
    REDIRECT = "redirect"
    """A 3xx: never followed (the token would go elsewhere)."""
    INTERIM = "interim"
    """An interim (1xx) response the HTTP library could not read past."""
    CERTIFICATE = "certificate"
    """The server's TLS certificate was refused: it would be refused again."""
    OTHER = "other"
    """Anything else the HTTP library raised."""


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before trying again.

    :meth:`retries` says which :class:`Failure` may be retried at all: only
    what the service provably did not get (no connection), or what it answered
    with a retryable status; a loss after the request went out only with
    ``retry_on_ambiguous_failure`` (the service may have it whole, and charge
    for it twice). At most ``max_retries`` retries.

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
    retry_on_ambiguous_failure: bool = False
    base_delay: ClassVar[float] = 0.5
    max_delay: ClassVar[float] = 8.0
    max_retry_after: ClassVar[float] = 60.0

    def retries(self, failure: Failure) -> bool:
        """Whether a failure of this kind may be retried (``max_retries`` aside)."""
        if failure is Failure.LOST_BEFORE_ANSWER:
            return self.retry_on_ambiguous_failure
        return failure in _ALWAYS_RETRIED

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return random.uniform(0.0, min(self.max_delay, self.base_delay * (2**attempt)))


_ALWAYS_RETRIED = frozenset(
    {Failure.CONNECT_FAILED, Failure.CONNECT_TIMEOUT, Failure.RETRYABLE_STATUS}
)


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


def with_secrets(endpoint: Endpoint, extra: Sequence[str]) -> Endpoint:
    """``endpoint``, with ``extra`` values that no error may show (a proxy's credentials)."""
    if not extra:
        return endpoint
    return dataclasses.replace(endpoint, secrets=(*endpoint.secrets, *extra))


class Resend(enum.Enum):
    """When a platform request (files, batches, balance) may be sent again after a failure.

    Chat calls follow the model's :class:`RetryPolicy` as it is. Platform calls
    differ by what sending twice would do:
    """

    READ = "read"
    """A read (GET) changes nothing: retried as the policy says, and also after a
    connection lost once the request went out (the ambiguous case)."""
    AS_POLICY = "as-policy"
    """Exactly the model's policy (a DELETE: sent twice, the second finds nothing)."""
    CREATE = "create"
    """Creates something (an upload, a batch) that a second request would create
    again: retried only when the service provably did not take it: no connection,
    or a 408 or 429 (refused before any work). Never after a connection lost once
    the request went out, nor after a 500, 502, 503 or 504, which a gateway can send
    after the service created it; ``retry_on_ambiguous_failure`` does not apply."""


# Statuses that say a create was refused before anything was made.
_CREATE_RETRYABLE_STATUSES = frozenset({408, 429})


def resend_policy(policy: RetryPolicy, resend: Resend) -> RetryPolicy:
    """The policy a platform request of this kind retries by."""
    if resend is Resend.READ and not policy.retry_on_ambiguous_failure:
        return dataclasses.replace(policy, retry_on_ambiguous_failure=True)
    if resend is Resend.CREATE and policy.retry_on_ambiguous_failure:
        return dataclasses.replace(policy, retry_on_ambiguous_failure=False)
    return policy


def resend_failure(resend: Resend, failure: Failure, status: int) -> Failure:
    """``failure`` of an error status, as a create sees it (a 5xx may follow a create)."""
    if (
        resend is Resend.CREATE
        and failure is Failure.RETRYABLE_STATUS
        and status not in _CREATE_RETRYABLE_STATUSES
    ):
        return Failure.ERROR_STATUS
    return failure


@dataclass(frozen=True)
class Upload:
    """The file part of a multipart upload: bytes, or a path read as it is sent.

    Opened afresh for each attempt (a retry after a failed connection sends it
    again from its start); a path is streamed, never read whole into memory.
    """

    filename: str
    source: bytes | str | os.PathLike[str] = field(repr=False)
    content_type: str = "application/octet-stream"

    def open(self) -> BinaryIO:
        if isinstance(self.source, bytes):
            return io.BytesIO(self.source)
        return open(self.source, "rb")  # the caller closes it once sent


@dataclass(frozen=True)
class PlatformRequest:
    """One request to a platform endpoint: method, full URL, body, and whether it may be resent.

    The body is ``json_body`` (encoded JSON), or a multipart form of ``fields``
    and ``upload`` (as the field ``file``), or nothing.
    """

    method: str
    url: str
    resend: Resend
    json_body: bytes | None = field(default=None, repr=False)
    fields: Mapping[str, str] = field(default_factory=dict)
    upload: Upload | None = None


@dataclass(frozen=True)
class PlatformAnswer:
    """A platform endpoint's 2xx answer: its whole (decoded) body and its content type."""

    body: bytes = field(repr=False)
    content_type: str


def platform_endpoint(endpoint: Endpoint, request: PlatformRequest) -> Endpoint:
    """The chat endpoint's token, headers, timeouts and secrets, for ``request``'s URL.

    The chat request's own ``Content-Type`` and ``Accept`` are dropped: each
    platform request names its body's type, and answers come as JSON, text or bytes.
    """
    headers = {
        name: value
        for name, value in endpoint.headers.items()
        if name.lower() not in ("content-type", "accept")
    }
    headers["Accept"] = "*/*"
    if request.json_body is not None:
        headers["Content-Type"] = "application/json"
    return dataclasses.replace(endpoint, url=request.url, headers=headers)


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
) -> tuple[Failure, KimiError, float | None]:
    """The failure, the typed error and the ``Retry-After`` of an answer that is not a 2xx."""
    if status < 200:
        return (
            Failure.INTERIM,
            KimiResponseError(
                f"the endpoint answered with an interim response ({status}) that the HTTP "
                "client in use could not read past; the connection was discarded. Not "
                "retried: the request reached the service"
            ),
            None,
        )
    if status < 400:
        # Redirects are not followed: a POST would be replayed elsewhere, maybe
        # with the token. A moved endpoint is a configuration problem to show.
        error = error_from_status(
            status,
            f"the endpoint answered with a redirect to {headers.get('location') or '(nowhere)'}; "
            "check base_url (redirects are not followed so the token never leaves the host)",
            secrets=endpoint.secrets,
        )
        return Failure.REDIRECT, error, None
    retry_after = parse_retry_after(headers.get("retry-after"))
    error = error_from_status(status, raw, retry_after, secrets=endpoint.secrets)
    failure = Failure.RETRYABLE_STATUS if status in RETRYABLE_STATUSES else Failure.ERROR_STATUS
    if isinstance(error, KimiRateLimitError) and error.quota_exceeded:
        failure = Failure.ERROR_STATUS  # a used-up balance does not come back within a retry
    return failure, error, retry_after


def delay_before_retry(
    policy: RetryPolicy,
    attempt: int,
    failure: Failure,
    error: KimiError,
    retry_after: float | None,
    deadline: Deadline | None,
) -> float:
    """Seconds to wait before attempt ``attempt + 1``; raises ``error`` when there is none.

    None when the policy does not retry ``failure``, or retries are used up. A
    retry that could not start before the call's deadline is not made: the
    call ends with the deadline's timeout, caused by (``__cause__``) ``error``.
    """
    if attempt >= policy.max_retries or not policy.retries(failure):
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


def lost_connection_error(endpoint: Endpoint, reason: str) -> KimiConnectionError:
    return KimiConnectionError(
        f"the connection to {endpoint.url} was lost after the request was sent, before any "
        f"answer ({reason}). The service may have received it (and may charge for it), so "
        "it is retried only with retry_on_ambiguous_failure=True"
    )


def answer_broken_error(endpoint: Endpoint, reason: str, *, malformed: bool) -> KimiError:
    """The error for an answer whose head broke off (or was not HTTP) after its status line."""
    if malformed:
        return KimiResponseError(
            f"the answer from {endpoint.url} has a head that cannot be read ({reason}); "
            "not retried: the service answered"
        )
    return KimiStreamInterruptedError(
        f"the connection to {endpoint.url} broke after the answer began ({reason}); "
        "not retried: the service answered"
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
        self._settings = NetworkSettings.from_environment(endpoint.url)
        # A proxy's error page may echo its credentials: errors redact them too.
        proxies = list(session.proxies.values()) if session is not None else []
        if self._settings.proxy is not None:
            proxies.append(self._settings.proxy)
        endpoint = with_secrets(endpoint, proxy_credential_forms(proxies))
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
        from langchain_kimi._requests_adapter import KimiAdapter  # needs urllib3: with requests

        session = requests.Session()
        # Threads share the instance (batch): keep enough pooled connections
        # for them instead of reopening every time. The adapter reads past
        # interim responses, bounds head reads by the deadline, and says
        # whether an answer had begun when reading failed (_requests_adapter).
        adapter = KimiAdapter(pool_connections=4, pool_maxsize=self._max_connections)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        # The proxy and CA settings, read once for our one URL (requests would
        # re-read every variable, and stat ~/.netrc, on each call: 5% of a
        # call's CPU), the same ones async calls use.
        settings = self._settings
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

    def _send(
        self, body: bytes, deadline: Deadline | None, clock: ReadClock | None
    ) -> requests.Response:
        """POST with retries; returns a 2xx response whose body is not read yet."""
        endpoint = self.endpoint
        return self._with_retries(
            lambda timeout: self._post(body, timeout, clock), endpoint, endpoint.retry, deadline
        )

    def _with_retries(
        self,
        send_once: Callable[[tuple[float | None, float | None]], requests.Response],
        endpoint: Endpoint,
        policy: RetryPolicy,
        deadline: Deadline | None,
        resend: Resend | None = None,
    ) -> requests.Response:
        """``send_once(timeout)`` until a 2xx answer, or raise as ``policy`` (and ``resend``,
        for a platform request) says; the 2xx response's body is not read yet."""
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                timeout = (
                    capped(endpoint.connect_timeout, deadline),
                    capped(endpoint.read_timeout, deadline),
                )
                response = send_once(timeout)
            except requests.exceptions.RequestException as err:
                # Sorted here, raised below: requests' exception holds the
                # request, token included, and would ride along as __context__.
                failure, error = self._failure(err, deadline, endpoint)
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return response
                raw = _read_error_body(response)
                failure, error, retry_after = error_for_status(
                    endpoint, status, response.headers, raw
                )
                if resend is not None:
                    failure = resend_failure(resend, failure, status)
                expired = _timed_out(deadline)  # the body ran into the deadline
                if expired is not None:
                    raise expired from error
            time.sleep(delay_before_retry(policy, attempt, failure, error, retry_after, deadline))
            attempt += 1

    def _failure(
        self,
        err: requests.exceptions.RequestException,
        deadline: Deadline | None,
        endpoint: Endpoint | None = None,
    ) -> tuple[Failure, KimiError]:
        """What requests' ``err`` says about the request (for the retry policy), and its error."""
        from langchain_kimi._requests_adapter import AnswerBroken, NoAnswer

        endpoint = endpoint or self.endpoint
        if isinstance(err, requests.exceptions.ConnectTimeout):
            return Failure.CONNECT_TIMEOUT, connect_timeout_error(endpoint)
        if isinstance(err, requests.exceptions.ReadTimeout):
            return Failure.READ_TIMEOUT, _timed_out(deadline) or read_timeout_error(endpoint)
        refused = certificate_refused_error(err, endpoint)
        if refused is not None:
            return Failure.CERTIFICATE, refused
        broken = find_cause(err, AnswerBroken)
        if broken is not None:
            error = answer_broken_error(endpoint, str(broken), malformed=broken.malformed)
            return Failure.ANSWER_BROKEN, error
        if not isinstance(err, requests.exceptions.ConnectionError):
            return Failure.OTHER, KimiConnectionError(f"request to {endpoint.url} failed: {err}")
        unanswered = find_cause(err, NoAnswer)
        if unanswered is not None:
            return Failure.LOST_BEFORE_ANSWER, lost_connection_error(endpoint, str(unanswered))
        reason = _describe_requests_error(err)
        # Only a connection that was never made proves the request did not go
        # out (an SSL error of our own sessions' responses is a NoAnswer).
        if isinstance(
            err, (requests.exceptions.ProxyError, requests.exceptions.SSLError)
        ) or find_cause(err, urllib3.exceptions.NewConnectionError):
            return Failure.CONNECT_FAILED, KimiConnectionError(
                f"could not reach {endpoint.url}: {reason}"
            )
        return Failure.LOST_BEFORE_ANSWER, lost_connection_error(endpoint, reason)

    def _post(
        self,
        body: bytes,
        timeout: tuple[float | None, float | None],
        clock: ReadClock | None,
    ) -> requests.Response:
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
        if clock is None:
            return session.send(request, timeout=timeout, **self._send_options)
        from langchain_kimi._requests_adapter import reading_with

        with reading_with(clock):  # the response reads its head and body within the deadline
            return session.send(request, timeout=timeout, **self._send_options)

    def _clock(self, deadline: Deadline | None) -> ReadClock | None:
        """The read clock of a call with a deadline (our sessions only: see _requests_adapter)."""
        if deadline is None or self._given is not None:
            return None
        from langchain_kimi._requests_adapter import ReadClock

        return ReadClock(deadline.at, self.endpoint.read_timeout)

    def post(self, body: bytes) -> bytes:
        """POST ``body``; return the whole (decoded) response body."""
        deadline = self.endpoint.deadline()
        clock = self._clock(deadline)
        response = self._send(body, deadline, clock)
        try:
            return self._read_whole(response, deadline, clock)
        finally:
            response.close()

    def _read_whole(
        self, response: requests.Response, deadline: Deadline | None, clock: ReadClock | None
    ) -> bytes:
        """The whole (decoded) body, at most ``MAX_RESPONSE_BYTES`` of it."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
            raise too_large_error()
        parts = []
        size = 0
        while True:
            piece = self._read(response, deadline, clock)
            if not piece:
                break
            size += len(piece)
            if size > MAX_RESPONSE_BYTES:
                raise too_large_error()
            parts.append(piece)
        return b"".join(parts)

    # --- platform endpoints (files, batches, balance: see _platform) ------------

    def platform_request(self, request: PlatformRequest) -> PlatformAnswer:
        """Send ``request``; return its whole (decoded) body, at most ``MAX_RESPONSE_BYTES``.

        The chat calls' retry policy (as ``request.resend`` adapts it), deadline,
        error mapping, size limit, proxies and redaction apply.
        """
        endpoint = platform_endpoint(self.endpoint, request)
        deadline = endpoint.deadline()
        clock = self._clock(deadline)
        response = self._send_platform(request, endpoint, deadline, clock)
        try:
            body = self._read_whole(response, deadline, clock)
            return PlatformAnswer(body, response.headers.get("content-type", ""))
        finally:
            response.close()

    def platform_stream(self, request: PlatformRequest) -> Iterator[bytes]:
        """Send ``request``; yield its (decoded) body as it arrives, with no size limit.

        For bodies larger than any answer (batch result files): the consumer
        bounds what it keeps. Closing the generator early discards the connection.
        """
        endpoint = platform_endpoint(self.endpoint, request)
        deadline = endpoint.deadline()
        clock = self._clock(deadline)
        response = self._send_platform(request, endpoint, deadline, clock)
        try:
            yield from self._read_pieces(response, deadline, clock)
        finally:
            response.close()

    def _send_platform(
        self,
        request: PlatformRequest,
        endpoint: Endpoint,
        deadline: Deadline | None,
        clock: ReadClock | None,
    ) -> requests.Response:
        """Send with retries (as ``request.resend`` allows); a 2xx response, body unread."""
        return self._with_retries(
            lambda timeout: self._send_platform_once(request, endpoint, timeout, clock),
            endpoint,
            resend_policy(endpoint.retry, request.resend),
            deadline,
            request.resend,
        )

    def _send_platform_once(
        self,
        request: PlatformRequest,
        endpoint: Endpoint,
        timeout: tuple[float | None, float | None],
        clock: ReadClock | None,
    ) -> requests.Response:
        headers = dict(endpoint.headers)
        with contextlib.ExitStack() as opened:
            data: Any = request.json_body
            if request.upload is not None:
                # requests' files= reads the whole file, then copies it into the
                # body: requests-toolbelt's encoder streams it from the file.
                from requests_toolbelt import MultipartEncoder  # type: ignore[import-untyped]

                upload = request.upload
                source = opened.enter_context(upload.open())
                part = (upload.filename, source, upload.content_type)
                data = MultipartEncoder(fields={**request.fields, "file": part})
                headers["Content-Type"] = data.content_type
            if self._given is not None:
                return self._given.request(
                    request.method,
                    request.url,
                    data=data,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                    stream=True,
                )
            session = self._get_session()
            prepared = requests.Request(
                request.method,
                request.url,
                headers={**requests.utils.default_headers(), **headers},
                data=data,
            ).prepare()
            from langchain_kimi._requests_adapter import reading_with

            with reading_with(clock):
                return session.send(prepared, timeout=timeout, **self._send_options)

    def stream(
        self, body: bytes, answer_ended: Callable[[], bool] | None = None
    ) -> Iterator[bytes]:
        """POST ``body``; yield the response body's bytes as they arrive.

        ``answer_ended``: asked after each piece is consumed; once it says the
        answer is whole (``[DONE]``), the rest of the body is given a short
        grace to end (so the connection can be reused) and is not yielded: a
        body that has more, or stays open, has its connection discarded.
        """
        deadline = self.endpoint.deadline()
        clock = self._clock(deadline)
        response = self._send(body, deadline, clock)
        raw = response.raw
        try:
            if (
                raw.chunked
                and raw.supports_chunked_reads()
                and (deadline is None or clock is not None)
            ):
                # Servers flush one SSE event per HTTP chunk. urllib3's chunk
                # reader costs about a third of what read1() does per chunk
                # (3 vs 10 us), and read1() never returns more than one chunk.
                # (With a deadline and the user's session, read1 is used: it
                # returns as soon as bytes arrive, where a chunk read waits for
                # the whole chunk; our sessions bound every socket wait.)
                pieces = self._read_chunks(response, deadline)
            else:
                pieces = self._read_pieces(response, deadline, clock)
            for piece in pieces:
                yield piece
                if answer_ended is not None and answer_ended():
                    self._end_body(response, pieces, deadline, clock)
                    return
        finally:
            # Also runs when the consumer stops early: a body not read to its
            # end closes its connection rather than going back to the pool.
            response.close()

    def _end_body(
        self,
        response: requests.Response,
        pieces: Iterator[bytes],
        deadline: Deadline | None,
        clock: ReadClock | None,
    ) -> None:
        """After the answer's last event: let the body end within the grace, reading no data.

        A body that ends in time leaves the connection to the pool; one that
        has more bytes, stays silent or breaks does not (``response.close()``
        discards it). The answer is whole either way: nothing here raises.
        """
        grace = AFTER_ANSWER_GRACE
        if clock is not None:
            clock.limit_waits(grace)
        else:
            try:
                _limit_socket_wait(response, capped(grace, deadline))
            except KimiTimeoutError:
                return
        try:
            next(pieces)  # more data after the end: leave it unread
        except StopIteration:
            return  # the body ended: its connection went back to the pool
        except KimiError:
            return

    def _read_pieces(
        self, response: requests.Response, deadline: Deadline | None, clock: ReadClock | None
    ) -> Iterator[bytes]:
        while True:
            piece = self._read(response, deadline, clock)
            if not piece:
                return
            yield piece

    def _read(
        self, response: requests.Response, deadline: Deadline | None, clock: ReadClock | None
    ) -> bytes:
        try:
            if deadline is not None and clock is None:
                # The user's session: its socket waits are cut here, before each read.
                _limit_socket_wait(response, capped(self.endpoint.read_timeout, deadline))
            return response.raw.read1(_READ_SIZE, decode_content=True)
        except urllib3.exceptions.ReadTimeoutError:
            error: KimiError = _timed_out(deadline) or stalled_error(self.endpoint)
        except (urllib3.exceptions.HTTPError, OSError) as err:
            error = KimiStreamInterruptedError(f"the connection broke: {err}")
        raise error

    def _read_chunks(
        self, response: requests.Response, deadline: Deadline | None
    ) -> Iterator[bytes]:
        """The (decoded) data of each HTTP chunk of a chunked body, as it arrives."""
        try:
            yield from response.raw.read_chunked(_READ_SIZE, decode_content=True)
            return
        except urllib3.exceptions.ReadTimeoutError:
            error: KimiError = _timed_out(deadline) or stalled_error(self.endpoint)
        except (urllib3.exceptions.HTTPError, OSError) as err:
            error = KimiStreamInterruptedError(f"the connection broke: {err}")
        raise error


def _prepared_post(endpoint: Endpoint) -> requests.PreparedRequest:
    """The POST every call sends, but for its body."""
    headers = requests.utils.default_headers()
    headers.update(endpoint.headers)
    return requests.Request("POST", endpoint.url, headers=headers).prepare()


def _read_error_body(response: requests.Response) -> bytes:
    """The start of an error answer's body (b"" when it cannot be read); closes the response."""
    try:
        # An interim response has no body, and the real answer follows on its
        # connection: reading "to the end" would give that connection back to
        # the pool. Closed unread, it is dropped.
        if response.status_code < 200:
            return b""
        data: bytes = response.raw.read(MAX_ERROR_BODY_BYTES, decode_content=True)
        return data
    except Exception:  # the error status is what matters; the body is a bonus
        return b""
    finally:
        response.close()


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
