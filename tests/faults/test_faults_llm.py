"""The LLM cleanup backend: host names that only look local are refused, user-info tricks are
refused, and a run where every request failed exits non-zero and says so."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pandas as pd
import pytest

from clip2clinic import cli
from clip2clinic.io import InputError
from clip2clinic.reports.llm import RemoteHostRefused, check_local_endpoint

pytestmark = pytest.mark.faults


@pytest.mark.parametrize("url", ["http://evil.localhost:8000/v1", "http://a.b.localhost/v1"])
def test_subdomains_of_localhost_are_checked_like_any_host(url):
    with pytest.raises(RemoteHostRefused, match="not this machine"):
        check_local_endpoint(url)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000@evil.example/v1", "http://user:pw@127.0.0.1:8000/v1",
     "http://evil.example\\@127.0.0.1/v1", "http://127.0.0.1\t.evil.example/v1"],
)
def test_userinfo_and_backslash_tricks_are_refused(url):
    with pytest.raises(InputError, match="user info"):
        check_local_endpoint(url)
    with pytest.raises(InputError, match="user info"):
        check_local_endpoint(url, allow_remote=True)


def test_run_where_every_request_failed_exits_nonzero(tmp_path: Path, caplog):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = tmp_path / "in.csv"
    pd.DataFrame({"id": ["a", "b"], "report": ["No effusion.", "Mild edema."]}).to_csv(
        source, index=False)
    output = tmp_path / "out.csv"
    argv = ["clean", str(source), "--text-column", "report", "--id-column", "id", "--output",
            str(output), "--backend", "llm", "--llm-url", f"http://127.0.0.1:{port}/v1",
            "--llm-model", "m", "--llm-timeout", "5"]
    with caplog.at_level(logging.ERROR):
        assert cli.main(argv) == 1
    assert "every one of the 2 request(s)" in caplog.text
    table = pd.read_csv(output, keep_default_na=False)  # rule-based text kept, errors named
    assert all(table["error"].str.startswith("no answer from"))
