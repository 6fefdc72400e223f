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
"""

from __future__ import annotations

import functools
import os
import ssl
from dataclasses import dataclass

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

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that checks certificates and host names against ``ca_bundle``."""
        return _context_for(self.ca_bundle)


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
