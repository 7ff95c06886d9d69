"""Mail over SMTP (stdlib smtplib and email.message): settings from the environment
(SMTP_HOST, SMTP_PORT, SMTP_SECURITY, SMTP_USER, SMTP_PASSWORD, MAIL_FROM), nothing sent
while SMTP_HOST is unset. Messages are built in the scheduler's app context (templates/mail)
and sent from its worker threads, which need only `MailSettings`.
"""
from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from flask import current_app, render_template


@dataclass(frozen=True)
class MailSettings:
    host: str
    port: int
    security: str  # starttls | tls | none
    user: str | None
    password: str | None
    sender: str
    timeout: int


def settings() -> MailSettings | None:
    """The SMTP settings, or None when mail is off (SMTP_HOST unset)."""
    config = current_app.config
    if not config.get("SMTP_HOST"):
        return None
    return MailSettings(config["SMTP_HOST"], config["SMTP_PORT"], config["SMTP_SECURITY"],
                        config.get("SMTP_USER"), config.get("SMTP_PASSWORD"),
                        config["MAIL_FROM"], config["NOTIFY_TIMEOUT"])


def link(path: str) -> str:
    """An address in the dashboard for a mail (DASHBOARD_URL is required with SMTP_HOST)."""
    return (current_app.config.get("DASHBOARD_URL") or "") + path


def message(to_name: str, to_email: str, subject: str, template: str, **context) -> EmailMessage:
    """Plain text and HTML from templates/mail/<template>.txt and .html, with the
    unsubscribe link (the person's notification settings) in both and in the headers."""
    context["unsubscribe_url"] = link("/account/notifications")
    mail = EmailMessage()
    mail["Subject"] = subject
    mail["From"] = current_app.config["MAIL_FROM"]
    mail["To"] = formataddr((to_name, to_email))
    mail["Message-ID"] = make_msgid(domain="stockroom")
    mail["List-Unsubscribe"] = f"<{context['unsubscribe_url']}>"
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(render_template(f"mail/{template}.txt", **context))
    mail.add_alternative(render_template(f"mail/{template}.html", **context), subtype="html")
    return mail


def send(mail: EmailMessage, smtp: MailSettings) -> str:
    """Hand the mail to the SMTP server; returns its reply. Raises on any refusal."""
    context = ssl.create_default_context()
    if smtp.security == "tls":
        client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout, context=context)
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
    with client:
        if smtp.security == "starttls":
            client.starttls(context=context)
        if smtp.user:
            client.login(smtp.user, smtp.password or "")
        refused = client.send_message(mail)
        if refused:  # some recipients refused, none accepted (one recipient per mail)
            raise smtplib.SMTPRecipientsRefused(refused)
        return "250 accepted"
