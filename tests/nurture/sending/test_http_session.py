"""The session under an anymail connection (nurture/sending/http_session.py): what reaches the
provider is byte for byte what requests' full path sends, errors keep requests' types, and whatever
that session skips (redirects, cookies, hooks, custom adapters) is handed back to requests."""
from __future__ import annotations

import socket
import socketserver
import threading

import pytest
import requests
from anymail.exceptions import AnymailRequestsAPIError
from django.core.mail import EmailMultiAlternatives, get_connection

from nurture.send_errors import TRANSIENT, UNKNOWN, classify_send_error
from nurture.sending.http_session import OneEndpointSession, PoolKeyOnce, session_tuned


class RawServer:
    """A loopback HTTP/1.1 server that keeps each request's raw bytes and the connection it came
    on, and answers each path as told: {path: (status, extra header lines)}; a path under /slow never answers;
    with close_after_each, it closes the connection after every answer without saying so."""

    def __init__(self, answers=None, close_after_each=False):
        self.requests: list[tuple[int, bytes]] = []  # (connection number, raw request)
        self.answers = answers or {}
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                number, buffer = len(server.connections), b""
                server.connections.append(self.request)
                while True:
                    while b"\r\n\r\n" not in buffer:
                        chunk = self.request.recv(65536)
                        if not chunk:
                            return
                        buffer += chunk
                    head, _, rest = buffer.partition(b"\r\n\r\n")
                    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), 0)
                    while len(rest) < length:
                        rest += self.request.recv(65536)
                    body, buffer = rest[:length], rest[length:]
                    server.requests.append((number, head + b"\r\n\r\n" + body))
                    path = head.split(b" ")[1].decode()
                    if path.startswith("/slow"):
                        server.release.wait(10)
                        return
                    status, extra = server.answers.get(path, (200, []))
                    answer = b'{"To":"a@example.org","MessageID":"m-1","ErrorCode":0,"Message":"OK"}'
                    lines = [f"HTTP/1.1 {status} X", "Content-Type: application/json", f"Content-Length: {len(answer)}", *extra]
                    self.request.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + answer)
                    if server.close_after_each:
                        self.request.close()
                        server.closed.set()
                        return

        self.connections: list[socket.socket] = []
        self.close_after_each = close_after_each
        self.release = threading.Event()
        self.closed = threading.Event()  # set when the server has closed a connection (close_after_each)
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def plain_request(session, url):
    """What anymail's post_to_esp asks of its session."""
    return session.request(method="POST", url=url, data='{"To": "a@example.org"}',
                           headers={"Content-Type": "application/json", "X-Postmark-Server-Token": "t"}, timeout=5)


def tuned_session() -> OneEndpointSession:
    session = requests.Session()
    session.trust_env = False
    return OneEndpointSession.like(session)


def test_the_request_on_the_wire_is_the_one_requests_sends():
    with RawServer() as server:
        plain_request(requests.Session(), server.url + "/email")
        plain_request(tuned_session(), server.url + "/email")
    (_, theirs), (_, ours) = server.requests
    assert ours == theirs
    assert b"Content-Length: 23" in ours and ours.endswith(b'{"To": "a@example.org"}')


def test_calls_keep_one_connection_and_survive_one_the_provider_closed():
    with RawServer() as server:
        session = tuned_session()
        for _ in range(3):
            assert plain_request(session, server.url + "/email").json()["MessageID"] == "m-1"
        assert [number for number, _ in server.requests] == [0, 0, 0]
    with RawServer(close_after_each=True) as server:
        session = tuned_session()
        for _ in range(3):  # each kept-alive connection is found closed and replaced, as requests does
            assert plain_request(session, server.url + "/email").status_code == 200
            assert server.closed.wait(5)
            server.closed.clear()
        assert [number for number, _ in server.requests] == [0, 1, 2]


def test_errors_keep_requests_types_so_a_send_error_reads_the_same(settings):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused_url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()
    with RawServer() as server:
        for url, kind, exception in ((refused_url + "/", TRANSIENT, requests.ConnectionError),
                                     (server.url + "/slow/", UNKNOWN, requests.ReadTimeout)):
            settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
            settings.ANYMAIL = {**settings.ANYMAIL, "POSTMARK_SERVER_TOKEN": "t", "POSTMARK_API_URL": url.rstrip("/") + "/"}
            with get_connection(timeout=0.5) as connection:
                session_tuned(connection)
                assert type(connection.session) is OneEndpointSession
                message = EmailMultiAlternatives("s", "t", "from@example.org", ["a@example.org"], connection=connection)
                with pytest.raises(AnymailRequestsAPIError) as raised:
                    message.send()
                assert isinstance(raised.value, exception) and classify_send_error(raised.value) == kind


def test_a_redirect_and_a_cookie_are_handed_to_requests():
    answers = {"/moved": (307, ["Location: /email"]), "/email": (200, ["Set-Cookie: lb=one; Path=/"])}
    with RawServer(answers) as server:
        session = tuned_session()
        response = plain_request(session, server.url + "/moved")
        assert response.status_code == 200 and [r.status_code for r in response.history] == [307]
        assert session.cookies.get("lb") == "one"
        plain_request(session, server.url + "/email")  # the session has a cookie now: requests' full path sends it
    paths_and_cookies = [(raw.split(b" ")[1], b"Cookie: lb=one" in raw) for _, raw in server.requests]
    # Ours first (the 307, not accepted), then requests' full path: the POST again and its redirect.
    assert paths_and_cookies == [(b"/moved", False), (b"/moved", False), (b"/email", False), (b"/email", True)]


def test_only_plain_anymail_sessions_are_tuned_and_their_settings_are_kept(settings):
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {**settings.ANYMAIL, "POSTMARK_SERVER_TOKEN": "t", "POSTMARK_API_URL": "http://127.0.0.1:9/"}
    with get_connection() as connection:
        before = connection.session
        session_tuned(connection)
        tuned = connection.session
        assert type(tuned) is OneEndpointSession and tuned.headers is before.headers
        assert all(type(adapter) is PoolKeyOnce for adapter in tuned.adapters.values())
    with get_connection() as connection:  # an adapter someone configured (retries) is kept as it is
        retrying = requests.adapters.HTTPAdapter(max_retries=3)
        connection.session.mount("http://", retrying)
        session_tuned(connection)
        assert connection.session.adapters["http://"] is retrying
    with get_connection() as connection:  # anymail's debug hook: every request takes requests' full path
        connection.session.hooks["response"].append(lambda response, **kwargs: response)
        session_tuned(connection)
        assert type(connection.session) is OneEndpointSession
        with RawServer() as server:
            calls = []
            connection.session.hooks["response"].append(lambda response, **kwargs: calls.append(response.status_code))
            plain_request(connection.session, server.url + "/email")
            assert calls == [200]
    smtp = get_connection("django.core.mail.backends.locmem.EmailBackend")
    session_tuned(smtp)  # not an anymail connection: untouched, no error
    assert not hasattr(smtp, "session")


def test_an_anymail_session_reads_the_proxy_environment_once(settings, monkeypatch):
    """What requests would read from the environment on every call is read when the connection
    opens, for its API URL: the same proxies (NO_PROXY honoured), then no more environment reads."""
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {**settings.ANYMAIL, "POSTMARK_SERVER_TOKEN": "t", "POSTMARK_API_URL": "http://127.0.0.1:9/"}
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.org:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example.org:3128")
    monkeypatch.setenv("NO_PROXY", "")
    with get_connection() as connection:
        expected = connection.session.merge_environment_settings(connection.api_url, {}, None, None, None)
        session_tuned(connection)
        assert connection.session.trust_env is False
        assert connection.session.proxies == expected["proxies"] and "http" in expected["proxies"]
        monkeypatch.setenv("HTTP_PROXY", "http://elsewhere.example.org:1")
        later = connection.session.merge_environment_settings(connection.api_url, {}, None, None, None)
        assert later["proxies"] == expected["proxies"]  # no longer read per request
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with get_connection() as connection:
        session_tuned(connection)
        assert connection.session.proxies == {}  # the API URL's host is exempt
    assert requests.Session().trust_env  # sessions elsewhere are untouched


@pytest.fixture
def tls_server(tmp_path):
    """An HTTPS server on 127.0.0.1 with a self-signed certificate; yields (url, path of the certificate)."""
    import datetime
    import http.server
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}", str(cert_path)
    server.shutdown()
    server.server_close()


def test_the_provider_certificate_is_still_verified(tls_server):
    """A man in the middle with a certificate no trusted authority signed is refused, as by
    requests' full path; the session's own CA bundle (REQUESTS_CA_BUNDLE, read once) is the one used."""
    url, certificate = tls_server
    with pytest.raises(requests.exceptions.SSLError):
        plain_request(tuned_session(), url + "/email")
    with pytest.raises(requests.exceptions.SSLError):
        plain_request(requests.Session(), url + "/email")
    trusting = requests.Session()
    trusting.trust_env, trusting.verify = False, certificate
    tuned = OneEndpointSession.like(trusting)
    assert plain_request(tuned, url + "/email").json() == {"ok": True}
    assert plain_request(tuned, url + "/email").json() == {"ok": True}  # the pool settings worked out once, used again
