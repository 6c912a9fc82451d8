"""A TLS-terminating proxy on loopback with a throwaway CA, for the tools' https tests (issue 13).

What an internal ALB is to the client: TLS with a certificate from a CA the system does not trust, in
front of a plain-HTTP OpenAI-compatible server. The CA and the server certificate (SAN 127.0.0.1 and
localhost) are made with `cryptography` at test time; the proxy is an asyncio loop in a daemon thread
that pipes bytes both ways. `with tls_proxy(upstream_port, tmp_dir) as proxy:` stops it on exit.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from config.names import LOCALHOST


@dataclass(frozen=True)
class TlsProxy:
    port: int
    ca_file: Path

    def url(self, path: str = "/v1") -> str:
        return f"https://{LOCALHOST}:{self.port}{path}"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca_and_cert(out: Path) -> tuple[Path, Path, Path]:
    """(ca.pem, server.pem, server.key) in `out`: a CA and a server certificate it signed."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("test CA")).issuer_name(_name("test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(hours=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(LOCALHOST)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOCALHOST)),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = out / "ca.pem", out / "server.pem", out / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


@contextmanager
def tls_proxy(upstream_port: int, workdir: Path) -> Iterator[TlsProxy]:
    ca_file, cert_file, key_file = make_ca_and_cert(workdir)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # as the ALB's TLS13-1-2 policy
    context.load_cert_chain(cert_file, key_file)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict = {}

    async def handle(client_reader, client_writer):
        try:
            up_reader, up_writer = await asyncio.open_connection(LOCALHOST, upstream_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pipe(client_reader, up_writer), _pipe(up_reader, client_writer))

    async def start():
        holder["server"] = await asyncio.start_server(handle, LOCALHOST, 0, ssl=context)
        started.set()

    def run():
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, name="tls-proxy", daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the TLS proxy did not start")
    server = holder["server"]
    try:
        yield TlsProxy(port=server.sockets[0].getsockname()[1], ca_file=ca_file)
    finally:
        async def stop():
            server.close()
            # Open connections' pipes end here, inside the loop, so none outlives it.
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.wait_closed()
        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
