"""The console's own login on the secured stack: HTTP Basic, user `console`, the password CONSOLE_PASSWORD of the
stack's secrets (<STACK_HOME>/secrets/credentials.env, generated on the first secured start, or from the
environment). The unsecured stack, on loopback only, asks for none. Basic credentials travel in clear over plain
HTTP: the console listens on 127.0.0.1 (bind_host), where only this machine's users can reach it."""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline_config.credentials import CONSOLE_PASSWORD, stack_secrets
from pipeline_config.settings import StackSettings

CONSOLE_USER = "console"
# make up's health check and Prometheus's scrape ask without a login (the console listens on 127.0.0.1 only, and
# its metrics are names and numbers: no message, no secret).
OPEN_PATHS = ("/api/health", "/metrics")


@dataclass(frozen=True)
class WebLogin:
    user: str
    password: str

    def __repr__(self) -> str:
        return f"WebLogin(user={self.user!r}, password=<hidden>)"

    def accepts(self, header: str | None) -> bool:
        scheme, _, encoded = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        # compare_digest on both: no timing tells how much of a guess was right
        return secrets.compare_digest(user.encode(), self.user.encode()) & secrets.compare_digest(
            password.encode(), self.password.encode()
        )


def web_login(settings: StackSettings) -> WebLogin:
    return WebLogin(CONSOLE_USER, stack_secrets(settings)[CONSOLE_PASSWORD])


class BasicLogin:
    """ASGI middleware: every request but the health check needs the login, else 401 with a Basic challenge."""

    def __init__(self, app: ASGIApp, login: WebLogin):
        self.app, self.login = app, login

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in OPEN_PATHS:
            header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            if not self.login.accepts(header):
                response = PlainTextResponse(
                    "login needed (user console, CONSOLE_PASSWORD in the stack's secrets)",
                    status_code=401,
                    headers={"WWW-Authenticate": 'Basic realm="pipeline console"'},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
