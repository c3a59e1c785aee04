"""The channels an alert goes out through, from `[alerts]`: e-mail (SMTP, upgraded with STARTTLS and the
server's certificate verified against the system's authorities or `ca_file`, then the sign-in) and a webhook
(a JSON POST; any 2xx answer is a delivery). A delivery succeeds or raises `DeliveryFailed`, one sentence
naming the server and what to do; it never takes longer than its timeout per connection.
"""

from __future__ import annotations

import base64
import http.client
import json
import smtplib
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from rtvault import __version__
from rtvault.config.settings import credentials_problem
from rtvault.config.unattended import Alerts, Mail
from rtvault.errors import Unavailable, os_advice
from rtvault.jobs.alert_state import Message
from rtvault.jobs.alert_texts import clean
from rtvault.utc import iso

TIMEOUT = 10.0  # seconds a server may take to connect or answer
LABELS = {"mail": "e-mail", "webhook": "webhook"}


class DeliveryFailed(Unavailable):
    """A message could not be handed to a channel's server (it is tried again later)."""


def configured(alerts: Alerts) -> list[str]:
    """The channels the configuration sets up, in a fixed order."""
    return [channel for channel, on in (("mail", alerts.mail.host), ("webhook", alerts.webhook.url)) if on]


def destination(alerts: Alerts, channel: str) -> str:
    """Where a channel sends, as shown to a person: the recipients, or the webhook's origin (its path may hold
    a secret token)."""
    return ", ".join(alerts.mail.recipients) if channel == "mail" else _origin(alerts.webhook.url)


def deliver(alerts: Alerts, channel: str, message: Message, timeout: float = TIMEOUT) -> str | None:
    """Hand `message` to the channel's server; what went partly wrong (recipients refused while others got it:
    not worth sending again), or None."""
    if channel == "mail":
        return send_mail(alerts.mail, message, timeout)
    post_webhook(alerts.webhook.url, message, timeout)
    return None


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _network_reason(error: BaseException, timeout: float, check: str, trust: str) -> str:
    """Why a connection failed, and what to do (`check`: the settings to look at; `trust`: how to make a
    certificate trusted), for the errors a network gives."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"its certificate is not trusted ({error.verify_message}): {trust}"
    if isinstance(error, ssl.SSLError):
        return f"the TLS handshake failed ({error.reason or error}): check {check}"
    if isinstance(error, ConnectionRefusedError):
        return f"the connection was refused: check {check} and that the server runs"
    if isinstance(error, TimeoutError):
        return f"no answer within {timeout:g} s: check {check} and that a firewall lets the connection through"
    if isinstance(error, socket.gaierror):
        return f"the server's name cannot be resolved ({error.strerror}): check {check} and the DNS"
    if isinstance(error, http.client.HTTPException | smtplib.SMTPServerDisconnected):
        return f"the server closed the connection ({type(error).__name__}: {error}): check {check}"
    if isinstance(error, OSError):
        return f"{os_advice(error)} (check {check})"
    return f"{type(error).__name__}: {error}"


# --- e-mail -----------------------------------------------------------------------------------------------


def _email(mail: Mail, message: Message) -> EmailMessage:
    email = EmailMessage()
    try:
        email["From"] = mail.sender
        email["To"] = ", ".join(mail.recipients)
    except ValueError as error:
        raise DeliveryFailed(f"[alerts.mail] sender or recipients cannot be written in an e-mail ({error}): "
                             "correct them") from error
    email["Subject"] = clean(message.subject)
    email["Date"] = format_datetime(message.created.astimezone())
    email["Message-ID"] = make_msgid("rtvault", domain=clean(mail.sender.rpartition("@")[2]) or "localhost")
    email["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office answer to an alert
    email.set_content(message.text, cte="quoted-printable")  # 7-bit lines of at most 76 characters: any relay
    # Headers folded only past RFC 5322's 998 characters: Python folds a subject a little over 78 characters
    # long before its first word, which readers then show with a leading space.
    email.policy = email_policy.SMTP.clone(max_line_length=998)
    return email


def _password(mail: Mail) -> str:
    path = mail.password_file
    assert path is not None  # the configuration pairs username with password_file
    if problem := credentials_problem(path):
        raise DeliveryFailed(f"[alerts.mail] password_file: {problem}")
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as error:
        reason = os_advice(error) if isinstance(error, OSError) else "it is not UTF-8 text"
        raise DeliveryFailed(f"[alerts.mail] password_file: cannot read {path}: {reason}") from error


class _Smtp(smtplib.SMTP):
    """smtplib sends sign-in answers as ASCII, so a password with an accent could not be used; RFC 4616 (PLAIN)
    and RFC 4954 allow UTF-8. Only PLAIN and LOGIN are spoken (over TLS; CRAM-MD5 cannot carry UTF-8)."""

    def auth(self, mechanism: str, authobject: Callable[..., str], *,
             initial_response_ok: bool = True) -> tuple[int, bytes]:
        def encoded(text: str) -> str:
            return base64.b64encode(text.encode("utf-8")).decode("ascii")

        code, answer = self.docmd("AUTH", f"{mechanism} {encoded(authobject())}")
        self._auth_challenge_count = 1
        while code == 334:  # LOGIN asks for the password
            self._auth_challenge_count += 1
            code, answer = self.docmd(encoded(authobject(base64.b64decode(answer))))
        if code not in (235, 503):
            raise smtplib.SMTPAuthenticationError(code, answer)
        return code, answer

    def sign_in(self, user: str, password: str) -> None:
        self.ehlo_or_helo_if_needed()
        offered = self.esmtp_features.get("auth", "").upper().split()
        mechanism = next((m for m in ("PLAIN", "LOGIN") if m in offered), None)
        if mechanism is None:
            raise smtplib.SMTPNotSupportedError(f"no PLAIN or LOGIN sign-in offered ({' '.join(offered) or 'none'})")
        self.user, self.password = user, password
        self.auth(mechanism, getattr(self, f"auth_{mechanism.lower()}"))


def _server_said(error: smtplib.SMTPResponseException) -> str:
    text = error.smtp_error.decode("utf-8", "replace") if isinstance(error.smtp_error, bytes) else error.smtp_error
    return clean(f"{error.smtp_code} {text}")


def _smtp_reason(error: Exception, mail: Mail, timeout: float) -> str:
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return (f"it refused the sign-in of {mail.username!r} ({_server_said(error)}): check [alerts.mail] "
                "username and the password in password_file")
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return (f"it offers no sign-in rtvault can use on this connection ({error}): ask for AUTH PLAIN or LOGIN "
                "over STARTTLS, or remove username and password_file")
    if isinstance(error, smtplib.SMTPSenderRefused):
        return f"it refused the sender {mail.sender!r} ({_server_said(error)}): check [alerts.mail] sender"
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        refused = "; ".join(f"{who} ({code} {clean(text.decode('utf-8', 'replace'))})"
                            for who, (code, text) in error.recipients.items())
        return f"it refused every recipient: {refused}: check [alerts.mail] recipients"
    if isinstance(error, smtplib.SMTPResponseException):
        return f"it answered {_server_said(error)}: the message was not accepted"
    return _network_reason(error, timeout, "[alerts.mail] host and port",
                           "give the authority that signed it in [alerts.mail] ca_file, or fix its certificate")


def send_mail(mail: Mail, message: Message, timeout: float = TIMEOUT) -> str | None:
    """Send one message by SMTP; which recipients were refused while others got it, or None."""
    where = f"the mail server {mail.host}:{mail.port}"
    email = _email(mail, message)
    password = _password(mail) if mail.username else None
    if password is not None and not mail.starttls:
        raise DeliveryFailed("[alerts.mail] has starttls = false: rtvault will not send the SMTP password in "
                             "clear text; set starttls = true")
    try:
        context = ssl.create_default_context(cafile=mail.ca_file) if mail.starttls else None
    except (OSError, ssl.SSLError) as error:
        reason = "no PEM certificate in it" if isinstance(error, ssl.SSLError) else os_advice(error)
        raise DeliveryFailed(f"[alerts.mail] ca_file: cannot read certificate authorities from {mail.ca_file}: "
                             f"{reason}") from error
    try:
        with _Smtp(mail.host, mail.port, timeout=timeout) as smtp:
            smtp.ehlo()
            if context is not None:
                if not smtp.has_extn("starttls"):
                    raise DeliveryFailed(f"{where} does not offer STARTTLS: rtvault will not send alerts in clear "
                                         "text; enable STARTTLS there, or set starttls = false for a relay on this "
                                         "machine")
                smtp.starttls(context=context)
                smtp.ehlo()
            if password is not None:
                smtp.sign_in(mail.username, password)
            refused = smtp.send_message(email, from_addr=mail.sender, to_addrs=list(mail.recipients))
    except (smtplib.SMTPException, OSError) as error:
        raise DeliveryFailed(f"{where}: {_smtp_reason(error, mail, timeout)}") from error
    if refused:
        return f"{where} refused some recipients, the others got the message: {', '.join(refused)}"
    return None


# --- webhook ----------------------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer like any other that is not 2xx: a POST is not sent on elsewhere."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())
_WEBHOOK = "[alerts.webhook] url"
_TRUST = "fix the receiver's certificate, or add its authority to this machine's trusted certificates"


def payload(message: Message) -> dict[str, object]:
    """The JSON a webhook receives."""
    return {"event": message.event, "status": message.status, "host": message.host, "time": iso(message.created),
            "subject": message.subject, "text": message.text, "language": message.language,
            "checks": list(message.checks)}


def post_webhook(url: str, message: Message, timeout: float = TIMEOUT) -> None:
    where = f"the webhook {_origin(url)}"
    request = urllib.request.Request(
        url, data=json.dumps(payload(message), ensure_ascii=False).encode("utf-8"), method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": f"rtvault/{__version__}"})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(65536)
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except urllib.error.URLError as error:
        reason = error.reason if isinstance(error.reason, BaseException) else OSError(str(error.reason))
        raise DeliveryFailed(f"{where}: {_network_reason(reason, timeout, _WEBHOOK, _TRUST)}") from error
    except (OSError, http.client.HTTPException) as error:
        raise DeliveryFailed(f"{where}: {_network_reason(error, timeout, _WEBHOOK, _TRUST)}") from error
    if not 200 <= status < 300:
        advice = ("the receiver has a fault of its own: it is tried again later" if status >= 500 else
                  "check [alerts.webhook] url (the address, or a token in it, may be wrong)")
        raise DeliveryFailed(f"{where} answered HTTP {status}: {advice}")
