"""Where alerts go: email over SMTP and Slack (dagster-slack's client), both configured from the environment
and both optional: an unconfigured channel is skipped, not an error."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

import dagster as dg
from dagster_slack import SlackResource
from slack_sdk import WebClient

from teem_assets.settings import Settings, is_set


def _env(name: str) -> dg.EnvVar | None:
    return dg.EnvVar(name) if is_set(name) else None


class AlertSettingError(ValueError):
    """Settings that would send a secret where it can be read on the way."""


class EmailAlerts(dg.ConfigurableResource):
    """SMTP delivery; STARTTLS, with the server's certificate and host name verified, unless the server is a
    plain local relay, which then gets no login: a password never crosses the network unencrypted."""

    host: str | None = None
    port: int = 587
    user: str | None = None
    password: str | None = None  # only as dg.EnvVar("TEEM_SMTP_PASSWORD")
    sender: str = "teem-pipelines@localhost"
    recipients: list[str] = []  # noqa: RUF012 - pydantic copies field defaults
    starttls: bool = True

    # Certificates trusted besides the system's (a PEM file): a company's own authority, or a test's.
    ca_file: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> EmailAlerts:
        """TEEM_SMTP_HOST, TEEM_SMTP_PORT, TEEM_SMTP_USER, TEEM_SMTP_PASSWORD, TEEM_SMTP_STARTTLS,
        TEEM_SMTP_CA_FILE, TEEM_ALERT_EMAIL_FROM and TEEM_ALERT_EMAIL_TO (comma-separated)."""
        if settings.smtp_user and not settings.smtp_starttls:
            raise AlertSettingError(
                "TEEM_SMTP_USER is set with TEEM_SMTP_STARTTLS=false: the login would cross the network in plain "
                "text; use STARTTLS, or a local relay without a login"
            )
        return cls(
            host=_env("TEEM_SMTP_HOST"),
            port=settings.smtp_port,
            user=_env("TEEM_SMTP_USER"),
            password=dg.EnvVar("TEEM_SMTP_PASSWORD") if settings.smtp_password_set else None,
            sender=settings.alert_email_from,
            recipients=list(settings.alert_email_to),
            starttls=settings.smtp_starttls,
            ca_file=settings.smtp_ca_file,
        )

    @property
    def configured(self) -> bool:
        return bool(self.host and self.recipients)

    def send(self, subject: str, body: str) -> None:
        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = subject, self.sender, ", ".join(self.recipients)
        message.set_content(body)
        if self.user and not self.starttls:
            raise AlertSettingError(
                f"not logging in to {self.host}:{self.port} without TLS (TEEM_SMTP_STARTTLS=false with a user)"
            )
        with smtplib.SMTP(self.host, self.port, timeout=30) as server:
            if self.starttls:
                # create_default_context verifies the certificate chain and the host name
                server.starttls(context=ssl.create_default_context(cafile=self.ca_file))
            if self.user:
                server.login(self.user, self.password or "")
            server.send_message(message)


class SlackAlerts(dg.ConfigurableResource):
    """A message to a channel through dagster-slack's client; `api_url` lets a stand-in receive it."""

    token: str | None = None  # only as dg.EnvVar("TEEM_SLACK_TOKEN")
    channel: str = "#teem-alerts"
    api_url: str = WebClient.BASE_URL

    @classmethod
    def from_settings(cls, settings: Settings) -> SlackAlerts:
        """TEEM_SLACK_TOKEN, TEEM_SLACK_CHANNEL and TEEM_SLACK_API_URL."""
        return cls(
            token=dg.EnvVar("TEEM_SLACK_TOKEN") if settings.slack_token_set else None,
            channel=settings.slack_channel,
            api_url=settings.slack_api_url or WebClient.BASE_URL,
        )

    @property
    def configured(self) -> bool:
        return bool(self.token)

    def send(self, text: str) -> None:
        client = SlackResource(token=self.token).get_client()
        client.base_url = self.api_url
        client.chat_postMessage(channel=self.channel, text=text)
