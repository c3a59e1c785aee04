"""`rtvault serve` as a user runs it: a real uvicorn server on a free loopback port, stopped by the test."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

from kit.files import free_port


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_serve_prints_its_url_and_answers(site) -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "rtvault", "--config", str(site.config.file), "serve",
                               "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == f"rtvault web interface on http://127.0.0.1:{port}/ (Ctrl-C to stop)"
        deadline = time.monotonic() + 20
        while True:
            try:
                status, page = _get(f"http://127.0.0.1:{port}/login")
                break
            except (ConnectionError, urllib.error.URLError):
                assert time.monotonic() < deadline, "the server never answered"
                time.sleep(0.1)
        assert status == 200 and 'id="login-form"' in page
        assert _get(f"http://127.0.0.1:{port}/api/search?last_name=faure")[0] == 401
    finally:
        server.terminate()
        server.wait(timeout=20)
