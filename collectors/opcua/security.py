"""OPC UA security: the client's own certificate (made once, kept), trusted servers, and a logged-in session."""

from __future__ import annotations

import hashlib
import logging
import socket
from collections.abc import Mapping
from pathlib import Path

from asyncua import Client, ua
from asyncua.crypto import uacrypto
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from collectors.base import CollectorError
from collectors.opcua.config import OpcUaEndpointConfig

log = logging.getLogger(__name__)


class TrustError(CollectorError):
    """The server's certificate is not the one trusted for it."""


def application_uri_of(cert_file: Path) -> str | None:
    cert = uacrypto.x509_from_der(cert_file.read_bytes()) if cert_file.suffix == ".der" else \
        x509.load_pem_x509_certificate(cert_file.read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


async def client_certificate(dev: OpcUaEndpointConfig, state_dir: Path) -> tuple[Path, Path, str]:
    """(certificate, key, ApplicationURI): the configured pair, or one generated on first use and kept."""
    if dev.client_cert is not None and dev.client_key is not None:
        uri = application_uri_of(dev.client_cert)
        if uri is None:
            raise CollectorError(f"device {dev.name!r}: client_cert {dev.client_cert} has no URI in its "
                                 "subjectAltName (the ApplicationURI the server checks)")
        return dev.client_cert, dev.client_key, uri
    own = state_dir / "opcua" / "pki" / "own"
    own.mkdir(parents=True, exist_ok=True)
    cert, key = own / f"{dev.name}-cert.der", own / f"{dev.name}-key.pem"
    host = socket.gethostname()
    uri = f"urn:energy-gateway:{host}:{dev.name}"
    if not cert.exists() or not key.exists():
        log.info("device %s: generating the client certificate %s", dev.name, cert)
        await setup_self_signed_certificate(key, cert, uri, host, [ExtendedKeyUsageOID.CLIENT_AUTH],
                                            {"commonName": f"energy-gateway {dev.name}",
                                             "organizationName": "energy-gateway"})
        key.chmod(0o600)
    return cert, key, application_uri_of(cert) or uri


def _fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()[:16]


async def trusted_server_certificate(dev: OpcUaEndpointConfig, state_dir: Path, timeout_s: float) -> Path:
    """The server certificate to trust: the configured one, or the one pinned on first use.

    The server's current certificate is read from its endpoints (over an unsecured discovery channel); it must
    equal the trusted one, or the connection is refused with a TrustError naming both fingerprints.
    """
    probe = Client(dev.url, timeout=timeout_s)
    endpoints = await probe.connect_and_get_server_endpoints()
    mode = getattr(ua.MessageSecurityMode, dev.security_mode)
    uri = "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"
    match = [e for e in endpoints if e.SecurityPolicyUri == uri and e.SecurityMode == mode]
    if not match:
        offered = sorted({f"{e.SecurityPolicyUri.rsplit('#', 1)[-1]}/{e.SecurityMode.name}" for e in endpoints})
        raise CollectorError(f"device {dev.name!r}: {dev.url} offers no Basic256Sha256/{dev.security_mode} "
                             f"endpoint (it offers {', '.join(offered)})")
    current = bytes(match[0].ServerCertificate)
    if dev.server_cert is not None:
        data = dev.server_cert.read_bytes()
        trusted = data if dev.server_cert.suffix == ".der" else \
            x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
        if trusted != current:
            raise TrustError(f"device {dev.name!r}: {dev.url} presents certificate {_fingerprint(current)}, not "
                             f"the trusted {dev.server_cert} ({_fingerprint(trusted)})")
        pin = dev.server_cert if dev.server_cert.suffix == ".der" else None
    else:
        pin = None
    if pin is None:
        folder = state_dir / "opcua" / "pki" / "trusted"
        folder.mkdir(parents=True, exist_ok=True)
        pin = folder / f"{dev.name}.der"
        if dev.server_cert is None and pin.exists() and pin.read_bytes() != current:
            raise TrustError(f"device {dev.name!r}: the server certificate of {dev.url} changed: pinned "
                             f"{_fingerprint(pin.read_bytes())} at first use in {pin}, now {_fingerprint(current)}. "
                             "If it was replaced on purpose, delete the pin file or set server_cert.")
        if not pin.exists() or dev.server_cert is not None:
            if dev.server_cert is None:
                log.warning("device %s: trusting %s's certificate %s on first use (pinned in %s)", dev.name,
                            dev.url, _fingerprint(current), pin)
            pin.write_bytes(current)
    return pin


class LoginRefused(CollectorError):
    """The server refused the user name and password, or the user certificate."""


async def open_session(cfg: OpcUaEndpointConfig, state_dir: Path, environ: Mapping[str, str]) -> Client:
    """A connected client with the endpoint's security policy and mode, trust and login.

    CollectorError when a setting cannot be used (a password variable that is not set, a client certificate
    without its URI, no matching endpoint), TrustError for a server certificate that is not the trusted one,
    LoginRefused for a refused login; whatever the network does (OSError, TimeoutError, ua.UaError) passes through.
    """
    # asyncua's watchdog reads the server state every second by default and gives up after one second: a server (or
    # a gateway) busy with 10,000 notifications a second misses that and every subscription is torn down. The
    # device's timeout is the limit the engineer chose; the collector's own loops also check the server each period.
    client = Client(cfg.url, timeout=cfg.timeout_s, watchdog_intervall=max(float(cfg.timeout_s), 1.0))
    client.name = "energy-gateway"
    client.session_timeout = 600_000  # what servers commonly grant; asking for more only logs a warning
    if cfg.security_policy != "None":
        cert, key, uri = await client_certificate(cfg, state_dir)
        server = await trusted_server_certificate(cfg, state_dir, cfg.timeout_s)
        client.application_uri = uri
        await client.set_security(SecurityPolicyBasic256Sha256, str(cert), str(key),
                                  server_certificate=str(server),
                                  mode=getattr(ua.MessageSecurityMode, cfg.security_mode))
    if cfg.user_certificate is not None and cfg.user_private_key is not None:
        await client.load_client_certificate(str(cfg.user_certificate))
        await client.load_private_key(cfg.user_private_key)
    if cfg.username is not None:
        password = environ.get(cfg.password_env or "")
        if password is None:
            raise CollectorError(f"device {cfg.name!r}: environment variable {cfg.password_env} is not set")
        client.set_user(cfg.username)
        client.set_password(password)
    try:
        await client.connect()
    except ua.uaerrors.BadUserAccessDenied:
        raise LoginRefused(f"device {cfg.name!r}: {cfg.url} refused user {cfg.username!r} (wrong "
                           "password, or the user may not log in)") from None
    except (ua.uaerrors.BadIdentityTokenInvalid, ua.uaerrors.BadIdentityTokenRejected):
        raise LoginRefused(f"device {cfg.name!r}: {cfg.url} refused the login ({cfg.who})") from None
    return client
