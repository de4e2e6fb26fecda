"""A real HAProxy (Debian's package; ``.ci/run`` installs it) in front of collectors."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

CONFIG = """\
global
    maxconn 512
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch
    retry-on conn-failure empty-response
frontend hooks
    bind 127.0.0.1:{port}
    default_backend collectors
backend collectors
    balance roundrobin
    option httpchk GET /healthz
{servers}
"""


@dataclass
class HAProxy:
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_haproxy(directory: Path, port: int, backends: list[int]) -> HAProxy:
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    servers = "\n".join(
        f"    server c{i} 127.0.0.1:{p} check inter 200ms fall 1 rise 1"
        for i, p in enumerate(backends)
    )
    config = directory / f"haproxy-{port}.cfg"
    config.write_text(CONFIG.format(port=port, servers=servers))
    with open(directory / f"haproxy-{port}.log", "wb") as log:
        proc = subprocess.Popen(
            [binary, "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
    proxy = HAProxy(proc, port)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{proxy.url}/healthz", timeout=1).status_code == 200:
                return proxy
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proxy.stop()
    raise RuntimeError(f"haproxy did not start:\n{(directory / f'haproxy-{port}.log').read_text()}")
