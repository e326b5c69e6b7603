"""/.well-known/security.txt (RFC 9116): where to report a vulnerability.

Answered from settings.SECURITY_TXT for the site's own hosts (the request's Host
is validated first, as for any page), over HTTPS like every other page:

    SECURITY_TXT = {"CONTACT": "mailto:security@example.com", "EXPIRES": "2027-06-30"}

EXPIRES is a date (the file expires at its start, UTC). check --deploy warns
30 days before it passes; after that, the file is still served, as RFC 9116
asks readers to judge it stale themselves.
"""

import datetime

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse

PATH = "/.well-known/security.txt"


def security_txt(contact: str, expires: str) -> str:
    """The file's text: one Contact and one Expires, in the RFC's format."""
    try:
        day = datetime.date.fromisoformat(expires)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(
            f"SECURITY_TXT['EXPIRES'] is {expires!r}, not a date; give one such as 2027-06-30"
        ) from None
    return f"Contact: {contact}\nExpires: {day.isoformat()}T00:00:00Z\n"


class SecurityTxtMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        config = getattr(settings, "SECURITY_TXT", None) or {}
        self.body = (
            security_txt(config["CONTACT"], config["EXPIRES"])
            if config.get("CONTACT") and config.get("EXPIRES")
            else None
        )

    def __call__(self, request):
        if self.body and request.path_info == PATH and request.method in ("GET", "HEAD"):
            request.get_host()  # a Host outside ALLOWED_HOSTS gets 400, as for any page
            response = HttpResponse(self.body, content_type="text/plain; charset=utf-8")
            response["Cache-Control"] = "max-age=86400"
            return response
        return self.get_response(request)
