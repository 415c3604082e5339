"""The signing authority: created once and kept encrypted, imported with checks, issuing signers."""

from __future__ import annotations

import hashlib
import multiprocessing
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from server.reports.authority import (
    Authority,
    SigningAuthorityError,
    fingerprint,
    import_authority,
    issue_identity,
    load_identity_key,
    load_or_create_authority,
)

SECRET = b"deployment secret key for the tests, 32+ bytes"


def _create_in(directory: str, barrier: object, results: object) -> None:
    """A child process: wait for the others, then load or create the CA; report its fingerprint."""
    barrier.wait()  # type: ignore[attr-defined]
    authority = load_or_create_authority(directory=Path(directory), secret=SECRET)
    results.put(fingerprint(authority.certificate_pem))  # type: ignore[attr-defined]


def external_ca(
    *,
    ca: bool = True,
    key_cert_sign: bool = True,
    not_after: datetime | None = None,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None = None,
) -> tuple[x509.Certificate, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey]:
    """A CA made elsewhere (RSA-2048 unless a key is given), with the properties asked for."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hospital Group Root CA")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=30))
        .not_valid_after(not_after or now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not key_cert_sign,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=key_cert_sign,
                crl_sign=key_cert_sign,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, password: bytes | None) -> bytes:
    """A key as PKCS#8 PEM, encrypted when a password is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def test_created_once_then_loaded(tmp_path: Path) -> None:
    directory = tmp_path / "signing"
    first = load_or_create_authority(directory=directory, secret=SECRET)
    again = load_or_create_authority(directory=directory, secret=SECRET)
    assert again.certificate == first.certificate
    assert again.certificate_pem == (directory / "ca.pem").read_bytes()
    assert first.certificate.subject.rfc4514_string() == "CN=Doorstep Reporting CA"
    constraints = first.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    usage = first.certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    assert usage.crl_sign
    assert not usage.digital_signature
    first.certificate.verify_directly_issued_by(first.certificate)
    assert isinstance(first.private_key, ec.EllipticCurvePrivateKey)


def test_key_is_encrypted_and_private(tmp_path: Path) -> None:
    directory = tmp_path / "signing"
    load_or_create_authority(directory=directory, secret=SECRET)
    key_file = directory / "ca-key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    with pytest.raises(ValueError, match=r"Bad decrypt|Incorrect password|could not"):
        serialization.load_pem_private_key(key_file.read_bytes(), password=SECRET)


def test_a_changed_secret_is_named(tmp_path: Path) -> None:
    directory = tmp_path / "signing"
    load_or_create_authority(directory=directory, secret=SECRET)
    with pytest.raises(SigningAuthorityError) as raised:
        load_or_create_authority(directory=directory, secret=b"another deployment secret key")
    assert raised.value.message == (
        "the signing CA key cannot be decrypted with this deployment's secret key"
    )


def test_mismatched_or_damaged_files_are_named(tmp_path: Path) -> None:
    one = tmp_path / "one"
    two = tmp_path / "two"
    load_or_create_authority(directory=one, secret=SECRET)
    load_or_create_authority(directory=two, secret=SECRET)
    (one / "ca.pem").write_bytes((two / "ca.pem").read_bytes())
    with pytest.raises(SigningAuthorityError, match="does not belong to"):
        load_or_create_authority(directory=one, secret=SECRET)
    (one / "ca.pem").write_bytes(b"not a certificate")
    with pytest.raises(SigningAuthorityError, match="is not a PEM certificate"):
        load_or_create_authority(directory=one, secret=SECRET)
    (two / "ca-key.pem").unlink()
    with pytest.raises(SigningAuthorityError, match="cannot be read"):
        load_or_create_authority(directory=two, secret=SECRET)


def test_two_processes_creating_at_once_end_with_one_ca(tmp_path: Path) -> None:
    directory = tmp_path / "signing"
    context = multiprocessing.get_context("spawn")
    count = 4
    barrier = context.Barrier(count)
    results = context.Queue()
    processes = [
        context.Process(target=_create_in, args=(str(directory), barrier, results))
        for _ in range(count)
    ]
    for process in processes:
        process.start()
    fingerprints = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert len(set(fingerprints)) == 1
    assert fingerprints[0] == fingerprint((directory / "ca.pem").read_bytes())
    assert sorted(p.name for p in directory.iterdir()) == [".lock", "ca-key.pem", "ca.pem"]


def test_identity_certificate(tmp_path: Path) -> None:
    authority = load_or_create_authority(directory=tmp_path / "signing", secret=SECRET)
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    identity = issue_identity(
        authority=authority,
        username="dr.heart",
        display_name="Dr Hart",
        organisation="City Hospital",
        secret=SECRET,
        now=now,
    )
    certificate = x509.load_pem_x509_certificate(identity.certificate_pem)
    subject = certificate.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Dr Hart"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "City Hospital"
    assert subject.get_attributes_for_oid(NameOID.USER_ID)[0].value == "dr.heart"
    assert certificate.issuer == authority.certificate.subject
    certificate.verify_directly_issued_by(authority.certificate)
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert usage.value.content_commitment
    assert not usage.value.key_cert_sign
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is False
    aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = authority.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert aki.key_identifier == ca_ski.value.digest
    ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(certificate.public_key())
    assert certificate.not_valid_after_utc - now == timedelta(days=825)
    assert certificate.not_valid_before_utc <= now
    assert identity.key_pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    key = load_identity_key(identity=identity, secret=SECRET)
    assert key.public_key() == certificate.public_key()
    with pytest.raises(SigningAuthorityError, match="cannot be decrypted"):
        load_identity_key(identity=identity, secret=b"another deployment secret key")
    der = certificate.public_bytes(serialization.Encoding.DER)
    assert fingerprint(identity.certificate_pem) == hashlib.sha256(der).hexdigest()


def test_import_of_a_real_ca(tmp_path: Path) -> None:
    certificate, key = external_ca()
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    directory = tmp_path / "signing"
    imported = import_authority(
        directory=directory,
        certificate_pem=pem,
        key_pem=_pem(key, b"operator password"),
        key_password=b"operator password",
        secret=SECRET,
    )
    assert imported.certificate == certificate
    loaded = load_or_create_authority(directory=directory, secret=SECRET)
    assert loaded.certificate == certificate
    assert (directory / "ca-key.pem").read_bytes().startswith(b"-----BEGIN ENCRYPTED")
    identity = issue_identity(
        authority=loaded, username="u", display_name="U", organisation="O", secret=SECRET
    )
    x509.load_pem_x509_certificate(identity.certificate_pem).verify_directly_issued_by(certificate)


def test_import_refuses_to_overwrite_unless_replace(tmp_path: Path) -> None:
    directory = tmp_path / "signing"
    own = load_or_create_authority(directory=directory, secret=SECRET)
    certificate, key = external_ca()
    arguments = {
        "directory": directory,
        "certificate_pem": certificate.public_bytes(serialization.Encoding.PEM),
        "key_pem": _pem(key, None),
        "key_password": None,
        "secret": SECRET,
    }
    with pytest.raises(SigningAuthorityError, match="already exists"):
        import_authority(**arguments)  # type: ignore[arg-type]
    assert load_or_create_authority(directory=directory, secret=SECRET).certificate == (
        own.certificate
    )
    import_authority(**arguments, replace=True)  # type: ignore[arg-type]
    assert load_or_create_authority(directory=directory, secret=SECRET).certificate == certificate


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: external_ca(ca=False), "not a CA certificate"),
        (lambda: external_ca(key_cert_sign=False), "keyCertSign"),
        (
            lambda: external_ca(not_after=datetime.now(UTC) - timedelta(days=1)),
            "not valid now",
        ),
        (
            lambda: (external_ca()[0], ec.generate_private_key(ec.SECP256R1())),
            "does not belong to the CA certificate",
        ),
    ],
    ids=["not-a-ca", "no-keyCertSign", "expired", "key-not-matching"],
)
def test_import_refuses_what_is_no_usable_ca(
    tmp_path: Path,
    make: object,
    message: str,
) -> None:
    certificate, key = make()  # type: ignore[operator]
    with pytest.raises(SigningAuthorityError, match=message):
        import_authority(
            directory=tmp_path / "signing",
            certificate_pem=certificate.public_bytes(serialization.Encoding.PEM),
            key_pem=_pem(key, None),
            key_password=None,
            secret=SECRET,
        )
    assert not (tmp_path / "signing" / "ca.pem").exists()


def test_import_names_a_wrong_key_password(tmp_path: Path) -> None:
    certificate, key = external_ca()
    with pytest.raises(SigningAuthorityError, match="cannot be read"):
        import_authority(
            directory=tmp_path / "signing",
            certificate_pem=certificate.public_bytes(serialization.Encoding.PEM),
            key_pem=_pem(key, b"right"),
            key_password=b"wrong",
            secret=SECRET,
        )


def test_authority_is_frozen(tmp_path: Path) -> None:
    authority = load_or_create_authority(directory=tmp_path / "signing", secret=SECRET)
    assert isinstance(authority, Authority)
    with pytest.raises(AttributeError):
        authority.certificate = authority.certificate  # type: ignore[misc]
