"""The HTTP session under an anymail connection, for calls to the provider's one API URL.

requests does a lot per request for features these calls never use: it merges the session's
cookies, auth, hooks and proxy settings into every request, prepares the URL again, looks for
redirects and cookies in every answer, and works out the connection pool's TLS settings again
(a look at the disk for the CA bundle each time). About a fifth of a send thread's CPU went there
(docs/benchmarks.md). `session_tuned` keeps requests' own adapter, urllib3's connection pool,
timeouts, TLS and error types (nurture/send_errors.py reads them) and skips only that work, falling
back to requests' full path whenever a request or the session uses one of those features.
"""
from __future__ import annotations

import datetime
import time

import requests
from requests.adapters import DEFAULT_POOLBLOCK, DEFAULT_POOLSIZE, DEFAULT_RETRIES, HTTPAdapter
from requests.cookies import extract_cookies_to_jar
from requests.hooks import default_hooks
from requests.models import PreparedRequest
from requests.structures import CaseInsensitiveDict


def session_tuned(connection) -> None:
    """Tune an anymail connection's session, once, when it is opened: the environment read once,
    then the one-endpoint session. Other backends (SMTP, console, locmem) are left alone."""
    environment_read_once(connection)
    session = getattr(connection, "session", None)
    if type(session) is requests.Session and not session.trust_env:
        connection.session = OneEndpointSession.like(session)


def environment_read_once(connection) -> None:
    """requests reads the proxy and CA-bundle environment on every request (about a tenth of a
    call's CPU); an anymail connection calls one API URL, so its session reads it once, when opened
    (proxies for that URL, NO_PROXY, REQUESTS_CA_BUNDLE). Other backends are left alone."""
    session, api_url = getattr(connection, "session", None), getattr(connection, "api_url", None)
    if not isinstance(session, requests.Session) or not api_url or not session.trust_env:
        return
    found = session.merge_environment_settings(api_url, {}, None, None, None)
    session.proxies, session.verify, session.cert = found["proxies"], found["verify"], found["cert"]
    session.trust_env = False


class PoolKeyOnce(HTTPAdapter):
    """requests' adapter, working out a URL's pool settings (scheme, host, port, CA bundle or
    directory, client certificate) once instead of on every request. urllib3 still picks the pool
    for them on every request, so a pool it closed is replaced as before."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pool_keys: dict[tuple, tuple[dict, dict]] = {}

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        key = (request.url, verify, cert if not isinstance(cert, list) else tuple(cert))
        found = self._pool_keys.get(key)
        if found is None:
            found = super().build_connection_pool_key_attributes(request, verify, cert)
            if len(self._pool_keys) < 16:  # one API URL in practice; never a growing cache
                self._pool_keys[key] = found
        host_params, pool_kwargs = found
        return dict(host_params), dict(pool_kwargs)


class OneEndpointSession(requests.Session):
    """A requests.Session whose plain requests (a body, headers and a timeout: what anymail sends)
    go straight to the adapter, prepared as requests prepares them. Anything else, and any session
    that has cookies, auth, hooks or params, takes requests' full path. A redirect is followed by
    requests' full path too (it was not accepted where it was sent, so nothing is sent twice)."""

    def __init__(self):
        super().__init__()
        self._prepared_urls: dict[str, str] = {}

    @classmethod
    def like(cls, session: requests.Session) -> OneEndpointSession:
        """A copy of `session` (the attributes requests itself copies when pickling a session),
        with PoolKeyOnce in place of requests' default adapters."""
        tuned = cls()
        for name in requests.Session.__attrs__:
            setattr(tuned, name, getattr(session, name))
        tuned.adapters = type(session.adapters)(session.adapters)
        for prefix, adapter in session.adapters.items():
            if type(adapter) is HTTPAdapter and _defaults(adapter):
                tuned.adapters[prefix] = PoolKeyOnce()
        return tuned

    def request(self, method, url, params=None, data=None, headers=None, cookies=None, files=None, auth=None,
                timeout=None, allow_redirects=True, proxies=None, hooks=None, stream=None, verify=None, cert=None,
                json=None):
        full = (params or cookies or files or auth or hooks or proxies or stream or json is not None
                or verify is not None or cert is not None or not isinstance(data, (str, bytes)) or "@" in url
                or self.trust_env or self.stream or self.cookies or self.auth or self.params
                or any(self.hooks.values()))
        if not full:
            response = self._send_plain(method, url, data=data, headers=headers, timeout=timeout)
            if not (allow_redirects and response.is_redirect):
                return response
        return super().request(method, url, params=params, data=data, headers=headers, cookies=cookies, files=files,
                               auth=auth, timeout=timeout, allow_redirects=allow_redirects, proxies=proxies,
                               hooks=hooks, stream=stream, verify=verify, cert=cert, json=json)

    def _send_plain(self, method, url, *, data, headers, timeout) -> requests.Response:
        prepared = PreparedRequest()
        prepared.prepare_method(method)
        prepared.url = self._prepared_url(url)
        merged = CaseInsensitiveDict(self.headers)
        if headers:
            merged.update(headers)
        prepared.prepare_headers({name: value for name, value in merged.items() if value is not None})
        prepared.prepare_body(data, None)
        prepared.hooks = default_hooks()
        started = time.perf_counter()
        response = self.get_adapter(url).send(
            prepared, stream=False, timeout=timeout, verify=self.verify, cert=self.cert, proxies=self.proxies)
        response.elapsed = datetime.timedelta(seconds=time.perf_counter() - started)
        if "set-cookie" in response.headers:  # kept as requests keeps them: later requests take its full path
            extract_cookies_to_jar(self.cookies, prepared, response.raw)
        response.content  # read now, as requests does when not streaming: the connection goes back to the pool
        return response

    def _prepared_url(self, url: str) -> str:
        prepared = self._prepared_urls.get(url)
        if prepared is None:
            checked = PreparedRequest()
            checked.prepare_url(url, None)
            prepared = checked.url
            if len(self._prepared_urls) < 16:
                self._prepared_urls[url] = prepared
        return prepared


def _defaults(adapter: HTTPAdapter) -> bool:
    """An adapter as requests.Session makes it (nobody set its retries or its pool's size or blocking)."""
    return (adapter.max_retries.total == DEFAULT_RETRIES and adapter._pool_connections == DEFAULT_POOLSIZE
            and adapter._pool_maxsize == DEFAULT_POOLSIZE and adapter._pool_block == DEFAULT_POOLBLOCK)
