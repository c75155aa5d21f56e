"""Starting the real `madoguchi serve` for the browser tests and the page benchmark.

The binary runs in the development profile (so the `dev` card signs residents in) on a free
loopback port, against a PostgreSQL database created for the run and dropped afterwards, sends
its mail to the SMTP server the Rust suite uses (tests/fixtures/smtp/server.py), and signs
card-sign applications with the dev signer and the test PKI (tests/fixtures/pki). With
`payments=True` it also starts the fake SB Payment Service (tests/fixtures/sbps/server.py,
standard library only) and pays fees through it. Every wait is bounded, and everything started is
stopped again, also when a start fails half-way.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PG_SERVER = os.environ.get("BROWSER_TESTS_PG", "postgres://postgres@127.0.0.1:5432")
START_SECONDS = 90  # a cold debug binary migrates a fresh database first


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", f"{PG_SERVER}/postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql],
        check=True,
        timeout=60,
        stdout=subprocess.DEVNULL,
    )


def read_line(stream, seconds: float) -> str:
    """One line from a child's stdout, or "" after `seconds` (a silent child never hangs us)."""
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(seconds)
    return line[0] if line else ""


@dataclass
class Mailbox:
    """The SMTP fixture: every accepted message as `<n>.json` in `directory`."""

    directory: Path
    port: int

    def messages(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self.directory.glob("*.json"))]


@contextlib.contextmanager
def _fixture_process(script: str, env: dict[str, str], what: str):
    """A fixture process that prints "READY <port>" once listening and exits when its stdin
    closes (so a test that dies leaves nothing running); yields the port."""
    process = subprocess.Popen(
        [sys.executable, str(ROOT / script)],
        env={**os.environ, **env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ready = read_line(process.stdout, 20)
        if not ready.startswith("READY "):
            raise RuntimeError(f"{what} ({script}) did not start")
        yield int(ready.split()[1])
    finally:
        # The fixture exits when its stdin closes.
        with contextlib.suppress(Exception):
            process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextlib.contextmanager
def smtp_server(directory: Path):
    what = "the SMTP fixture (is aiosmtpd installed? see tests/browser/run.sh)"
    env = {"MAILDIR": str(directory)}
    with _fixture_process("tests/fixtures/smtp/server.py", env, what) as port:
        yield Mailbox(directory, port)


# The fake provider's merchant, as the Rust suite's (tests/api/payments.rs).
MERCHANT_ID, SERVICE_ID = "30132", "103"
HASH_KEY = "c48e0e4d5f0a8b2e9c1d7f3a6b5e4d3c2b1a0f9e"


@dataclass
class PaymentProvider:
    """The fake SB Payment Service: the purchase page residents are sent to, and /control/* to
    steer it (tests/fixtures/sbps/server.py)."""

    base_url: str

    def control(self, action: str, body: dict) -> dict:
        request = urllib.request.Request(
            f"{self.base_url}/control/{action}",
            method="POST",
            data=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=15) as response:
            return json.loads(response.read())

    def settings(self) -> dict[str, str]:
        """madoguchi's settings that pay through this provider."""
        return {
            "MADOGUCHI__PAYMENTS__PROVIDER": "sbps",
            "MADOGUCHI__PAYMENTS__SBPS__PURCHASE_URL": f"{self.base_url}/purchase",
            "MADOGUCHI__PAYMENTS__SBPS__API_URL": f"{self.base_url}/api",
            "MADOGUCHI__PAYMENTS__SBPS__MERCHANT_ID": MERCHANT_ID,
            "MADOGUCHI__PAYMENTS__SBPS__SERVICE_ID": SERVICE_ID,
            "MADOGUCHI__PAYMENTS__SBPS__HASH_KEY": HASH_KEY,
        }


@contextlib.contextmanager
def payment_provider():
    env = {"MERCHANT_ID": MERCHANT_ID, "SERVICE_ID": SERVICE_ID, "HASH_KEY": HASH_KEY}
    what = "the fake payment provider"
    with _fixture_process("tests/fixtures/sbps/server.py", env, what) as port:
        yield PaymentProvider(f"http://127.0.0.1:{port}")


def test_pki(directory: Path) -> Path:
    """The fictional JPKI-like test PKI (tests/fixtures/pki), made fresh with openssl."""
    subprocess.run(
        ["bash", str(ROOT / "tests/fixtures/pki/make-test-pki.sh"), str(directory)],
        env={**os.environ, "MAKE_TEST_PKI_QUIET": "1"},
        check=True,
        timeout=120,
    )
    return directory


@dataclass
class Server:
    binary: Path
    base_url: str
    database_url: str
    mailbox: Mailbox
    log: Path
    payments: PaymentProvider | None = None

    def url(self, path: str) -> str:
        return self.base_url + path

    def scalar(self, sql: str, **variables: str) -> str:
        """One value from the server's database; `:'name'` in `sql` is a quoted variable."""
        command = ["psql", self.database_url, "-v", "ON_ERROR_STOP=1", "-At"]
        for name, value in variables.items():
            command += ["-v", f"{name}={value}"]
        done = subprocess.run(
            command, input=sql, capture_output=True, text=True, check=True, timeout=30
        )
        return done.stdout.strip()

    def applications_of(self, subject: str) -> int:
        """How many applications the `dev` card holder `subject` has sent."""
        return int(
            self.scalar(
                "SELECT count(*) FROM submissions s JOIN residents r ON r.id = s.resident_id"
                " WHERE r.provider = 'dev' AND r.subject = :'subject'",
                subject=subject,
            )
        )

    def staff_token(self, division: str, role: str = "clerk") -> str:
        """A new staff member of `division`, created as a city creates one (`madoguchi staff
        create`), signed in through the JSON API; returns the bearer token."""
        login = f"{division}-{role}-{uuid.uuid4().hex[:8]}"
        password = uuid.uuid4().hex
        subprocess.run(
            [str(self.binary), "staff", "create", "--login", login, "--name", f"職員 {role}",
             "--division", division, "--role", role],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": self.database_url,
                 "MADOGUCHI_PROFILE": "development", "MADOGUCHI__LOG__FILTER": "warn",
                 "MADOGUCHI_STAFF_PASSWORD": password},
            check=True,
            timeout=60,
            capture_output=True,
        )
        return self.api("POST", "/api/v1/staff/login", {"login": login, "password": password})[
            "access_token"
        ]

    def api(self, method: str, path: str, body: dict | None = None, token: str | None = None):
        """One JSON API call; returns the decoded answer (None for 204)."""
        request = urllib.request.Request(
            self.url(path),
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"content-type": "application/json"}
            | ({"authorization": f"Bearer {token}"} if token else {}),
        )
        with urllib.request.urlopen(request, timeout=15) as response:
            text = response.read()
            return json.loads(text) if text else None

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(base_url + "/readyz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def madoguchi(
    binary: str | os.PathLike, extra_env: dict[str, str] | None = None, payments: bool = False
):
    """`madoguchi serve` on a fresh database; yields a `Server`. `payments`: fees are paid
    through the fake payment provider, started for this server."""
    binary = Path(binary).resolve()
    if not binary.is_file():
        raise FileNotFoundError(f"no madoguchi binary at {binary} (build it with `cargo build`)")
    work = Path(tempfile.mkdtemp(prefix="madoguchi-browser-"))
    database = f"madoguchi_browser_{uuid.uuid4().hex[:12]}"
    database_url = f"{PG_SERVER}/{database}"
    psql(f"CREATE DATABASE {database}")
    process = None
    try:
        pki = test_pki(work / "pki")
        with contextlib.ExitStack() as fixtures:
            mailbox = fixtures.enter_context(smtp_server(work / "mail"))
            provider = fixtures.enter_context(payment_provider()) if payments else None
            port = free_port()
            base_url = f"http://127.0.0.1:{port}"
            env = {
                **os.environ,
                "DATABASE_URL": database_url,
                "MADOGUCHI_PROFILE": "development",
                "MADOGUCHI__SERVER__PORT": str(port),
                "MADOGUCHI__SERVER__PUBLIC_URL": base_url,
                "MADOGUCHI__SERVER__WORKERS": "2",
                "MADOGUCHI__DATABASE__POOL_SIZE": "4",
                "MADOGUCHI__LOG__FILTER": "warn",
                "MADOGUCHI__SUBMISSIONS__ATTACHMENTS_DIR": str(work / "attachments"),
                "MADOGUCHI__EMAIL__TRANSPORT": "smtp",
                "MADOGUCHI__EMAIL__SMTP_PORT": str(mailbox.port),
                "MADOGUCHI__EMAIL__SMTP_TLS": "none",
                "MADOGUCHI__EMAIL__POLL_INTERVAL_SECONDS": "1",
                # Card signatures on the pages: the dev signer signs with the test PKI's card,
                # and the jpki provider trusts that PKI, as the Rust suite sets it up.
                "MADOGUCHI__IDENTITY__PROVIDERS": "dev,jpki",
                "MADOGUCHI__IDENTITY__JPKI__TRUST_ANCHORS": str(pki / "root-ca.pem"),
                "MADOGUCHI__IDENTITY__JPKI__CRL": str(pki / "crl.pem"),
                "MADOGUCHI__PORTAL__SIGNER": "dev",
                "MADOGUCHI__PORTAL__DEV_SIGNER_CERTIFICATE": str(pki / "sign-alice.pem"),
                "MADOGUCHI__PORTAL__DEV_SIGNER_KEY": str(pki / "sign-alice.key"),
                **(provider.settings() if provider else {}),
                **(extra_env or {}),
            }
            log = work / "server.log"
            with open(log, "wb") as log_file:
                # config/ and forms/ are read from the project root.
                process = subprocess.Popen(
                    [str(binary), "serve"], cwd=ROOT, env=env, stdout=log_file, stderr=log_file
                )
            server = Server(binary, base_url, database_url, mailbox, log, provider)
            deadline = time.monotonic() + START_SECONDS
            while not ready(base_url):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"madoguchi serve did not become ready:\n{server.log_tail()}"
                    )
                time.sleep(0.2)
            yield server
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(15)
        with contextlib.suppress(Exception):
            psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        shutil.rmtree(work, ignore_errors=True)
