"""Where alerts go: email over SMTP and Slack (dagster-slack's client), both configured from the environment
and both optional: an unconfigured channel is skipped, not an error."""

from __future__ import annotations

import os
import smtplib
from email.message import EmailMessage

import dagster as dg
from dagster_slack import SlackResource
from slack_sdk import WebClient


def _env(name: str) -> dg.EnvVar | None:
    return dg.EnvVar(name) if os.environ.get(name) else None


class EmailAlerts(dg.ConfigurableResource):
    """SMTP delivery; STARTTLS unless the server is plain (a local relay)."""

    host: str | None = None
    port: int = 587
    user: str | None = None
    password: str | None = None  # only as dg.EnvVar("TEEM_SMTP_PASSWORD")
    sender: str = "teem-pipelines@localhost"
    recipients: list[str] = []  # noqa: RUF012 - pydantic copies field defaults
    starttls: bool = True

    @classmethod
    def from_environment(cls) -> EmailAlerts:
        """TEEM_SMTP_HOST, TEEM_SMTP_PORT, TEEM_SMTP_USER, TEEM_SMTP_PASSWORD, TEEM_SMTP_STARTTLS,
        TEEM_ALERT_EMAIL_FROM and TEEM_ALERT_EMAIL_TO (comma-separated)."""
        return cls(
            host=_env("TEEM_SMTP_HOST"),
            port=dg.EnvVar.int("TEEM_SMTP_PORT") if os.environ.get("TEEM_SMTP_PORT") else 587,
            user=_env("TEEM_SMTP_USER"),
            password=_env("TEEM_SMTP_PASSWORD"),
            sender=_env("TEEM_ALERT_EMAIL_FROM") or "teem-pipelines@localhost",
            recipients=[a.strip() for a in os.environ.get("TEEM_ALERT_EMAIL_TO", "").split(",") if a.strip()],
            starttls=os.environ.get("TEEM_SMTP_STARTTLS", "true").lower() != "false",
        )

    @property
    def configured(self) -> bool:
        return bool(self.host and self.recipients)

    def send(self, subject: str, body: str) -> None:
        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = subject, self.sender, ", ".join(self.recipients)
        message.set_content(body)
        with smtplib.SMTP(self.host, self.port, timeout=30) as server:
            if self.starttls:
                server.starttls()
            if self.user:
                server.login(self.user, self.password or "")
            server.send_message(message)


class SlackAlerts(dg.ConfigurableResource):
    """A message to a channel through dagster-slack's client; `api_url` lets a stand-in receive it."""

    token: str | None = None  # only as dg.EnvVar("TEEM_SLACK_TOKEN")
    channel: str = "#teem-alerts"
    api_url: str = WebClient.BASE_URL

    @classmethod
    def from_environment(cls) -> SlackAlerts:
        """TEEM_SLACK_TOKEN, TEEM_SLACK_CHANNEL and TEEM_SLACK_API_URL."""
        return cls(
            token=_env("TEEM_SLACK_TOKEN"),
            channel=_env("TEEM_SLACK_CHANNEL") or "#teem-alerts",
            api_url=_env("TEEM_SLACK_API_URL") or WebClient.BASE_URL,
        )

    @property
    def configured(self) -> bool:
        return bool(self.token)

    def send(self, text: str) -> None:
        client = SlackResource(token=self.token).get_client()
        client.base_url = self.api_url
        client.chat_postMessage(channel=self.channel, text=text)
