"""Permissions-Policy and Cross-Origin-Resource-Policy on every response Django sends.

Django's SecurityMiddleware sends HSTS, nosniff, Referrer-Policy and
Cross-Origin-Opener-Policy, and its CSP middleware the Content-Security-Policy;
these two headers it has no setting for. Both come from the settings, and a
setting that is missing or empty sends nothing (development sets neither):

    PERMISSIONS_POLICY = {"camera": [], "geolocation": ["self"]}
    # Permissions-Policy: camera=(), geolocation=(self)
    SECURE_CROSS_ORIGIN_RESOURCE_POLICY = "same-origin"

A view that needs another value sets the header on its response; it is kept.
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def permissions_policy(features: dict[str, list[str]]) -> str:
    """The header's value: `feature=()` denies it, "self" and quoted origins allow it."""
    parts = []
    for feature, allowed in features.items():
        if isinstance(allowed, str):
            raise ImproperlyConfigured(
                f'PERMISSIONS_POLICY["{feature}"] must be a list, e.g. ["self"] or []'
            )
        sources = [source if source in ("self", "*") else f'"{source}"' for source in allowed]
        parts.append(f"{feature}=({' '.join(sources)})")
    return ", ".join(parts)


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.headers = {}
        if policy := getattr(settings, "PERMISSIONS_POLICY", None):
            self.headers["Permissions-Policy"] = permissions_policy(policy)
        if resource_policy := getattr(settings, "SECURE_CROSS_ORIGIN_RESOURCE_POLICY", None):
            self.headers["Cross-Origin-Resource-Policy"] = resource_policy

    def __call__(self, request):
        response = self.get_response(request)
        for name, value in self.headers.items():
            response.headers.setdefault(name, value)
        return response
