"""The cluster's certificate authority, certificates and kubeconfigs (``<state>/pki``).

One CA signs every certificate: the API server's serving certificate (node IP, the
``kubernetes`` Service's ClusterIP and DNS names), the kubelet's, and one client certificate
per identity Kubernetes knows by name (``system:kube-controller-manager``,
``system:node:<node>`` in ``system:nodes``, ``system:kube-proxy``...). The service-account
tokens are signed by a separate key. Made once, kept across ``down`` (``--purge`` deletes them).
Keys are ECDSA P-256: fast to make, accepted by every component.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cluster.settings import ClusterSettings

logger = logging.getLogger(__name__)

VALIDITY = datetime.timedelta(days=3650)


@dataclass(frozen=True)
class Identity:
    """A client certificate and the kubeconfig that uses it."""

    name: str            # file stem: <name>.crt, <name>.key, <name>.kubeconfig
    user: str            # the certificate's CN: the user Kubernetes authorizes
    groups: tuple[str, ...] = ()


def identities(settings: ClusterSettings) -> list[Identity]:
    return [
        Identity("admin", "sql-audit-admin", ("system:masters",)),
        Identity("kube-controller-manager", "system:kube-controller-manager"),
        Identity("kube-scheduler", "system:kube-scheduler"),
        Identity("kubelet", f"system:node:{settings.node_name}", ("system:nodes",)),
        Identity("kube-proxy", "system:kube-proxy"),
        Identity("kube-router", "system:kube-router"),  # bound to its ClusterRole by the addons
        Identity("apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("system:masters",)),
    ]


class Pki:
    """Paths of the PKI files; :meth:`ensure` makes whatever is missing."""

    def __init__(self, settings: ClusterSettings) -> None:
        self.settings = settings
        self.dir = settings.state_dir / "pki"

    def path(self, name: str) -> Path:
        return self.dir / name

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    def kubeconfig(self, name: str) -> Path:
        return self.dir / f"{name}.kubeconfig"

    def ensure(self) -> None:
        """Create the CA, the service-account key, every certificate and kubeconfig that is missing."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        s = self.settings
        if not self.ca_cert.exists():
            logger.info("pki: new certificate authority in %s", self.dir)
            key = _new_key()
            name = _name(f"{s.name}-cluster-ca")
            cert = (_builder(name, name, key.public_key())
                    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                    .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                 content_commitment=False, key_encipherment=False,
                                                 data_encipherment=False, key_agreement=False,
                                                 encipher_only=False, decipher_only=False), critical=True)
                    .sign(key, hashes.SHA256()))
            _write_key(self.dir / "ca.key", key)
            self.ca_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        if not (self.dir / "sa.key").exists():
            key = _new_key()
            (self.dir / "sa.pub").write_bytes(key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
            _write_key(self.dir / "sa.key", key)
        dns = ["kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
               "localhost", s.node_name]
        self._serving("apiserver", "kube-apiserver", dns, [s.node_ip, s.api_service_ip, "127.0.0.1"])
        self._serving("node-serving", s.node_name, [s.node_name], [s.node_ip])
        for ident in identities(s):
            self._client(ident)
            if not self.kubeconfig(ident.name).exists():
                server = s.local_api_server if ident.name == "admin" else s.api_server
                self.write_kubeconfig(self.kubeconfig(ident.name), ident.name, server)

    def _ca(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        cert = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
        key = serialization.load_pem_private_key((self.dir / "ca.key").read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cert, key

    def _serving(self, stem: str, cn: str, dns: list[str], ips: list[str]) -> None:
        if (self.dir / f"{stem}.crt").exists():
            return
        ca, ca_key = self._ca()
        key = _new_key()
        san = x509.SubjectAlternativeName([*(x509.DNSName(d) for d in dns),
                                           *(x509.IPAddress(ipaddress.ip_address(i)) for i in ips)])
        cert = (_builder(_name(cn), ca.subject, key.public_key())
                .add_extension(san, critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        _write_key(self.dir / f"{stem}.key", key)
        (self.dir / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def _client(self, ident: Identity) -> None:
        if (self.dir / f"{ident.name}.crt").exists():
            return
        ca, ca_key = self._ca()
        key = _new_key()
        cert = (_builder(_name(ident.user, ident.groups), ca.subject, key.public_key())
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        _write_key(self.dir / f"{ident.name}.key", key)
        (self.dir / f"{ident.name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def write_kubeconfig(self, path: Path, identity: str, server: str, namespace: str = "default") -> Path:
        """A kubeconfig for ``identity``'s client certificate at ``server``, context ``<cluster name>``."""
        context = self.settings.name
        doc = {
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": context, "cluster": {"server": server,
                                                       "certificate-authority": str(self.ca_cert)}}],
            "users": [{"name": identity, "user": {"client-certificate": str(self.dir / f"{identity}.crt"),
                                                  "client-key": str(self.dir / f"{identity}.key")}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": identity,
                                                       "namespace": namespace}}],
        }
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        path.chmod(0o600)
        return path


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str, groups: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALIDITY))


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.touch(mode=0o600)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
