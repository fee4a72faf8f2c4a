"""The launcher (moto_server.py) on a free port for a test class, and boto3 clients of it.

Shared by the tests that call the emulator as the functions do (test_sqs_strict.py,
test_dynamodb_strict.py); not a test module itself.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import unittest
from pathlib import Path
from typing import Any

try:
    import boto3
    from botocore.config import Config
except ImportError:  # outside the project's .venv
    boto3 = None

LAUNCHER = Path(__file__).resolve().parent / "moto_server.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LauncherCase(unittest.TestCase):
    """Starts the launcher once for the class (a few seconds) and stops it after."""

    server: subprocess.Popen[bytes]
    endpoint: str

    @classmethod
    def setUpClass(cls) -> None:
        port = free_port()
        cls.endpoint = f"http://127.0.0.1:{port}"
        cls.server = subprocess.Popen(
            [sys.executable, str(LAUNCHER), "--port", str(port), "--until-stdin-closes"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        listening = threading.Event()
        log: list[bytes] = []

        def read_stderr() -> None:
            assert cls.server.stderr is not None
            for line in cls.server.stderr:
                log.append(line)
                if b"listening on" in line:
                    listening.set()

        threading.Thread(target=read_stderr, daemon=True).start()
        if not listening.wait(60):
            cls.stop_server()
            raise RuntimeError("moto_server.py did not start:\n" + b"".join(log).decode(errors="replace"))

    @classmethod
    def client(cls, service: str, region_name: str) -> Any:
        """A boto3 client of the launcher that does not retry (a refusal is seen as such)."""
        return boto3.client(
            service,
            endpoint_url=cls.endpoint,
            region_name=region_name,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1}),
        )

    @classmethod
    def stop_server(cls) -> None:
        assert cls.server.stdin is not None
        cls.server.stdin.close()  # --until-stdin-closes
        try:
            cls.server.wait(10)
        except subprocess.TimeoutExpired:
            cls.server.kill()
            cls.server.wait(10)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.stop_server()
