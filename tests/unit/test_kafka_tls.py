"""TLS to the broker: KafkaSettings builds the SSL context aiokafka needs and names a wrong setting."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr, ValidationError

from router.config import Settings as RouterSettings
from switchboard.config import KafkaSettings

KEY_PASSWORD = "key-password-for-tests"


@dataclass(frozen=True)
class Pki:
    """A test CA, a server certificate for `localhost` and a client certificate (plain and encrypted key)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_key_encrypted: Path


def make_pki(directory: Path) -> Pki:
    """Generate the test PKI with the `cryptography` package, else the `openssl` command; else skip."""
    try:
        import cryptography  # noqa: F401
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip("neither the cryptography package nor the openssl command is available")
        return _pki_with_openssl(directory)
    return _pki_with_cryptography(directory)


def _pki_with_cryptography(directory: Path) -> Pki:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("switchboard test CA"))
        .issuer_name(name("switchboard test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(common: str, sans: list[x509.GeneralName]) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(common))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), key

    def key_pem(key: ec.EllipticCurvePrivateKey, password: str | None = None) -> bytes:
        encryption = (
            serialization.BestAvailableEncryption(password.encode())
            if password
            else serialization.NoEncryption()
        )
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)

    server_pem, server_key = leaf("localhost", [x509.DNSName("localhost")])
    client_pem, client_key = leaf("switchboard", [])
    pki = _paths(directory)
    pki.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.server_cert.write_bytes(server_pem)
    pki.server_key.write_bytes(key_pem(server_key))
    pki.client_cert.write_bytes(client_pem)
    pki.client_key.write_bytes(key_pem(client_key))
    pki.client_key_encrypted.write_bytes(key_pem(client_key, KEY_PASSWORD))
    return pki


def _pki_with_openssl(directory: Path) -> Pki:
    pki = _paths(directory)

    def openssl(*args: str | Path) -> None:
        command = ["openssl", *map(str, args)]
        subprocess.run(command, check=True, capture_output=True, cwd=directory, timeout=60)

    curve = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    ca_key = directory / "ca.key"
    openssl(
        "req", "-x509", *curve, "-keyout", ca_key, "-out", pki.ca, "-days", "1",
        "-subj", "/CN=switchboard test CA",
    )  # fmt: skip
    for common, cert, key, extensions in (
        ("localhost", pki.server_cert, pki.server_key, "subjectAltName=DNS:localhost\n"),
        ("switchboard", pki.client_cert, pki.client_key, "basicConstraints=CA:FALSE\n"),
    ):
        request = directory / f"{common}.csr"
        extfile = directory / f"{common}.ext"
        extfile.write_text(extensions)
        openssl("req", *curve, "-keyout", key, "-out", request, "-subj", f"/CN={common}")
        openssl(
            "x509", "-req", "-in", request, "-CA", pki.ca, "-CAkey", ca_key, "-CAcreateserial",
            "-out", cert, "-days", "1", "-extfile", extfile,
        )  # fmt: skip
    openssl(
        "pkey", "-in", pki.client_key, "-out", pki.client_key_encrypted, "-aes256",
        "-passout", f"pass:{KEY_PASSWORD}",
    )  # fmt: skip
    return pki


def _paths(directory: Path) -> Pki:
    return Pki(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        client_key_encrypted=directory / "client.enc.key",
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@asynccontextmanager
async def tls_server(pki: Pki) -> AsyncIterator[int]:
    """A TLS server on localhost presenting the test server certificate; yields its port."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def handshake(context: ssl.SSLContext, port: int, server_hostname: str) -> None:
    """Open a TLS connection to the test server with `context`; raise what the handshake raises."""
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname=server_hostname)
    writer.close()
    try:
        await writer.wait_closed()
    except (ConnectionError, ssl.SSLError):
        pass


def test_plaintext_clients_get_no_ssl_context():
    assert "ssl_context" not in KafkaSettings().client_options()
    assert "ssl_context" not in KafkaSettings(security_protocol="SASL_PLAINTEXT").client_options()


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_ssl_and_sasl_ssl_clients_get_a_context_that_trusts_the_configured_ca(pki: Pki, protocol: str):
    options = KafkaSettings(security_protocol=protocol, ssl_cafile=str(pki.ca)).client_options()
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    subjects = [dict(item[0] for item in ca["subject"]) for ca in context.get_ca_certs()]
    assert {"commonName": "switchboard test CA"} in subjects


def test_without_a_ca_file_the_system_cas_are_trusted():
    context = KafkaSettings(security_protocol="SSL").client_options()["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED


async def test_the_context_verifies_the_broker_against_the_ca_and_its_hostname(pki: Pki):
    checked = KafkaSettings(security_protocol="SSL", ssl_cafile=str(pki.ca)).ssl_context()
    unchecked = KafkaSettings(
        security_protocol="SSL", ssl_cafile=str(pki.ca), ssl_check_hostname=False
    ).ssl_context()
    untrusting = KafkaSettings(security_protocol="SSL").ssl_context()
    async with tls_server(pki) as port:
        await handshake(checked, port, "localhost")
        with pytest.raises(ssl.SSLCertVerificationError, match="match"):
            await handshake(checked, port, "broker.example.com")
        await handshake(unchecked, port, "broker.example.com")
        with pytest.raises(ssl.SSLCertVerificationError):
            await handshake(untrusting, port, "localhost")


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_every_client_takes_sasl_ssl_with_each_supported_mechanism(pki: Pki, mechanism: str):
    kafka = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism=mechanism,
        sasl_username="switchboard",
        sasl_password=SecretStr("s3cret"),
        ssl_cafile=str(pki.ca),
    )
    options = kafka.client_options()
    assert options["sasl_mechanism"] == mechanism
    assert options["sasl_plain_username"] == "switchboard"
    assert options["sasl_plain_password"] == "s3cret"
    # Constructing each client is where aiokafka refused SSL without a context.
    producer = AIOKafkaProducer(**options)
    await producer.stop()
    consumer = AIOKafkaConsumer(**options)
    await consumer.stop()
    admin = AIOKafkaAdminClient(**options)
    await admin.close()


def test_a_client_certificate_and_its_encrypted_key_are_loaded_with_the_key_password(pki: Pki):
    for key, password in ((pki.client_key, None), (pki.client_key_encrypted, SecretStr(KEY_PASSWORD))):
        context = KafkaSettings(
            security_protocol="SSL",
            ssl_cafile=str(pki.ca),
            ssl_certfile=str(pki.client_cert),
            ssl_keyfile=str(key),
            ssl_key_password=password,
        ).ssl_context()
        assert isinstance(context, ssl.SSLContext)


def test_an_encrypted_key_without_its_password_fails_naming_the_password_setting(pki: Pki):
    with pytest.raises(ValidationError, match="SWITCHBOARD_KAFKA_SSL_KEY_PASSWORD"):
        KafkaSettings(
            security_protocol="SSL",
            ssl_certfile=str(pki.client_cert),
            ssl_keyfile=str(pki.client_key_encrypted),
        )
    with pytest.raises(ValidationError, match="SWITCHBOARD_KAFKA_SSL_KEY_PASSWORD"):
        KafkaSettings(
            security_protocol="SSL",
            ssl_certfile=str(pki.client_cert),
            ssl_keyfile=str(pki.client_key_encrypted),
            ssl_key_password=SecretStr("not the password"),
        )


def test_a_bad_ca_path_fails_at_startup_naming_the_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("SWITCHBOARD_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("SWITCHBOARD_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("SWITCHBOARD_KAFKA_SSL_CAFILE", str(tmp_path / "missing-ca.pem"))
    with pytest.raises(ValidationError, match=r"SWITCHBOARD_KAFKA_SSL_CAFILE=\S*missing-ca\.pem: no"):
        RouterSettings()
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("this is not a certificate\n")
    monkeypatch.setenv("SWITCHBOARD_KAFKA_SSL_CAFILE", str(not_pem))
    with pytest.raises(ValidationError, match=r"SWITCHBOARD_KAFKA_SSL_CAFILE=.*not a PEM file of CA"):
        RouterSettings()


def test_a_missing_client_certificate_or_key_is_named(pki: Pki, tmp_path: Path):
    with pytest.raises(ValidationError, match="SWITCHBOARD_KAFKA_SSL_CERTFILE="):
        KafkaSettings(security_protocol="SSL", ssl_certfile=str(tmp_path / "nope.pem"))
    with pytest.raises(ValidationError, match="SWITCHBOARD_KAFKA_SSL_KEYFILE is set without"):
        KafkaSettings(security_protocol="SSL", ssl_keyfile=str(pki.client_key))


def test_tls_files_are_not_read_without_tls(tmp_path: Path):
    options = KafkaSettings(ssl_cafile=str(tmp_path / "missing-ca.pem")).client_options()
    assert "ssl_context" not in options


def test_empty_tls_settings_are_unset(monkeypatch: pytest.MonkeyPatch):
    for name in ("CAFILE", "CERTFILE", "KEYFILE", "KEY_PASSWORD"):
        monkeypatch.setenv(f"SWITCHBOARD_KAFKA_SSL_{name}", " ")
    monkeypatch.setenv("SWITCHBOARD_KAFKA_SECURITY_PROTOCOL", "SSL")
    kafka = KafkaSettings()
    assert (kafka.ssl_cafile, kafka.ssl_certfile, kafka.ssl_keyfile, kafka.ssl_key_password) == (None,) * 4
    assert isinstance(kafka.client_options()["ssl_context"], ssl.SSLContext)
