"""Optional LLM backend for report cleanup, through any OpenAI-compatible chat endpoint.

It does what :mod:`clip2clinic.reports.cleanup` does with rules (one clinical entity per
sentence, no comparison with prior studies) with a language model served by vLLM, Ollama,
llama.cpp, TGI or anything else that answers ``POST /v1/chat/completions``.

Safety: MIMIC-CXR's data use agreement forbids sharing the reports with third parties, so the
server must be this machine (localhost, 127.0.0.0/8, ::1) unless the caller passes
``allow_remote=True`` (``--allow-remote-llm``). Private network addresses (10.x, 192.168.x,
...) are refused too: a machine on the same network may belong to someone else. The host is
checked as written, without a DNS lookup: only the name "localhost" itself is trusted (a
``*.localhost`` name is any other name, which DNS may point anywhere), and a URL with user info
(``user@host``), a backslash or a control character is refused, so what is checked is what is
contacted. Proxies from the environment are ignored (a proxy would carry the reports off the
machine even for a localhost URL) and redirects are refused.

Resumable: every finished row is appended to a JSON-lines cache keyed by a hash of the prompt
version, the model and the report, so a re-run sends only the rows not done yet. A row whose
request fails is not cached; it gets an error message and the caller's fallback text.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from clip2clinic.io import InputError

log = logging.getLogger(__name__)

#: Bump when the prompt changes, so cached answers to the old prompt are not reused.
PROMPT_VERSION = "clean-v1"
#: Environment variable read for a bearer token (most local servers need none).
API_KEY_ENV = "CLIP2CLINIC_LLM_API_KEY"

SYSTEM_PROMPT = """\
You rewrite chest X-ray reports for training an image-text model. Apply two steps.

Step 1. Split the report so that every sentence states exactly one clinical entity (one \
finding, one device, or one normal structure). Distribute shared words: "No effusion, \
pneumothorax, or consolidation." becomes "No effusion. No pneumothorax. No consolidation." \
and "Heart size and mediastinal contours are normal." becomes "Heart size is normal. \
Mediastinal contours are normal." Keep uncertainty words (may, likely, possible, cannot be \
excluded) with the entity they qualify.

Step 2. The report must describe this single image only. Remove every reference to earlier \
or later studies and to change over time: compared to, in comparison with, change, cleared, \
constant, decrease, elevate, expand, improve, increase, persistent, reduce, remove, resolve, \
stable, worse, new, interval, prior, previous, unchanged, again, since. Drop sentences that \
only compare ("No significant interval change."). Remove comparison words but keep the \
finding ("slightly increased left effusion" becomes "Left effusion."; "persistent mild \
cardiomegaly" becomes "Mild cardiomegaly."). A finding that has resolved, cleared or been \
removed is now absent: "The left effusion has resolved." becomes "No left effusion." \
Words that describe the image itself stay: "elevated left hemidiaphragm", "well-expanded \
lungs", "degenerative changes", "increased interstitial markings".

Never drop or invent a finding and never drop a negation: every "no X" or "without X" about a \
finding must remain. Do not add recommendations, history or explanations. Drop sentences that \
report communication of results or recommend follow-up.

Answer with the rewritten sentences only, one per line, each ending with a period, in the \
order of the report. If nothing remains, answer with the single word NONE."""

_EXAMPLE_REPORT = (
    "Compared to the prior study, there is no significant interval change. Persistent small "
    "left pleural effusion and left basilar atelectasis. The right pneumothorax has resolved. "
    "No focal consolidation, pulmonary edema, or new nodule."
)
_EXAMPLE_ANSWER = (
    "Small left pleural effusion.\nLeft basilar atelectasis.\nNo right pneumothorax.\n"
    "No focal consolidation.\nNo pulmonary edema.\nNo nodule."
)


class RemoteHostRefused(InputError):
    """The endpoint is not on this machine and remote use was not allowed."""


class LLMError(RuntimeError):
    """One request failed: no answer, an HTTP error, or an answer that cannot be used."""


@dataclass(frozen=True)
class LLMSettings:
    """Where and how to ask. ``url`` is the server's base ("http://127.0.0.1:8000/v1") or the
    full ``.../chat/completions`` address."""

    url: str
    model: str
    workers: int = 4
    timeout: float = 120.0
    retries: int = 1
    temperature: float = 0.0
    max_tokens: int = 1024
    allow_remote: bool = False


def chat_completions_url(url: str) -> str:
    """The ``/v1/chat/completions`` address for a base URL (also accepts the full address)."""
    parsed = urllib.parse.urlsplit(url.strip())
    path = parsed.path.rstrip("/")
    if not path.endswith("/chat/completions"):
        path = (path if path.endswith("/v1") else path + "/v1") + "/chat/completions"
    return urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, path, parsed.query, ""))


def check_local_endpoint(url: str, allow_remote: bool = False) -> None:
    """Raise :class:`RemoteHostRefused` unless ``url`` points at this machine.

    Local means the host name "localhost" or a loopback address (127.0.0.0/8, ::1,
    ::ffff:127.x). Nothing is resolved or contacted here. A URL with user info, a backslash,
    white space or a control character raises InputError, remote allowed or not.
    """
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in ("http", "https"):
        raise InputError(f"LLM URL {url!r}: expected http:// or https://")
    if "@" in parsed.netloc or _UNSAFE_URL.search(url.strip()):
        raise InputError(
            f"LLM URL {url!r}: user info (user@host), backslashes, spaces and control "
            f"characters are not allowed; give a token through {API_KEY_ENV}"
        )
    host = (parsed.hostname or "").rstrip(".").lower()
    if not host:
        raise InputError(f"LLM URL {url!r}: no host name")
    if allow_remote or _is_loopback(host):
        return
    raise RemoteHostRefused(
        f"refusing to send reports to {host!r}: it is not this machine (localhost, "
        "127.0.0.0/8 or ::1; private network addresses are not exempt). MIMIC-CXR's data use "
        "agreement forbids sharing reports with third parties. If that server is yours and "
        "covered by your agreement, pass --allow-remote-llm."
    )


_UNSAFE_URL = re.compile(r"[\\\s\x00-\x1f\x7f]")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name other than localhost: not resolved, so not trusted
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def build_messages(report: str) -> list[dict[str, str]]:
    """The chat messages for one report: instructions, one worked example, the report."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Report:\n{_EXAMPLE_REPORT}"},
        {"role": "assistant", "content": _EXAMPLE_ANSWER},
        {"role": "user", "content": f"Report:\n{report}"},
    ]


_FENCE = re.compile(r"^```\w*\s*|\s*```$")
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d{1,2}[.)])\s+")


def parse_reply(content: str) -> str:
    """The model's answer as one line of sentences ("" for NONE); raises :class:`LLMError`
    on an empty answer."""
    text = _FENCE.sub("", content.strip()).strip()
    if not text:
        raise LLMError("the model returned an empty answer")
    if text.rstrip(".").upper() == "NONE":
        return ""
    sentences = []
    for line in text.splitlines():
        line = _BULLET.sub("", line).strip()
        if line:
            sentences.append(line if line.endswith((".", "?", "!")) else line + ".")
    return " ".join(sentences)


def cache_key(model: str, report: str) -> str:
    """The cache key of a report's answer: SHA-256 of prompt version, model and report."""
    payload = json.dumps([PROMPT_VERSION, model, report], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001
        raise urllib.error.HTTPError(req.full_url, code, f"redirect to {newurl} refused",
                                     headers, fp)


class LLMCleaner:
    """Cleans reports through an OpenAI-compatible endpoint, with a resumable cache.

    After :meth:`clean_many`, ``sent`` and ``failed`` count its distinct requests.
    """

    def __init__(self, settings: LLMSettings, cache_path: str | os.PathLike | None = None):
        check_local_endpoint(settings.url, settings.allow_remote)
        if settings.workers < 1:
            raise InputError("--llm-workers must be at least 1")
        self.settings = settings
        self.endpoint = chat_completions_url(settings.url)
        self.cache_path = Path(cache_path) if cache_path else None
        self.cache = _load_cache(self.cache_path) if self.cache_path else {}
        # No proxies (they would carry reports off this machine) and no redirects.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)
        self.sent = self.failed = 0

    def clean_one(self, report: str) -> str:
        """The cleaned report, asking the server (raises :class:`LLMError` on failure)."""
        body = json.dumps({
            "model": self.settings.model,
            "messages": build_messages(report),
            "temperature": self.settings.temperature,
            "max_tokens": self.settings.max_tokens,
            "stream": False,
        }).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if os.environ.get(API_KEY_ENV):
            headers["Authorization"] = f"Bearer {os.environ[API_KEY_ENV]}"
        last_error = LLMError("no attempt made")
        for _ in range(self.settings.retries + 1):
            request = urllib.request.Request(self.endpoint, body, headers, method="POST")
            try:
                with self._opener.open(request, timeout=self.settings.timeout) as response:
                    payload = json.loads(response.read().decode("utf-8"))
                return parse_reply(payload["choices"][0]["message"]["content"] or "")
            except urllib.error.HTTPError as exc:
                detail = exc.read(300).decode("utf-8", "replace") if exc.fp else ""
                last_error = LLMError(f"HTTP {exc.code} from {self.endpoint}: {detail}".strip())
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last_error = LLMError(f"no answer from {self.endpoint}: {exc}")
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                last_error = LLMError(f"unusable answer from {self.endpoint}: {exc!r}")
        raise last_error

    def clean_many(
        self,
        reports: Sequence[str],
        fallbacks: Sequence[str],
        progress: Callable[[int], object] | None = None,
    ) -> tuple[list[str], list[str]]:
        """Clean ``reports`` concurrently; returns (cleaned, errors), one entry per report.

        Cached rows are not sent again; identical reports are sent once. A failed row gets
        its ``fallbacks`` entry and an error message; nothing else stops the batch.
        ``progress`` is called with the number of rows finished since the last call.
        """
        keys = [cache_key(self.settings.model, r) if r.strip() else "" for r in reports]
        pending = {k: r for k, r in zip(keys, reports, strict=True) if k and k not in self.cache}
        failures: dict[str, str] = {}
        done_rows = len(reports) - sum(1 for k in keys if k in pending)
        if progress and done_rows:
            progress(done_rows)
        rows_per_key: dict[str, int] = {}
        for key in keys:
            if key in pending:
                rows_per_key[key] = rows_per_key.get(key, 0) + 1
        if pending:
            log.info("asking %s (%s) about %d report(s); %d row(s) already done",
                     self.endpoint, self.settings.model, len(pending), done_rows)
        pool = ThreadPoolExecutor(max_workers=self.settings.workers)
        try:
            futures = {pool.submit(self.clean_one, report): key for key, report in pending.items()}
            for future in as_completed(futures):
                key = futures[future]
                try:
                    self._remember(key, future.result())
                except LLMError as exc:
                    failures[key] = str(exc)
                if progress:
                    progress(rows_per_key[key])
        finally:  # on Ctrl-C, send nothing more; what finished is in the cache
            pool.shutdown(wait=True, cancel_futures=True)
        self.sent, self.failed = len(pending), len(failures)
        if failures:
            log.warning("%d report(s) failed; they keep the rule-based text (see the error "
                        "column)", len(failures))
        cleaned, errors = [], []
        for key, fallback in zip(keys, fallbacks, strict=True):
            if not key:
                cleaned.append("")
                errors.append("")
            elif key in failures:
                cleaned.append(fallback)
                errors.append(failures[key])
            else:
                cleaned.append(self.cache[key])
                errors.append("")
        return cleaned, errors

    def _remember(self, key: str, cleaned: str) -> None:
        self.cache[key] = cleaned
        if self.cache_path:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            with self.cache_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"key": key, "cleaned": cleaned}, ensure_ascii=False))
                handle.write("\n")


def _load_cache(path: Path) -> dict[str, str]:
    """The finished rows of an earlier run; a torn last line (an interrupted run) is skipped."""
    cache: dict[str, str] = {}
    if not path.is_file():
        return cache
    skipped = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
            cache[str(row["key"])] = str(row["cleaned"])
        except (ValueError, KeyError, TypeError):
            skipped += 1
    if skipped:
        log.warning("%s: skipped %d unreadable line(s)", path, skipped)
    log.info("%s: %d finished row(s) from an earlier run", path, len(cache))
    return cache
