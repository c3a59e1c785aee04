"""Real servers for the alert tests, on free loopback ports and stopped by the test: an SMTP server (aiosmtpd)
offering STARTTLS with a self-signed certificate made here and requiring a sign-in (AUTH PLAIN/LOGIN, only
over TLS), and a webhook receiver (http.server) answering the statuses it is told to. Also the configuration
that points rtvault at them, and the checks a health evaluation hands to the alerts."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kit.config import write_config
from kit.files import free_port
from rtvault.jobs.health import Check, Status

SMTP_USER = "rtvault-alertes"
SMTP_PASSWORD = "mot de passe très secret"
SENDER = "rtvault@chu-exemple.fr"
RECIPIENTS = ("physique@chu-exemple.fr", "informatique@chu-exemple.fr")


def certificate(folder: Path, name: str = "smtp") -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (its own authority) and its key, as PEM files."""
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"rtvault test {name}")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / f"{name}.crt", folder / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@dataclass
class Received:
    """One message as the SMTP server got it: the envelope, whether the client signed in over TLS, the mail."""

    mail_from: str
    rcpt_tos: list[str]
    signed_in: bool
    message: EmailMessage

    @property
    def text(self) -> str:
        return self.message.get_content().replace("\r\n", "\n")


@dataclass
class _Handler:
    refuse: tuple[str, ...] = ()  # recipients answered 550
    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(self, server, session, envelope, address, options) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bool(session.authenticated),
                                      message))  # type: ignore[arg-type]
        return "250 OK"


def _authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (SMTP_USER.encode(), SMTP_PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


class SmtpServer:
    """An SMTP server on 127.0.0.1:`port`, started and stopped at will (a server down, then up)."""

    def __init__(self, folder: Path, *, starttls: bool = True, refuse: tuple[str, ...] = (),
                 without: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.cert, self.key = certificate(folder, "smtp")
        self.starttls = starttls
        self.handler = _Handler(refuse)
        self.without = without  # sign-in mechanisms not offered (PLAIN, LOGIN)
        self.controller: Controller | None = None

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def start(self) -> SmtpServer:
        options: dict[str, object] = {"authenticator": _authenticator, "auth_require_tls": True,
                                      "auth_exclude_mechanism": self.without}
        if self.starttls:  # a sign-in required, over TLS only
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.cert, self.key)
            options.update(tls_context=context, require_starttls=True, auth_required=True)
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                     server_hostname="smtp.test", **options)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@contextmanager
def smtp_server(folder: Path, *, up: bool = True, **options: object) -> Iterator[SmtpServer]:
    server = SmtpServer(folder, **options)  # type: ignore[arg-type]
    if up:
        server.start()
    try:
        yield server
    finally:
        server.stop()


class Hook:
    """A webhook receiver: each POST's JSON kept; answers the given statuses in turn, then 200, each after
    `delay` seconds."""

    def __init__(self, answers: tuple[int, ...] = (), delay: float = 0.0) -> None:
        self.answers = list(answers)
        self.delay = delay
        self.requests: list[tuple[int, dict]] = []  # (status answered, JSON received)
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = hook.answers.pop(0) if hook.answers else 200
                hook.requests.append((status, data))
                time.sleep(hook.delay)
                try:
                    self.send_response(status)
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:
                    pass  # the client gave up waiting

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/rtvault-secret-token"

    @property
    def delivered(self) -> list[dict]:
        return [data for status, data in self.requests if 200 <= status < 300]


@contextmanager
def webhook(answers: tuple[int, ...] = (), delay: float = 0.0) -> Iterator[Hook]:
    hook = Hook(answers, delay)
    thread = threading.Thread(target=hook.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        hook.server.shutdown()
        hook.server.server_close()
        thread.join(5)


def password_file(folder: Path, password: str = SMTP_PASSWORD, name: str = "smtp-password") -> Path:
    path = folder / name
    path.write_text(password + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def mail_settings(smtp: SmtpServer, folder: Path, **overrides: object) -> dict[str, object]:
    """[alerts.mail] for the test server: STARTTLS, its certificate as ca_file, the sign-in."""
    return {"host": "127.0.0.1", "port": smtp.port, "starttls": True, "ca_file": smtp.cert, "username": SMTP_USER,
            "password_file": password_file(folder), "sender": SENDER, "recipients": list(RECIPIENTS),
            **overrides}


def alerts_config(folder: Path, *, mail: dict | None = None, hook: Hook | None = None,
                  **alerts: object) -> Path:
    """A configuration with a store, a state folder under `folder` and the given channels."""
    channels: dict[str, object] = {}
    if mail is not None:
        channels["mail"] = mail
    if hook is not None:
        channels["webhook"] = {"url": hook.url}
    return write_config(folder / "rtvault.toml", stores={"primary": folder / "store"},
                        daemon={"state_dir": folder / "state"}, alerts={**alerts, **channels})


def backup_late(hours: float = 7, status: Status = Status.CRITICAL, source: str = "pinnacle") -> Check:
    return Check(f"backup:{source}", status, hours * 3600, 6 * 3600,
                 f"the last successful backup of {source} is {hours:g} h old (limit 6 h)", "s")


def ok(name: str) -> Check:
    return Check(name, Status.OK, 0, None, f"{name} is fine", "")
