"""Whom TLS trusts: one CA bundle setting for sync and async calls.

``requests`` (sync) reads ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``; httpx's
defaults (async) read ``SSL_CERT_FILE``/``SSL_CERT_DIR``. A user behind a
TLS-inspecting proxy should not have to know which library runs which call, so
both transports honour all four, in this order, and fall back to certifi's
bundle. Verification is never turned off.
"""

from __future__ import annotations

import functools
import os
import ssl

import certifi

CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


def ca_bundle() -> str | None:
    """The CA file or directory the environment names, or None for certifi's bundle."""
    for name in CA_BUNDLE_VARIABLES:
        value = os.environ.get(name)
        if value:
            return value
    return None


def verifying_context() -> ssl.SSLContext:
    """A client context that checks certificates and host names against :func:`ca_bundle`.

    Loading a bundle costs 30-40 ms of CPU, so there is one context per bundle
    per process (a context is read-only once built, so sharing it is safe).
    """
    return _context_for(ca_bundle())


@functools.cache
def _context_for(bundle: str | None) -> ssl.SSLContext:
    if bundle is None:
        context = ssl.create_default_context(cafile=certifi.where())
    elif os.path.isdir(bundle):
        context = ssl.create_default_context(capath=bundle)
    else:
        context = ssl.create_default_context(cafile=bundle)
    context.set_alpn_protocols(["http/1.1"])  # the only protocol the async transport speaks
    return context
