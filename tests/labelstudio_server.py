"""A real Label Studio server for the tests: installed once into its own virtual environment
(it pins its own Django stack), started on 127.0.0.1 with a fresh data folder, stopped after."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

VERSION = "1.23.2"
# sentry-sdk 3.0 dropped an option that Label Studio 1.23 passes it, and the server then exits at start.
REQUIREMENTS = (f"label-studio=={VERSION}", "sentry-sdk<3")
VENV = Path(os.environ.get("LABEL_STUDIO_VENV", Path.home() / ".cache" / "war-news-tagger" / f"label-studio-{VERSION}"))
ADMIN = ("admin@example.com", "admin-password-1")
SECOND = ("annotator2@example.com", "annotator-password-2")


class Unavailable(RuntimeError):
    pass


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def token_for(self, email: str, password: str, invite_url: str | None = None) -> str:
        """Sign in through the web forms (signing up first when given an invite link) and create
        the user's personal access token, as a person does in Account & Settings."""
        session = requests.Session()
        form = self.url + (invite_url or "/user/login/")
        session.get(form, timeout=30)
        session.post(form, data={"email": email, "password": password,
                                 "csrfmiddlewaretoken": session.cookies.get("csrftoken")},
                     headers={"Referer": form}, timeout=30).raise_for_status()
        answer = session.post(self.url + "/api/token/", timeout=30, headers={
            "X-CSRFToken": session.cookies.get("csrftoken"), "Referer": self.url})
        answer.raise_for_status()
        return answer.json()["token"]


def install() -> Path:
    executable = VENV / "bin" / "label-studio"
    marker = VENV / ".installed"
    if marker.is_file() and marker.read_text() == " ".join(REQUIREMENTS):
        return executable
    shutil.rmtree(VENV, ignore_errors=True)
    VENV.parent.mkdir(parents=True, exist_ok=True)
    log = VENV.parent / "install.log"
    with log.open("w") as out:
        steps = ([sys.executable, "-m", "venv", str(VENV)],
                 [str(VENV / "bin" / "pip"), "install", *REQUIREMENTS])
        for step in steps:
            if subprocess.run(step, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                raise Unavailable(f"could not install label-studio=={VERSION}; see {log}")
    marker.write_text(" ".join(REQUIREMENTS))
    return executable


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(data_dir: Path, timeout: float = 240) -> Server:
    executable, port = install(), free_port()
    log = data_dir / "server.log"
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir), "LABEL_STUDIO_USERNAME": ADMIN[0],
           "LABEL_STUDIO_PASSWORD": ADMIN[1], "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
           # The ML backend under test runs on this machine: Label Studio refuses to call a
           # loopback address, and to send it webhooks, unless told otherwise (docs/label-studio.md).
           "ML_BLOCK_LOCAL_IP": "false", "SSRF_PROTECTION_ENABLED": "false"}
    process = subprocess.Popen(
        [str(executable), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
         "--data-dir", str(data_dir)], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Unavailable(f"Label Studio exited with {process.returncode}; see {log}")
        try:
            if requests.get(server.url + "/health", timeout=2).ok:
                return server
        except requests.ConnectionError:
            pass
        time.sleep(1)
    stop(server)
    raise Unavailable(f"Label Studio did not answer within {timeout:.0f} s; see {log}")


def stop(server: Server) -> None:
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
