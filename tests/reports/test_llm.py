import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from clip2clinic import cli
from clip2clinic.reports.llm import (
    LLMCleaner,
    LLMError,
    LLMSettings,
    RemoteHostRefused,
    cache_key,
    chat_completions_url,
    check_local_endpoint,
    parse_reply,
)


class FakeChatServer(ThreadingHTTPServer):
    """An OpenAI-compatible server on 127.0.0.1 with canned answers.

    A report containing FAIL gets HTTP 500, GARBLE gets a body that is not JSON; any other
    report gets its sentences back upper-cased, as a bulleted list.
    """

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ChatHandler)
        self.requests: Counter[str] = Counter()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _ChatHandler(BaseHTTPRequestHandler):
    server: FakeChatServer

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        report = body["messages"][-1]["content"].removeprefix("Report:\n")
        with self.server.lock:
            self.server.requests[report] += 1
        if self.path != "/v1/chat/completions" or body["model"] != "fake-model":
            return self._send(404, b'{"error": "not found"}')
        if "FAIL" in report:
            return self._send(500, b'{"error": "model crashed"}')
        if "GARBLE" in report:
            return self._send(200, b"<html>not json</html>")
        answer = "\n".join(f"- {s.strip().upper()}" for s in report.split(".") if s.strip())
        reply = {"choices": [{"message": {"role": "assistant", "content": answer}}]}
        return self._send(200, json.dumps(reply).encode())

    def _send(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[FakeChatServer]:
    fake = FakeChatServer()
    thread = threading.Thread(target=fake.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.shutdown()
    fake.server_close()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection or resolve a name fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a network call was attempted: {args}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


# ---------------------------------------------------------------------------------------------
# Refusing remote hosts
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://localhost:8000/v1", "http://127.0.0.1:11434", "http://127.3.4.5/v1",
     "http://[::1]:8000/v1", "https://LOCALHOST./v1", "http://[::ffff:127.0.0.1]:80"],
)
def test_local_hosts_are_accepted(url: str, no_network: None) -> None:
    check_local_endpoint(url)


@pytest.mark.parametrize(
    "url",
    ["https://api.openai.com/v1", "http://10.0.0.5:8000/v1", "http://192.168.1.20/v1",
     "http://172.16.0.1/v1", "http://0.0.0.0:8000/v1", "http://my-gpu-box:8000/v1",
     "http://[fd00::1]/v1", "http://localhost.evil.example/v1"],
)
def test_remote_hosts_are_refused_without_connecting(url: str, no_network: None) -> None:
    with pytest.raises(RemoteHostRefused, match="data use agreement.*--allow-remote-llm"):
        check_local_endpoint(url)
    with pytest.raises(RemoteHostRefused):
        LLMCleaner(LLMSettings(url=url, model="m"))
    check_local_endpoint(url, allow_remote=True)  # the user's explicit choice


def test_cli_refuses_remote_host_before_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_network: None,
) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id,report\na,No effusion.\n")
    code = cli.main(["clean", str(source), "--text-column", "report", "--id-column", "id",
                     "--output", str(tmp_path / "out.csv"), "--backend", "llm",
                     "--llm-url", "https://api.example.com/v1", "--llm-model", "m"])
    assert code == 2
    assert "refusing to send reports to 'api.example.com'" in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/v1", "127.0.0.1:8000", "http:///v1"])
def test_malformed_urls(url: str) -> None:
    with pytest.raises(ValueError, match="LLM URL"):
        check_local_endpoint(url)


def test_chat_completions_url() -> None:
    assert chat_completions_url("http://127.0.0.1:8000") == (
        "http://127.0.0.1:8000/v1/chat/completions")
    assert chat_completions_url("http://127.0.0.1:8000/v1/") == (
        "http://127.0.0.1:8000/v1/chat/completions")
    assert chat_completions_url("http://localhost/v1/chat/completions") == (
        "http://localhost/v1/chat/completions")


# ---------------------------------------------------------------------------------------------
# Answers
# ---------------------------------------------------------------------------------------------


def test_parse_reply() -> None:
    assert parse_reply("No effusion.\n- Mild cardiomegaly\n2. No pneumothorax.") == (
        "No effusion. Mild cardiomegaly. No pneumothorax.")
    assert parse_reply("```\nNo effusion.\n```") == "No effusion."
    assert parse_reply("NONE") == ""
    with pytest.raises(LLMError, match="empty"):
        parse_reply("  ")


def test_cache_key_depends_on_model_and_report() -> None:
    assert cache_key("a", "No effusion.") == cache_key("a", "No effusion.")
    assert cache_key("a", "No effusion.") != cache_key("b", "No effusion.")
    assert cache_key("a", "No effusion.") != cache_key("a", "No effusion")


def test_batch_with_failures_and_resume(server: FakeChatServer, tmp_path: Path) -> None:
    reports = [f"Finding {i}. No effusion." for i in range(12)]
    reports += ["FAIL here.", "GARBLE here.", "", "Finding 3. No effusion."]
    fallbacks = [f"rules {i}" for i in range(len(reports))]
    cache = tmp_path / "cache.jsonl"
    settings = LLMSettings(url=server.url, model="fake-model", workers=4, retries=1)
    seen: list[int] = []
    cleaned, errors = LLMCleaner(settings, cache).clean_many(reports, fallbacks, seen.append)

    assert cleaned[:12] == [f"FINDING {i}. NO EFFUSION." for i in range(12)]
    assert cleaned[12:] == ["rules 12", "rules 13", "", "FINDING 3. NO EFFUSION."]
    assert errors[12].startswith("HTTP 500") and "model crashed" in errors[12]
    assert errors[13].startswith("unusable answer")
    assert errors[:12] == [""] * 12 and errors[14:] == ["", ""]
    assert sum(seen) == len(reports)
    # The duplicate report was asked once; failures were retried once; empty never sent.
    assert server.requests["Finding 3. No effusion."] == 1
    assert server.requests["FAIL here."] == 2
    assert "" not in server.requests
    assert len(cache.read_text().splitlines()) == 12

    # A re-run sends only the rows that failed.
    server.requests.clear()
    again, again_errors = LLMCleaner(settings, cache).clean_many(reports, fallbacks)
    assert again == cleaned and again_errors[12] and again_errors[13]
    assert set(server.requests) == {"FAIL here.", "GARBLE here."}


def test_torn_cache_line_is_skipped(server: FakeChatServer, tmp_path: Path) -> None:
    settings = LLMSettings(url=server.url, model="fake-model")
    cache = tmp_path / "cache.jsonl"
    done = json.dumps({"key": cache_key("fake-model", "Done."), "cleaned": "CACHED."})
    cache.write_text(done + "\n" + '{"key": "abc", "clea')  # an interrupted write
    cleaned, errors = LLMCleaner(settings, cache).clean_many(["Done.", "Todo."], ["", ""])
    assert cleaned == ["CACHED.", "TODO."] and errors == ["", ""]
    assert list(server.requests) == ["Todo."]


def test_environment_proxy_is_not_used(
    server: FakeChatServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A proxy would carry the reports off the machine; this one does not even exist.
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://192.0.2.1:9")
    monkeypatch.setenv("no_proxy", "")
    cleaner = LLMCleaner(LLMSettings(url=server.url, model="fake-model", timeout=5))
    assert cleaner.clean_one("No effusion.") == "NO EFFUSION."


def test_unreachable_server_is_an_error_per_row(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = LLMSettings(url=f"http://127.0.0.1:{port}/v1", model="m", retries=0, timeout=5)
    cleaned, errors = LLMCleaner(settings).clean_many(["No effusion."], ["No effusion."])
    assert cleaned == ["No effusion."]
    assert errors[0].startswith("no answer from")


def test_cli_llm_backend(server: FakeChatServer, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    pd.DataFrame({"id": ["a", "b", "c"],
                  "report": ["IMPRESSION: Stable mild cardiomegaly.", "FAIL. Persistent effusion.",
                             ""]}).to_csv(source, index=False)
    output = tmp_path / "out.csv"
    argv = ["clean", str(source), "--text-column", "report", "--id-column", "id", "--output",
            str(output), "--backend", "llm", "--llm-url", server.url, "--llm-model", "fake-model"]
    assert cli.main(argv) == 0
    table = pd.read_csv(output, keep_default_na=False)
    assert table["cleaned"].tolist() == ["STABLE MILD CARDIOMEGALY.", "FAIL. Effusion.", ""]
    assert table["error"].tolist()[0] == "" and table["error"].tolist()[1].startswith("HTTP 500")
    assert Path(f"{output}.llm-cache.jsonl").is_file()
