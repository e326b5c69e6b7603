"""The security headers, cookies and security.txt, as a browser gets them from Django."""

import datetime
from importlib import import_module

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from .conftest import PUBLIC_HOSTS

PUBLIC_HOST = PUBLIC_HOSTS[0]


def directives(header: str) -> dict[str, list[str]]:
    return {words[0]: words[1:] for part in header.split(";") if (words := part.split())}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/no-such-page/"])
def test_every_page_has_a_strict_content_security_policy(client, path):
    response = client.get(path, HTTP_HOST=PUBLIC_HOST, secure=True)
    policy = directives(response["Content-Security-Policy"])
    for directive in ("default-src", "object-src", "base-uri", "frame-ancestors"):
        assert policy[directive] == ["'none'"], directive
    assert policy["form-action"] == ["'self'"]
    assert not [source for sources in policy.values() for source in sources if "unsafe" in source]
    assert "Content-Security-Policy-Report-Only" not in response.headers


@pytest.mark.django_db
def test_the_nonce_is_in_the_policy_only_when_a_page_uses_it(client):
    response = client.get("/", HTTP_HOST=PUBLIC_HOST, secure=True)
    assert "nonce-" not in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_every_page_denies_powerful_features_and_cross_origin_loads(client):
    response = client.get("/", HTTP_HOST=PUBLIC_HOST, secure=True)
    assert response["Cross-Origin-Resource-Policy"] == "same-origin"
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()"):
        assert feature in response["Permissions-Policy"]


@pytest.mark.django_db
def test_the_login_page_sets_the_csrf_cookie_with_the_host_prefix(client):
    response = client.get(reverse("admin:login"), HTTP_HOST=PUBLIC_HOST, secure=True)
    cookie = response.cookies["__Host-csrftoken"]
    assert cookie["secure"] and cookie["path"] == "/" and not cookie["domain"]
    assert settings.SESSION_COOKIE_NAME == "__Host-sessionid"


def test_security_txt_names_the_contact_and_an_expiry_ahead(client):
    response = client.get("/.well-known/security.txt", HTTP_HOST=PUBLIC_HOST, secure=True)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    contact, expires = response.content.decode().splitlines()
    assert contact == f"Contact: {settings.SECURITY_TXT['CONTACT']}"
    day = datetime.date.fromisoformat(expires.removeprefix("Expires: ")[:10])
    assert day > datetime.date.today()


def test_security_txt_is_not_answered_for_another_host(client):
    response = client.get("/.well-known/security.txt", HTTP_HOST="evil.example", secure=True)
    assert response.status_code == 400


def test_a_permissions_policy_allows_what_the_settings_allow():
    package = settings.ROOT_URLCONF.rpartition(".")[0]
    permissions_policy = import_module(f"{package}.security_headers").permissions_policy
    policy = {"camera": [], "geolocation": ["self", "https://maps.example.net"], "usb": ["*"]}
    assert permissions_policy(policy) == (
        'camera=(), geolocation=(self "https://maps.example.net"), usb=(*)'
    )
    with pytest.raises(
        ImproperlyConfigured, match=r'PERMISSIONS_POLICY\["camera"\] must be a list'
    ):
        permissions_policy({"camera": "self"})
