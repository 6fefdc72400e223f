"""The ``requests`` adapter of ChatKimi's own sync sessions: urllib3 configured, not replaced.

``http.client`` (which urllib3, and so ``requests``, reads responses with)
skips a ``100 Continue`` but takes any other interim response (``103 Early
Hints``, which CDNs send) for the answer: it has no body, so the connection
goes back to the pool with the real answer unread, and the next call on it
reads the previous call's answer. It also reads a response's head with the
socket's timeout per read, so a head dribbled a byte at a time outlasts any
deadline; and its errors do not say whether the service had begun to answer.

:class:`KimiAdapter` mounts connection classes whose response (a subclass of
``http.client.HTTPResponse``, set as the connection's ``response_class``, the
hook ``http.client`` provides) does three things around the standard parsing:

- reads past interim responses (``1xx`` but ``101``) to the final one, as
  aiohttp does; an unasked ``101`` closes the connection after it;
- when the call has a deadline (``total_timeout``), cuts every socket wait,
  head and body alike, to what is left of it (:class:`ReadClock`);
- tells the transport whether anything of an answer had arrived when reading
  failed: :class:`NoAnswer` (the request went out, nothing came back: maybe
  served, maybe not) or :class:`AnswerBroken` (the status line arrived: the
  service answered). Both are ``http.client.HTTPException``\\ s, so urllib3 and
  requests wrap them as they would the original error.

A session the user passes in (``http_client=``) is used as given: none of this
applies to it, and the transport refuses an interim response it returns,
discarding the connection.
"""

from __future__ import annotations

import http.client
import io
import socket
import threading
import time
from typing import Any

import urllib3
import urllib3.connection
from requests.adapters import HTTPAdapter

__all__ = ["AnswerBroken", "KimiAdapter", "NoAnswer", "ReadClock", "reading_with"]

# More interim responses than any server sends before its answer: past this,
# the head is refused instead of read for as long as the server keeps talking.
MAX_INTERIM_RESPONSES = 32

# The clock of the call this thread is sending (see reading_with): a response
# is created inside requests' send, on the calling thread, and keeps its clock.
_SENDING = threading.local()


class NoAnswer(http.client.HTTPException):
    """The request went out and the connection failed before the first byte of an answer."""


class AnswerBroken(http.client.HTTPException):
    """The answer had begun (its status line arrived), then its head could not be read.

    ``malformed``: the head was not valid HTTP (a line too long, too many
    headers, an unknown protocol), rather than cut off.
    """

    def __init__(self, reason: str, *, malformed: bool) -> None:
        super().__init__(reason)
        self.malformed = malformed


class ReadClock:
    """How long one sync call's socket reads may wait: the read timeout, cut to its deadline.

    ``until`` is a ``time.monotonic()`` instant (the call's deadline);
    :meth:`limit_waits` shortens every later wait (a short grace at the end of
    an answer). :meth:`wait` raises ``TimeoutError`` (what a socket raises) once
    ``until`` has passed, so urllib3 and requests report it as a read timeout.
    """

    __slots__ = ("read_timeout", "until")

    def __init__(self, until: float, read_timeout: float | None) -> None:
        self.until = until
        self.read_timeout = read_timeout

    def wait(self) -> float:
        left = self.until - time.monotonic()
        if left <= 0:
            raise TimeoutError("the call's total_timeout has passed")
        return left if self.read_timeout is None else min(self.read_timeout, left)

    def limit_waits(self, seconds: float) -> None:
        current = self.read_timeout
        self.read_timeout = seconds if current is None else min(current, seconds)


class reading_with:  # a context manager, named for how it reads
    """``with reading_with(clock): session.send(...)``: responses created inside use ``clock``."""

    __slots__ = ("_clock",)

    def __init__(self, clock: ReadClock | None) -> None:
        self._clock = clock

    def __enter__(self) -> None:
        _SENDING.clock = self._clock

    def __exit__(self, *exc_info: object) -> None:
        _SENDING.clock = None


class _SocketReadsWithin(io.RawIOBase):
    """A socket's bytes, each wait no longer than the call's :class:`ReadClock` allows."""

    def __init__(self, raw: io.RawIOBase, sock: socket.socket, clock: ReadClock) -> None:
        super().__init__()
        self._raw = raw
        self._sock = sock
        self._clock = clock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        self._sock.settimeout(self._clock.wait())
        return self._raw.readinto(buffer)

    def fileno(self) -> int:
        return self._raw.fileno()

    def close(self) -> None:
        self._raw.close()
        super().close()


class FinalResponse(http.client.HTTPResponse):
    """``http.client``'s response, reading past interim responses; see the module docstring."""

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        clock: ReadClock | None = getattr(_SENDING, "clock", None)
        if clock is not None:
            # detach(): the socket's reader moves under the bounded one, unclosed.
            raw = self.fp.detach()
            self.fp = io.BufferedReader(_SocketReadsWithin(raw, sock, clock))

    def begin(self) -> None:
        if self.headers is not None:
            return  # already read (http.client calls begin once per response)
        try:
            first = self.fp.peek(1)
        except TimeoutError:
            raise  # a read timeout, reported as one
        except OSError as err:
            raise NoAnswer(_describe(err)) from err
        if not first:
            raise NoAnswer("the server closed the connection without answering")
        try:
            super().begin()
            interim = 0
            while 100 <= self.status < 200 and self.status != 101:
                interim += 1
                if interim > MAX_INTERIM_RESPONSES:
                    raise http.client.HTTPException(
                        f"more than {MAX_INTERIM_RESPONSES} interim responses"
                    )
                # The interim response's head is done with: read the next one.
                self.headers = self.msg = None
                super().begin()
        except TimeoutError:
            raise
        except (http.client.HTTPException, OSError) as err:
            malformed = isinstance(err, http.client.HTTPException)
            raise AnswerBroken(_describe(err), malformed=malformed) from err
        if self.status == 101:
            # Switching protocols nobody asked for: never reuse this connection.
            self.will_close = True


def _describe(err: BaseException) -> str:
    return str(err) or type(err).__name__


class _HTTPConnection(urllib3.connection.HTTPConnection):
    response_class = FinalResponse


class _HTTPSConnection(urllib3.connection.HTTPSConnection):
    response_class = FinalResponse


class _HTTPConnectionPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSConnectionPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOL_CLASSES: dict[str, Any] = {"http": _HTTPConnectionPool, "https": _HTTPSConnectionPool}


class KimiAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose pools (direct, or via an HTTP proxy) use :class:`FinalResponse`.

    A SOCKS proxy keeps urllib3's own SOCKS pools.
    """

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _POOL_CLASSES
        return manager
