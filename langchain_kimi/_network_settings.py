"""The proxy and the CAs a call uses: read once from the environment, for both flavours.

Sync calls run on ``requests`` and async calls on ``aiohttp``; a user behind a
proxy or a TLS-inspecting gateway should not have to know which library runs
which call. Both transports therefore take their settings from here, read from
the variables ``requests`` honours, with ``requests``' own functions:

- the proxy: ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` (either case),
  minus the hosts ``NO_PROXY`` names;
- the CAs: the first of ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``,
  ``SSL_CERT_FILE`` (a file) and ``SSL_CERT_DIR`` (a directory), else certifi's
  bundle, which ``requests`` uses by default. Verification is never turned off.

Usage::

    settings = NetworkSettings.from_environment("https://api.acedata.cloud/kimi/chat/completions")
    settings.proxy       # "http://proxy.internal:3128" or None
    settings.ca_bundle   # "/etc/ssl/corp.pem" or None (certifi)
    settings.ssl_context()
    settings.proxy_secrets()  # what errors must not show: the proxy's credentials
"""

from __future__ import annotations

import base64
import contextlib
import functools
import os
import re
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, quote_plus, unquote, urlsplit

import certifi
import requests.utils

CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


@dataclass(frozen=True)
class NetworkSettings:
    """Where a URL's requests go through (``proxy``) and whom TLS trusts (``ca_bundle``)."""

    proxy: str | None
    ca_bundle: str | None

    @classmethod
    def from_environment(cls, url: str) -> NetworkSettings:
        """The settings the environment gives for requests to ``url``."""
        proxies = requests.utils.get_environ_proxies(url)
        proxy = requests.utils.select_proxy(url, proxies) if proxies else None
        return cls(proxy=proxy or None, ca_bundle=ca_bundle())

    def proxy_secrets(self) -> tuple[str, ...]:
        """The proxy's credentials in every form an error page may echo them (see
        :func:`proxy_credential_forms`)."""
        return proxy_credential_forms([self.proxy] if self.proxy else [])

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that checks certificates and host names against ``ca_bundle``."""
        return _context_for(self.ca_bundle)


def proxy_credential_forms(proxies: Iterable[str]) -> tuple[str, ...]:
    """What error messages must not show of these proxy URLs' credentials.

    A proxy that refuses (``407``) may echo the request's headers, and so its
    ``Proxy-Authorization: Basic <base64 of user:password>``, or quote its own
    URL. Kept: ``user:password`` as written in the URL and decoded, its base64
    (Latin-1 and UTF-8 bytes), the password alone when it has 8 characters or
    more (as for credential headers), and each of those percent-encoded the ways
    a page may do it (``/`` kept or not, ``+`` for spaces, lower-case hex).
    """
    forms: set[str] = set()
    for proxy in proxies:
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if parts.username is None and parts.password is None:
            continue
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        plain = f"{user}:{password}"
        forms.update((parts.netloc.rpartition("@")[0], plain))
        for encoding in ("latin-1", "utf-8"):
            with contextlib.suppress(UnicodeEncodeError):  # not every name is Latin-1
                forms.add(base64.b64encode(plain.encode(encoding)).decode("ascii"))
        if len(password) >= 8:
            forms.add(password)
    for form in list(forms):
        for encoded in (quote(form, safe=""), quote(form), quote_plus(form, safe="")):
            forms.update((encoded, _LOWER_HEX.sub(lambda m: m.group().lower(), encoded)))
    forms.discard("")
    return tuple(sorted(forms))


_LOWER_HEX = re.compile(r"%[0-9A-F]{2}")


def ca_bundle() -> str | None:
    """The CA file or directory the environment names, or None for certifi's bundle."""
    for name in CA_BUNDLE_VARIABLES:
        value = os.environ.get(name)
        if value:
            return value
    return None


@functools.cache
def _context_for(bundle: str | None) -> ssl.SSLContext:
    # Loading a bundle costs 30-40 ms of CPU: one context per bundle per process
    # (a context is read-only once built, so sharing it between loops is safe).
    if bundle is None:
        return ssl.create_default_context(cafile=certifi.where())
    if os.path.isdir(bundle):
        return ssl.create_default_context(capath=bundle)
    return ssl.create_default_context(cafile=bundle)
