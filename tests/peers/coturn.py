"""Start coturn (Debian ``coturn``, ``turnserver``) on 127.0.0.1 for one trio test.

    async with run_coturn(tmp_path) as server:
        server.stun_address  # ("127.0.0.1", port): STUN and TURN over UDP and TCP
        server.username, server.password, server.realm  # long-term credentials (RFC 8489 9.2)

    async with run_coturn(tmp_path, ipv6=True) as server:
        server.turn_address_v6  # ("::1", port): the same server on IPv6 loopback, relaying there

    async with run_coturn(tmp_path, tls=True) as server:
        server.tls_address  # ("127.0.0.1", port): TURN over TLS (turns:)
        server.certificate_path  # its self-signed certificate (for 127.0.0.1), to trust

Each run gets its own listening port and its own relay port range, so parallel test runs do not
share a server. Readiness is a real STUN Binding transaction with the server, not a sleep. The
server is stopped by its pid when the block is left, also on error or cancellation; its log file
stays in ``tmp_path`` and is attached as a note to an exception leaving the block.

The small STUN helpers here are hand-written on purpose: they check coturn independently of
``trio_rtc.stun``, the code the interop tests are meant to judge.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import struct
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio
import trio.lowlevel

HOST = "127.0.0.1"
HOST_V6 = "::1"
MAGIC_COOKIE = 0x2112A442
BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
XOR_MAPPED_ADDRESS = 0x0020
# Relay ports are taken from below Linux's default ephemeral range (32768-60999), so they do not
# collide with sockets the kernel hands out; each run picks its own window at random.
RELAY_WINDOW = 100
RELAY_LOW, RELAY_HIGH = 20000, 32700
LOG_TAIL = 64 * 1024


class CoturnError(Exception):
    """turnserver is missing, did not start, or did not answer STUN."""


@dataclass(frozen=True)
class CoturnServer:
    stun_address: tuple[str, int]
    username: str
    password: str
    realm: str
    relay_ports: tuple[int, int]
    log_path: Path
    pid: int
    tls_address: tuple[str, int] | None = None
    certificate_path: Path | None = None
    turn_address_v6: tuple[str, int] | None = None

    @property
    def turn_address(self) -> tuple[str, int]:
        """Same transport address as STUN: coturn serves both on its listening port."""
        return self.stun_address

    def read_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"<cannot read {self.log_path}: {exc}>"


def binding_request(transaction_id: bytes) -> bytes:
    """A bare 20-byte STUN Binding request (RFC 8489 section 5: header only, no attributes)."""
    assert len(transaction_id) == 12
    return struct.pack("!HHI", BINDING_REQUEST, 0, MAGIC_COOKIE) + transaction_id


def parse_binding_success(data: bytes, transaction_id: bytes) -> tuple[str, int]:
    """The XOR-MAPPED-ADDRESS of a Binding success response (RFC 8489 section 14.2).

    Raises ValueError when ``data`` is anything else.
    """
    if len(data) < 20:
        raise ValueError("shorter than a STUN header")
    message_type, length, cookie = struct.unpack_from("!HHI", data)
    if message_type != BINDING_SUCCESS or cookie != MAGIC_COOKIE:
        raise ValueError(f"not a Binding success response: type {message_type:#06x}")
    if data[8:20] != transaction_id:
        raise ValueError("transaction ID does not match")
    if 20 + length > len(data):
        raise ValueError("truncated")
    offset = 20
    while offset + 4 <= 20 + length:
        attr_type, attr_length = struct.unpack_from("!HH", data, offset)
        value = data[offset + 4 : offset + 4 + attr_length]
        if attr_type == XOR_MAPPED_ADDRESS and len(value) >= 8:
            family = value[1]
            port = struct.unpack_from("!H", value, 2)[0] ^ (MAGIC_COOKIE >> 16)
            if family == 0x01:
                address = bytes(
                    a ^ b for a, b in zip(value[4:8], struct.pack("!I", MAGIC_COOKIE), strict=True)
                )
                return socket.inet_ntop(socket.AF_INET, address), port
            if family == 0x02 and len(value) >= 20:
                key = struct.pack("!I", MAGIC_COOKIE) + transaction_id
                address = bytes(a ^ b for a, b in zip(value[4:20], key, strict=True))
                return socket.inet_ntop(socket.AF_INET6, address), port
            raise ValueError(f"bad XOR-MAPPED-ADDRESS family {family}")
        # Attributes are padded to a multiple of 4 bytes (RFC 8489 section 14).
        offset += 4 + attr_length + (-attr_length % 4)
    raise ValueError("no XOR-MAPPED-ADDRESS")


async def stun_binding(server: tuple[str, int], *, retransmit: float = 0.1) -> tuple[str, int]:
    """One Binding transaction over UDP from an ephemeral loopback port; returns the mapping.

    Retransmits every ``retransmit`` seconds until answered: bound it with ``trio.fail_after``.
    """
    transaction_id = os.urandom(12)
    request = binding_request(transaction_id)
    with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        await sock.bind((HOST, 0))
        while True:
            await sock.sendto(request, server)
            with trio.move_on_after(retransmit):
                while True:
                    try:
                        data = await sock.recv(2048)
                    except ConnectionRefusedError:
                        # ICMP port unreachable: nobody listens yet; retransmit later.
                        break
                    try:
                        return parse_binding_success(data, transaction_id)
                    except ValueError:
                        continue
            await trio.lowlevel.checkpoint()


def free_port(*, ipv6: bool = False) -> int:
    """A loopback port free for both UDP and TCP right now (coturn listens on both), on
    ::1 too with ``ipv6``."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((HOST, 0))
            port: int = udp.getsockname()[1]
            others = [(socket.AF_INET, socket.SOCK_STREAM, HOST)]
            if ipv6:
                others += [
                    (socket.AF_INET6, socket.SOCK_DGRAM, HOST_V6),
                    (socket.AF_INET6, socket.SOCK_STREAM, HOST_V6),
                ]
            try:
                for family, kind, host in others:
                    with socket.socket(family, kind) as other:
                        other.bind((host, port))
            except OSError:
                continue
            return port
    raise CoturnError("no free loopback port for both UDP and TCP")


def write_certificate(run_dir: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (an IP subjectAltName) and its key, as PEM files
    in ``run_dir``: what coturn serves TLS with and what a test trusts."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trio_rtc test TURN server")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certificate_path = run_dir / "turn-cert.pem"
    key_path = run_dir / "turn-key.pem"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certificate_path, key_path


def turnserver_command(
    port: int,
    relay_ports: tuple[int, int],
    username: str,
    password: str,
    realm: str,
    run_dir: Path,
    tls: tuple[int, Path, Path] | None = None,
    ipv6: bool = False,
) -> list[str]:
    """``tls``: (port, certificate, key) to listen for TLS on as well; ``ipv6``: listen and
    relay on ::1 as well."""
    executable = shutil.which("turnserver")
    if executable is None:
        raise CoturnError(
            "turnserver is not installed: the coturn interop tests need the Debian package "
            "`coturn` (`bash .ci/setup` installs it when run as root, or `apt-get install coturn`)"
        )
    return [
        executable,
        "-n",  # no configuration file: everything is on this command line
        f"--listening-ip={HOST}",
        f"--relay-ip={HOST}",
        *([f"--listening-ip={HOST_V6}", f"--relay-ip={HOST_V6}"] if ipv6 else []),
        f"--listening-port={port}",
        "--lt-cred-mech",
        f"--user={username}:{password}",
        f"--realm={realm}",
        *(
            ["--no-tls"]
            if tls is None
            else [f"--tls-listening-port={tls[0]}", f"--cert={tls[1]}", f"--pkey={tls[2]}"]
        ),
        "--no-dtls",
        "--no-cli",
        "--fingerprint",
        # Loopback relay peers are refused by default (ChannelBind gets 403 Forbidden IP).
        "--allow-loopback-peers",
        "--no-multicast-peers",
        f"--min-port={relay_ports[0]}",
        f"--max-port={relay_ports[1]}",
        f"--pidfile={run_dir / 'turnserver.pid'}",
        # Its own user database file, so nothing is written under /var.
        f"--userdb={run_dir / 'turndb'}",
        "--log-file=stdout",
        "--simple-log",
        "--verbose",
    ]


@asynccontextmanager
async def run_coturn(
    tmp_path: Path,
    *,
    username: str = "test",
    password: str = "secret",
    realm: str = "test.local",
    startup_timeout: float = 5.0,
    tls: bool = False,
    ipv6: bool = False,
) -> AsyncIterator[CoturnServer]:
    """Run turnserver on 127.0.0.1 for the duration of the block (see the module docstring)."""
    run_dir = tmp_path / "coturn"
    run_dir.mkdir(parents=True, exist_ok=True)
    port = free_port(ipv6=ipv6)
    low = random.randrange(RELAY_LOW, RELAY_HIGH - RELAY_WINDOW)
    relay_ports = (low, low + RELAY_WINDOW - 1)
    tls_settings: tuple[int, Path, Path] | None = None
    if tls:
        certificate_path, key_path = write_certificate(run_dir)
        tls_settings = (free_port(), certificate_path, key_path)
    command = turnserver_command(
        port, relay_ports, username, password, realm, run_dir, tls_settings, ipv6
    )
    log_path = run_dir / "turnserver.log"
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        process = await trio.lowlevel.open_process(
            command, stdin=subprocess.DEVNULL, stdout=log_fd, stderr=subprocess.STDOUT
        )
    finally:
        os.close(log_fd)
    server = CoturnServer(
        stun_address=(HOST, port),
        username=username,
        password=password,
        realm=realm,
        relay_ports=relay_ports,
        log_path=log_path,
        pid=process.pid,
        tls_address=None if tls_settings is None else (HOST, tls_settings[0]),
        certificate_path=None if tls_settings is None else tls_settings[1],
        turn_address_v6=(HOST_V6, port) if ipv6 else None,
    )
    try:
        with trio.move_on_after(startup_timeout) as startup:
            await _wait_ready(process, server)
        if startup.cancelled_caught:
            raise CoturnError(
                f"turnserver did not answer a STUN Binding request within {startup_timeout} s"
            )
        yield server
    except Exception as exc:
        exc.add_note(f"turnserver log ({log_path}):\n{_tail(server.read_log())}")
        raise
    finally:
        with trio.CancelScope(shield=True):
            await _stop(process)


async def _wait_ready(process: trio.Process, server: CoturnServer) -> None:
    """Return once a Binding transaction succeeds; raise if turnserver exits first."""
    while process.poll() is None:
        with trio.move_on_after(0.2):
            await stun_binding(server.stun_address, retransmit=0.05)
            break
    else:
        raise CoturnError(f"turnserver exited with status {process.returncode} while starting")
    while server.tls_address is not None:
        # The TLS listener accepts a TCP connection (the handshake is the test's business).
        try:
            stream = await trio.open_tcp_stream(*server.tls_address)
        except OSError:
            if process.poll() is not None:
                raise CoturnError(
                    f"turnserver exited with status {process.returncode} while starting"
                ) from None
            await trio.sleep(0.02)
        else:
            await stream.aclose()
            return


async def _stop(process: trio.Process) -> None:
    """SIGTERM, then SIGKILL after 2 s; always reaps the process."""
    if process.returncode is None:
        process.terminate()
        with trio.move_on_after(2):
            await process.wait()
    if process.returncode is None:
        process.kill()
    await process.wait()


def _tail(text: str) -> str:
    return text[-LOG_TAIL:]
