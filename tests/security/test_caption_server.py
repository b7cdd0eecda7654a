"""Caption providers that misbehave, as an attacker or a careless provider
would: a real chat-completions server on 127.0.0.1 that answers garbage,
floods, trickles, fails or redirects, in a render too, where caption programs
that flood, print garbage or die join it. In every case the variant keeps the
template's caption, the manifest says why, and no secret or URL credential is
ever shown. (Caption programs and plug-ins alone: test_caption_plugins.py.)"""

from __future__ import annotations

import base64
import http.server
import json
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable

import pytest
from captionfaults import BRAND, PRESET, request, template_used

from pipeline.captions.draft import caption_for
from pipeline.captions.model import CaptionError, CaptionResult
from pipeline.captions.openai import openai
from pipeline.schema import CaptionOptions

MB = 1024 * 1024
GOOD = {"text": "Launch day at Café Lumière.", "hashtags": ["#launch"], "title": None}

Reply = Callable[[http.server.BaseHTTPRequestHandler], None]


class Server:
    """A chat-completions endpoint that answers each POST with the next scripted
    reply (the last one repeats), and records what it was sent."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.seen: list[dict[str, str]] = []
        self.stop = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server interface
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.seen.append({"path": self.path,
                                   "auth": self.headers.get("Authorization") or ""})
                reply = outer.replies.pop(0) if len(outer.replies) > 1 else outer.replies[0]
                try:
                    reply(self)
                except OSError:
                    pass                    # the client gave up on us: as it should

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()

    def caption(self, **options: object) -> CaptionResult:
        settings = {"base_url": self.url, "model": "m", "api_key": "sk-test-key", "timeout": 5,
                    "retries": 0, **options}
        return caption_for(request(), PRESET, BRAND,
                           CaptionOptions(provider="openai", options=settings))


@pytest.fixture
def serve():
    servers: list[Server] = []

    def start(*replies: Reply) -> Server:
        servers.append(Server(*replies))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def answer(status: int, body: bytes, length: bool = True, **headers: str) -> Reply:
    def reply(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        for name, value in headers.items():
            handler.send_header(name.replace("_", "-"), value)
        if length:
            handler.send_header("Content-Length", str(len(body)))
        else:
            handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(body)
    return reply


def chat(content: object) -> Reply:
    text = content if isinstance(content, str) else json.dumps(content)
    return answer(200, json.dumps({"choices": [{"message": {"content": text}}]}).encode())


# ---------------------------------------------------------------- the openai provider


def test_a_good_server_is_used(serve):
    server = serve(chat(GOOD))
    result = server.caption()
    assert result.provider == "openai" and result.text.startswith("Launch day at Café Lumière.")
    assert server.seen[0]["path"] == "/v1/chat/completions"


@pytest.mark.parametrize("reply,why", [
    (answer(200, b"<html>502 Bad Gateway</html>"), "is not JSON"),
    (answer(200, b"\xff\xfe\x00garbage"), "is not UTF-8 text"),
    (answer(200, b"[" * 100_000 + b"]" * 100_000), "is not JSON"),       # nested too deep
    (answer(200, b'{"choices": "none"}'), "not a chat completion"),
    (chat("the caption is: Launch day!"), "the model's answer is not JSON"),
    (chat({"text": 42}), "\"text\" is a number"),
    (chat({"text": "ok", "hashtags": "#one #two"}), "\"hashtags\" is a string"),
    (chat({"text": "ok", "hashtags": [1, 2]}), "\"hashtags\" is a number"),
    (chat({"hashtags": ["#a"]}), "has no \"text\""),
    (chat({"text": "bell\u0007 and NUL\u0000"}), "control character U+0007"),
    (chat('{"text": "half a pair \\ud800"}'), "a lone surrogate"),
    (chat({"text": "x" * 200_000}), "\"text\" is 200,000 characters long"),
])
def test_an_unusable_200_answer_falls_back_to_the_template(serve, reply, why):
    result = serve(reply).caption()
    template_used(result, why)


def test_a_10_mb_body_is_refused_whether_announced_or_not(serve):
    flood = b'{"choices": [{"message": {"content": "' + b"x" * (10 * MB) + b'"}}]}'
    announced = serve(answer(200, flood)).caption()
    template_used(announced, "answered more than 256 KB")
    streamed = serve(answer(200, flood, length=False)).caption()
    template_used(streamed, "answered more than 256 KB")


def trickle(server_stop: Callable[[], bool], headers_too: bool = False) -> Reply:
    """A byte every 50 ms: each read succeeds, so only a deadline for the whole
    call can end it."""
    def reply(handler: http.server.BaseHTTPRequestHandler) -> None:
        out = handler.wfile
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        out.write(head if not headers_too else b"HTTP/1.1 200 OK\r\n")
        if not headers_too:
            out.write(b"Content-Length: 1000\r\n\r\n")     # under the cap: only time ends it
        while not server_stop():
            out.write(b" " if not headers_too else b"X")
            out.flush()
            time.sleep(0.05)
    return reply


@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "headers"])
def test_a_trickling_server_is_stopped_by_the_calls_deadline(serve, headers_too):
    server = serve(answer(200, b""))
    server.replies = [trickle(server.stop.is_set, headers_too)]
    result = server.caption(timeout=1, retries=3)
    template_used(result, "did not answer within 1 s")
    assert len(server.seen) == 1            # the deadline covers retries too


def test_a_silent_tls_server_is_stopped_by_the_calls_deadline():
    """The handshake is inside the deadline too: a server that takes the
    connection and never answers the TLS hello."""
    listener = socket.create_server(("127.0.0.1", 0))
    taken: list[socket.socket] = []
    threading.Thread(target=lambda: taken.append(listener.accept()[0]), daemon=True).start()
    try:
        result = caption_for(request(), PRESET, BRAND, CaptionOptions(
            provider="openai", options={"base_url": f"https://127.0.0.1:"
                                        f"{listener.getsockname()[1]}/v1", "model": "m",
                                        "timeout": 1, "retries": 2}))
    finally:
        for conn in taken:
            conn.close()
        listener.close()
    template_used(result, "did not answer within 1 s")


def test_http_500_then_success_is_retried(serve):
    server = serve(answer(500, b"oops", Retry_After="0"), chat(GOOD))
    result = server.caption(retries=1)
    assert result.provider == "openai" and len(server.seen) == 2
    failing = serve(answer(500, b"oops", Retry_After="0"))
    template_used(failing.caption(retries=1), "answered HTTP 500")
    assert len(failing.seen) == 2


def test_a_redirect_is_not_followed_with_the_key(serve):
    elsewhere = serve(chat(GOOD))
    server = serve(answer(307, b"", Location=elsewhere.url + "/chat/completions"))
    template_used(server.caption(), "answered HTTP 307")
    assert elsewhere.seen == []


def test_a_provider_with_no_server_falls_back(serve):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]       # closed again: nothing listens there
    result = caption_for(request(), PRESET, BRAND, CaptionOptions(provider="openai", options={
        "base_url": f"http://127.0.0.1:{port}/v1", "model": "m", "timeout": 5, "retries": 0}))
    template_used(result, "could not be reached")


# ---------------------------------------------------------------- secrets


KEY, ENV_KEY, PASSWORD, QUERY_KEY = ("sk-option-key-1234", "sk-env-key-5678",
                                     "hunter2-password", "query-key-9012")
SECRETS = (KEY, ENV_KEY, PASSWORD, QUERY_KEY)


def shows_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, (secret, text)


def exception_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + repr(exc.args)


@pytest.mark.parametrize("reply,why", [
    (answer(500, b"oops"), "answered HTTP 500"),
    (answer(200, b"not json"), "is not JSON"),
    (answer(302, b"", Location="http://127.0.0.1:9/elsewhere"), "answered HTTP 302"),
    (chat({"text": f"Our key is {ENV_KEY}, enjoy"}), "holds a secret"),
    (chat({"text": "Launch", "hashtags": ["#" + ENV_KEY.replace("-", "")]}), "holds a secret"),
    (chat({"text": "Launch " + "\u200b".join(ENV_KEY)}), "holds a secret"),
    (chat({"text": "Launch " + base64.b64encode(ENV_KEY.encode()).decode()}),
     "holds a secret"),
    (chat({"text": "See http://h:99999/x?token=abc and more."}), None),
])
def test_secrets_and_url_credentials_are_never_shown(serve, monkeypatch, reply, why):
    monkeypatch.setenv("CAPTION_KEY", ENV_KEY)
    server = serve(reply)
    base = f"http://alice:{PASSWORD}@127.0.0.1:{server.port}/v1?key={QUERY_KEY}"
    options = {"base_url": base, "model": "m", "api_key_env": "CAPTION_KEY", "timeout": 5,
               "retries": 0}
    result = caption_for(request(), PRESET, BRAND, CaptionOptions(provider="openai",
                                                                  options=options))
    shows_no_secret(json.dumps(result.to_dict(), ensure_ascii=False))
    if why:
        template_used(result, why)
    if why and why != "holds a secret":         # the provider's own error, shown redacted
        assert any(f"http://127.0.0.1:{server.port}/v1" in f for f in result.findings)
        with pytest.raises(CaptionError) as caught:
            openai(request(), options)
        shows_no_secret(exception_text(caught.value))
    # The key went where it belongs, and the query stayed in the URL called.
    assert server.seen[0]["auth"] == f"Bearer {ENV_KEY}"
    assert server.seen[0]["path"] == f"/v1/chat/completions?key={QUERY_KEY}"


def test_a_key_in_the_options_and_basic_auth_from_the_url(serve, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server = serve(answer(500, b"oops"))
    failed = server.caption(api_key=KEY, base_url=f"http://alice:{PASSWORD}@127.0.0.1:"
                                                  f"{server.port}/v1")
    shows_no_secret(json.dumps(failed.to_dict()))
    assert server.seen[0]["auth"] == f"Bearer {KEY}"
    server.caption(api_key=None, base_url=f"http://alice:{PASSWORD}@127.0.0.1:{server.port}/v1")
    assert server.seen[1]["auth"].startswith("Basic ")       # no key: the URL's user


@pytest.mark.parametrize("options,why", [
    ({"api_key": f"{KEY}\r\nX-Injected: 1"}, "characters an HTTP header cannot carry"),
    ({"base_url": f"http://alice:{PASSWORD}@127.0.0.1:99999/v1?key={QUERY_KEY}"},
     "is not a URL"),
    ({"base_url": f"file:///etc/passwd?key={QUERY_KEY}"}, "must be an http or https URL"),
    ({"timeout": "soon"}, "timeout must be a positive number"),
])
def test_bad_settings_fail_without_echoing_secrets(options, why):
    settings = {"model": "m", "base_url": "http://127.0.0.1:9/v1", **options}
    result = caption_for(request(), PRESET, BRAND, CaptionOptions(provider="openai",
                                                                  options=settings))
    template_used(result, why)
    shows_no_secret(json.dumps(result.to_dict()))
    with pytest.raises(CaptionError) as caught:
        openai(request(), settings)
    shows_no_secret(exception_text(caught.value))


# ---------------------------------------------------------------- end to end


@pytest.mark.slow
@pytest.mark.parametrize("case", ["non-json", "flood", "trickle", "program-flood",
                                  "program-garbage", "program-exit"])
def test_the_variant_is_written_with_the_template_caption(tmp_path, astronaut, serve, case):
    from pipeline.runner import run

    server = serve(answer(200, b"not json"))
    if case == "flood":
        server.replies = [answer(200, b"x" * (10 * MB), length=False)]
    if case == "trickle":
        server.replies = [trickle(server.stop.is_set)]
    scripts = {"program-flood": "import sys\nsys.stdout.write('x' * (10 * 1024 * 1024))\n",
               "program-garbage": "print('<<garbage>>')\n",
               "program-exit": "import sys\nsys.stderr.write('no quota\\n')\nsys.exit(2)\n"}
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    astronaut.resize((640, 640)).save(shoot / "a.jpg", quality=85)
    if case in scripts:
        (tmp_path / "writer.py").write_text(scripts[case])
        captions = {"provider": "command", "options": {
            "argv": [sys.executable, str(tmp_path / "writer.py")], "timeout": 5}}
    else:
        captions = {"provider": "openai", "options": {
            "base_url": f"http://u:{PASSWORD}@127.0.0.1:{server.port}/v1?key={QUERY_KEY}",
            "model": "m", "api_key": KEY, "timeout": 1, "retries": 1}}
    (shoot / "shoot.yaml").write_text(json.dumps({
        "brief": {"title": "Launch day", "description": "Doors open at 9."},
        "captions": captions}))
    out = tmp_path / "out"
    report = run([shoot / "a.jpg"], out, (), ["instagram-feed-square"], jobs=1)
    assert not report.errors
    manifest = (out / "manifest.json").read_text()
    shows_no_secret(manifest)
    (variant,) = json.loads(manifest)["variants"]
    caption = variant["caption"]
    assert caption["provider"] == "template"
    assert any("failed, the template's caption is used" in f for f in caption["findings"])
    written = (out / "instagram-feed-square" / "a.caption.txt").read_text()
    assert written == caption["text"] + "\n" and written.startswith("Launch day.")
