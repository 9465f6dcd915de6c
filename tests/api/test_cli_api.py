"""`python -m automations api`: refuses to start without a token, serves with one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOMATIONS_")}
    env.update(PYTHONPATH=str(REPO), AUTOMATIONS_DATABASE_URL=f"sqlite:///{tmp_path}/api.db", **extra)
    return env


def automations(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "automations", *args],
        cwd=tmp_path,
        env=environment(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_refuses_to_start_without_a_token_or_a_schema(tmp_path: Path) -> None:
    refused = automations(tmp_path, "api", "--port", str(free_port()))
    assert refused.returncode == 2
    assert "AUTOMATIONS_API_TOKEN is not set" in refused.stderr
    blank = automations(tmp_path, "api", AUTOMATIONS_API_TOKEN="  ")
    assert blank.returncode == 2
    unmigrated = automations(tmp_path, "api", AUTOMATIONS_API_TOKEN="tok")
    assert unmigrated.returncode == 2
    assert "python -m automations setup" in unmigrated.stderr


@pytest.mark.slow
def test_serves_the_api_on_loopback(tmp_path: Path) -> None:
    assert automations(tmp_path, "setup").returncode == 0
    port = free_port()
    token = "cli-secret-token"
    process = subprocess.Popen(
        [sys.executable, "-m", "automations", "api", "--port", str(port)],
        cwd=tmp_path,
        env=environment(tmp_path, AUTOMATIONS_API_TOKEN=token),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"{base}/api/automation/templates/", headers={"Authorization": f"Bearer {token}"})
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "the API did not start"
                time.sleep(0.2)
        assert response.status_code == 200
        assert response.json()["total"] == 6
        assert httpx.get(f"{base}/api/automation/templates/").status_code == 401
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "Automations API"
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    # uvicorn shuts down cleanly, then re-raises SIGTERM (exit status -15).
    assert process.returncode in (0, -15)
    assert "Finished server process" in output
    assert f"http://127.0.0.1:{port}" in output
    assert token not in output
