"""TLS material of the secured mode, made with the JDK's keytool on first use: a local certificate authority,
and a broker key pair signed by it for every name a broker is reached by (127.0.0.1 and localhost here; kafka,
kafka-2 and kafka-3 inside compose). Clients trust the authority's certificate (ca.pem, not a secret); the key
store and its password stay in <STACK_HOME>/secrets/tls, readable by the owner only."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pipeline_config.credentials import (
    TLS_CA_PASSWORD,
    TLS_PASSWORD,
    private_dir,
    stack_secrets,
)
from pipeline_config.settings import StackSettings

BROKER_NAMES = "SAN=ip:127.0.0.1,dns:localhost,dns:kafka,dns:kafka-2,dns:kafka-3"
VALIDITY_DAYS = "825"


@dataclass(frozen=True)
class TlsMaterial:
    ca_pem: Path
    keystore: Path  # PKCS12: the broker's key and its chain
    password: str  # of the broker's key store, which the broker reads
    ca_password: str  # of the authority's key store, which only `make up` reads when it signs

    def __repr__(self) -> str:
        return f"TlsMaterial(ca_pem={self.ca_pem}, keystore={self.keystore}, password=<hidden>)"


def tls_dir(settings: StackSettings) -> Path:
    return settings.state_dir / "secrets" / "tls"


def tls_material(settings: StackSettings, java: str = "java") -> TlsMaterial:
    """The CA certificate and the broker key store, created once (`java` locates keytool)."""
    folder = tls_dir(settings)
    secrets = stack_secrets(settings)
    material = TlsMaterial(folder / "ca.pem", folder / "broker.p12", secrets[TLS_PASSWORD], secrets[TLS_CA_PASSWORD])
    private_dir(folder)
    if not (material.ca_pem.exists() and material.keystore.exists()):
        _make(folder, material, str(Path(shutil.which(java) or java).resolve().parent / "keytool"))
    for secret in (folder / "ca.p12", material.keystore):  # 0600 even when made or loosened before
        if secret.exists():
            secret.chmod(0o600)
    return material


def _make(folder: Path, material: TlsMaterial, keytool: str) -> None:
    ca_store, request, signed = folder / "ca.p12", folder / "broker.csr", folder / "broker.crt"
    for stale in (ca_store, request, signed, material.keystore, material.ca_pem):
        stale.unlink(missing_ok=True)
    # Passwords never on a command line. Each key store has its own: the broker's, which the broker reads, and the
    # authority's, which only signing needs.
    store = ["-storetype", "PKCS12", "-storepass:env", "TLS_PASSWORD"]
    ca = ["-storetype", "PKCS12", "-storepass:env", "TLS_CA_PASSWORD"]

    def run(*args: str) -> None:
        result = subprocess.run(
            [keytool, *args],
            capture_output=True,
            text=True,
            env={**os.environ, "TLS_PASSWORD": material.password, "TLS_CA_PASSWORD": material.ca_password},
        )
        if result.returncode != 0:
            raise RuntimeError(f"keytool {args[0]} failed: {result.stdout}{result.stderr}")

    run(
        "-genkeypair",
        "-alias",
        "ca",
        "-keyalg",
        "RSA",
        "-keysize",
        "2048",
        "-validity",
        "3650",
        "-dname",
        "CN=nyc-taxi-pipeline local CA",
        "-ext",
        "bc:c",
        "-keystore",
        str(ca_store),
        *ca,
    )
    run("-exportcert", "-rfc", "-alias", "ca", "-keystore", str(ca_store), "-file", str(material.ca_pem), *ca)
    run(
        "-genkeypair",
        "-alias",
        "broker",
        "-keyalg",
        "RSA",
        "-keysize",
        "2048",
        "-validity",
        VALIDITY_DAYS,
        "-dname",
        "CN=kafka",
        "-ext",
        BROKER_NAMES,
        "-keystore",
        str(material.keystore),
        *store,
    )
    run("-certreq", "-alias", "broker", "-keystore", str(material.keystore), "-file", str(request), *store)
    run(
        "-gencert",
        "-alias",
        "ca",
        "-keystore",
        str(ca_store),
        "-infile",
        str(request),
        "-outfile",
        str(signed),
        "-rfc",
        "-validity",
        VALIDITY_DAYS,
        "-ext",
        BROKER_NAMES,
        "-ext",
        "ku:c=digitalSignature,keyEncipherment",
        "-ext",
        "eku=serverAuth,clientAuth",
        *ca,
    )
    run(
        "-importcert",
        "-noprompt",
        "-alias",
        "ca",
        "-file",
        str(material.ca_pem),
        "-keystore",
        str(material.keystore),
        *store,
    )
    run("-importcert", "-alias", "broker", "-file", str(signed), "-keystore", str(material.keystore), *store)
    for path in (ca_store, material.keystore):
        path.chmod(0o600)
    request.unlink()
