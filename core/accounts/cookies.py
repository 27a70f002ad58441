"""The app's cookies and their flags: HttpOnly session, SameSite, Secure with the __Host- prefix.

The __Host- prefix (only possible with Secure) makes the browser refuse the cookie from a sibling subdomain or
with a Domain or Path attribute, which closes the cookie-tossing route to session fixation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from starlette.responses import Response


@dataclass(frozen=True)
class CookiePolicy:
    secure: bool = True
    samesite: Literal["lax", "strict"] = "lax"
    session_max_age_s: int = 12 * 3600

    def name(self, base: str) -> str:
        return f"__Host-{base}" if self.secure else base

    @property
    def session(self) -> str:
        return self.name("atende_session")

    @property
    def csrf(self) -> str:
        return self.name("atende_csrf")

    @property
    def oidc(self) -> str:
        return self.name("atende_oidc")

    @property
    def chat_key(self) -> str:
        return self.name("atende_chat")

    def set_session(self, response: Response, cookie: str, csrf_token: str) -> None:
        response.set_cookie(
            self.session,
            cookie,
            max_age=self.session_max_age_s,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite=self.samesite,
        )
        self.set_csrf(response, csrf_token)

    def set_csrf(self, response: Response, token: str) -> None:
        # Readable by the page's script (it echoes it in a header); useless to another origin, which cannot read it.
        response.set_cookie(self.csrf, token, path="/", secure=self.secure, httponly=False, samesite="strict")

    def set_oidc(self, response: Response, value: str, max_age_s: int) -> None:
        # Lax, not strict: the identity provider sends the browser back with a cross-site top-level GET.
        response.set_cookie(
            self.oidc, value, max_age=max_age_s, path="/", secure=self.secure, httponly=True, samesite="lax"
        )

    def set_chat_key(self, response: Response, key: str) -> None:
        """The citizen's web chat key (docs/decisions/0035-conversation-binding.md): a browser-session cookie.

        The chat also runs in widget.js's iframe on the portal, often another site: only SameSite=None reaches it
        there, and browsers that block third-party cookies (Safari, Firefox, Chrome when set so) still keep a
        Partitioned one, in a jar of the embedding site. Browsers refuse SameSite=None without Secure, so over
        plain HTTP (development) it is Lax and the widget works only on a page of the same site.
        """
        # Written by hand: Starlette adds Partitioned only on Python 3.14 and later.
        attributes = ["Path=/", "HttpOnly"]
        attributes += ["Secure", "SameSite=None", "Partitioned"] if self.secure else ["SameSite=Lax"]
        response.headers.append("set-cookie", "; ".join([f"{self.chat_key}={key}", *attributes]))

    def clear_session(self, response: Response) -> None:
        response.delete_cookie(self.session, path="/", secure=self.secure, httponly=True, samesite=self.samesite)

    def clear_oidc(self, response: Response) -> None:
        response.delete_cookie(self.oidc, path="/", secure=self.secure, httponly=True, samesite="lax")
