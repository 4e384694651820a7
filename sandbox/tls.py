"""The sandbox MariaDB's TLS: a private CA and a server certificate, made once and kept in the
state directory (`.sandbox/mariadb/tls/`).

The server certificate names only IP:127.0.0.1, the address the secrets and the dump host use:
nothing in it matches the name `localhost`, so a client that connects by that name and verifies
the host name must refuse it. `make_ca` also serves the tests, which need a second, unrelated CA."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_IP = "127.0.0.1"
CA_DAYS = 3650
SERVER_DAYS = 825
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class ServerTls:
    ca: Path
    cert: Path
    key: Path


def files(tls_dir: Path) -> ServerTls:
    return ServerTls(ca=tls_dir / "ca.pem", cert=tls_dir / "server-cert.pem", key=tls_dir / "server-key.pem")


def ensure(tls_dir: Path, common_name: str = "jram-dumphost sandbox") -> tuple[ServerTls, bool]:
    """The CA and the server certificate in tls_dir, made when missing or about to expire;
    True as the second value when anything was (re)made."""
    tls_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    out = files(tls_dir)
    ca_key_path = tls_dir / "ca-key.pem"
    changed = False
    if not (_valid(out.ca) and ca_key_path.exists()):
        ca_cert, ca_key = make_ca(f"{common_name} CA")
        _write(ca_key_path, _key_pem(ca_key), 0o600)
        _write(out.ca, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
        changed = True
    if changed or not (_valid(out.cert) and out.key.exists() and _issued_by(out.cert, out.ca)):
        ca_cert = x509.load_pem_x509_certificate(out.ca.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        cert, key = _server_cert(ca_cert, ca_key, f"{common_name} MariaDB")
        _write(out.key, _key_pem(key), 0o600)
        _write(out.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        changed = True
    return out, changed


def make_ca(common_name: str, days: int = CA_DAYS) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """A self-signed CA certificate and its key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _server_cert(ca_cert: x509.Certificate, ca_key, common_name: str) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder()
            # The common name is no host name, so that only the subjectAltName decides.
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(SERVER_IP))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def write_ca(path: Path, common_name: str) -> Path:
    """A new CA certificate (its key thrown away) at path: a CA that signed nothing."""
    cert, _ = make_ca(common_name)
    _write(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return path


def _valid(path: Path) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return False
    return cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc) > RENEW_BEFORE


def _issued_by(cert_path: Path, ca_path: Path) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
        cert.verify_directly_issued_by(ca)
    except (OSError, ValueError, TypeError, InvalidSignature):
        return False
    return True


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
