"""sslyze's scan of a TLS server and its check against Mozilla's intermediate profile.

sslyze 6.3 bundles Mozilla's guidelines 5.7 (sslyze/mozilla_tls_profile/5.7.json).
Guidelines 6.0 (https://ssl-config.mozilla.org/guidelines/6.0.json) change the
intermediate profile in two ways that a check can see: the DHE cipher suites are
gone, and the tls_curves list gains the hybrid X25519MLKEM768 group. The check
here is 5.7's profile with both changes made. nassl's OpenSSL cannot offer the
hybrid group, so sslyze never reports it either way: which server negotiates it
is said in docs/scanners.md, from a browser that offers it.
"""

from __future__ import annotations

from pathlib import Path

from sslyze import (
    Scanner,
    ServerNetworkConfiguration,
    ServerNetworkLocation,
    ServerScanRequest,
    ServerScanResult,
    ServerScanStatusEnum,
)
from sslyze.mozilla_tls_profile.tls_config_checker import (
    SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER,
    MozillaTlsConfiguration,
    ServerNotCompliantWithTlsConfiguration,
    TlsConfigurationAsJson,
    TlsConfigurationEnum,
    check_server_against_tls_configuration,
)
from sslyze.plugins.certificate_info.implementation import CertificateInfoExtraArgument
from sslyze.scanner.models import ScanCommandsExtraArguments

HYBRID_GROUP = "X25519MLKEM768"


def bundled_profile_version() -> str:
    """The guidelines version of the profile sslyze ships (the name of its JSON file)."""
    return Path(MozillaTlsConfiguration._JSON_PROFILE_PATH).stem


def mozilla_intermediate_6_0() -> TlsConfigurationAsJson:
    """Mozilla's intermediate profile as guidelines 6.0 define it, from sslyze's 5.7."""
    bundled = MozillaTlsConfiguration.get(TlsConfigurationEnum.MOZILLA_INTERMEDIATE)
    no_dhe = {suite for suite in bundled.ciphers.iana if "_DHE_" not in suite}
    ciphers = bundled.ciphers.model_copy(update={"iana": no_dhe})
    return bundled.model_copy(
        update={"ciphers": ciphers, "tls_curves": bundled.tls_curves | {HYBRID_GROUP}}
    )


def scan_tls(port: int, server_name: str, ca_file: Path) -> ServerScanResult:
    """Every scan the Mozilla check needs, against 127.0.0.1:port with this SNI."""
    request = ServerScanRequest(
        server_location=ServerNetworkLocation(server_name, port, ip_address="127.0.0.1"),
        network_configuration=ServerNetworkConfiguration(tls_server_name_indication=server_name),
        scan_commands=SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER,
        scan_commands_extra_arguments=ScanCommandsExtraArguments(
            certificate_info=CertificateInfoExtraArgument(custom_ca_file=ca_file)
        ),
    )
    scanner = Scanner()
    scanner.queue_scans([request])
    (result,) = scanner.get_results()
    if result.scan_status != ServerScanStatusEnum.COMPLETED:
        raise RuntimeError(
            f"sslyze could not scan 127.0.0.1:{port}: {result.connectivity_error_trace}"
        )
    return result


def mozilla_issues(result: ServerScanResult, profile: TlsConfigurationAsJson) -> dict[str, str]:
    """What the Mozilla checker holds against the server: empty when it complies."""
    try:
        check_server_against_tls_configuration(result, profile)
    except ServerNotCompliantWithTlsConfiguration as failed:
        return failed.issues
    return {}
