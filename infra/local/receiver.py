#!/usr/bin/env python3
"""Demo HTTPS webhook receiver for local use with `make dev`.

    .venv/bin/python infra/local/receiver.py [--port 8443] [--statuses 500,500,200]
                                             [--secret whsec_... | --secret-file PATH]
                                             [--dir .local/receiver] [--certs-only]

On start it creates (or reuses) a throwaway test CA and a `localhost` / 127.0.0.1
server certificate signed by it in --dir, prints how to point `make dev` at it
(stderr), then serves HTTPS on 127.0.0.1:<port> (with --certs-only it stops there).
Every POST is printed to stdout as one block (time, path, X-Comps-* and webhook-*
headers, body up to 2 KB) and, with --secret or --secret-file, both signatures are
checked:

  * X-Comps-Signature exactly like the user guide's Node.js `verify`: hex
    HMAC-SHA256 keyed with the secret string's UTF-8 bytes over the raw body,
    timing-safe comparison;
  * webhook-signature (Standard Webhooks): `v1,<base64 HMAC-SHA256>` keyed with
    the base64-decoded part after `whsec_`, over
    `webhook-id + "." + webhook-timestamp + "." + body`; the header may carry
    several space-separated signatures, one match is enough.

A request whose signatures do not both verify (or that comes while --secret-file
is missing or empty) is answered 401, as a real receiver refuses it, and its block
says why; a 401 is final (the service does not retry it), so the delivery fails for
good. --secret-file is read again for every request: write the new secret there
after a rotation and the next request is checked with it, no restart.

Other responses follow --statuses per event (header X-Comps-Event-Id): the n-th
accepted request for an event gets the n-th status, the last one repeats. Body:
{"received": true}.

Only the standard library and `cryptography` are used (`standardwebhooks`, if
installed, is imported lazily for an extra cross-check).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Not resolve(): run from a tree of links (make check-readme), its files stay in that tree.
ROOT = Path(os.path.abspath(__file__)).parents[2]
DEFAULT_DIR = ROOT / ".local" / "receiver"
BODY_PRINT_LIMIT = 2048
MAX_BODY = 10 * 1024 * 1024
HANDSHAKE_TIMEOUT = 10.0
STD_WEBHOOKS_TOLERANCE = 5 * 60  # seconds, what Standard Webhooks libraries enforce

CA_CN = "comps-webhooks local test CA"
SERVER_CN = "localhost"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- certs


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _write(path: Path, data: bytes, private: bool = False) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load(cert_path: Path, key_path: Path):
    """(cert, key) if both files exist, parse and belong together, else None."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    pub = lambda k: k.public_bytes(  # noqa: E731
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if pub(cert.public_key()) != pub(key.public_key()):
        return None
    return cert, key


def _still_valid(cert: x509.Certificate, margin: dt.timedelta = dt.timedelta(days=1)) -> bool:
    now = _now()
    return cert.not_valid_before_utc <= now and now + margin < cert.not_valid_after_utc


def _key_usage(signs_certificates: bool) -> x509.KeyUsage:
    """Signing only; a CA also signs certificates and revocation lists."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _make_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "comps-webhooks (local dev)"),
            x509.NameAttribute(NameOID.COMMON_NAME, CA_CN),
        ]
    )
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _make_server(
    ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_CN)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(min(now + dt.timedelta(days=365), ca_cert.not_valid_after_utc))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def ensure_certs(directory: Path) -> dict[str, Path]:
    """Create or reuse ca.pem / ca-key.pem / server.pem / server-key.pem in `directory`.

    The CA is kept as long as it is readable and valid (so a running `make dev`
    that trusts it keeps working); the server certificate is re-issued when it is
    missing, expiring, or not signed by the current CA.
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "ca": directory / "ca.pem",
        "ca_key": directory / "ca-key.pem",
        "server": directory / "server.pem",
        "server_key": directory / "server-key.pem",
    }

    ca = _load(paths["ca"], paths["ca_key"])
    if ca is None or not _still_valid(ca[0], dt.timedelta(days=2)):
        ca_cert, ca_key = _make_ca()
        _write(paths["ca_key"], _key_pem(ca_key), private=True)
        _write(paths["ca"], ca_cert.public_bytes(serialization.Encoding.PEM))
        log(f"created test CA          {paths['ca']}")
        ca_new = True
    else:
        ca_cert, ca_key = ca
        log(f"reusing test CA          {paths['ca']}")
        ca_new = False

    server = None if ca_new else _load(paths["server"], paths["server_key"])
    if server is not None:
        cert = server[0]
        try:
            cert.verify_directly_issued_by(ca_cert)
            ok = _still_valid(cert)
        except Exception:  # wrong issuer / bad signature
            ok = False
        if not ok:
            server = None
    if server is None:
        cert, key = _make_server(ca_cert, ca_key)
        _write(paths["server_key"], _key_pem(key), private=True)
        _write(paths["server"], cert.public_bytes(serialization.Encoding.PEM))
        log(f"created server cert      {paths['server']}")
    else:
        log(f"reusing server cert      {paths['server']}")
    return paths


# ---------------------------------------------------------------------- signatures


def node_hex_decode(s: str) -> bytes:
    """Buffer.from(s, 'hex') semantics: decode pairs of hex digits up to the first
    pair that is not valid hex (a trailing odd digit is dropped)."""
    out = bytearray()
    for i in range(0, len(s) - 1, 2):
        pair = s[i : i + 2]
        if not all(c in "0123456789abcdefABCDEF" for c in pair):
            break
        out.append(int(pair, 16))
    return bytes(out)


def verify_comps_signature(body: bytes, header: str | None, secret: str) -> str:
    """The guide's Node.js verify(): timingSafeEqual(hex(header), hex(hmac))."""
    if header is None:
        return "INVALID (no X-Comps-Signature header)"
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    given = node_hex_decode(header)
    # Node's timingSafeEqual throws on a length mismatch: verify() never returns true.
    if len(given) != len(expected):
        return f"INVALID (decodes to {len(given)} bytes, not {len(expected)})"
    if not hmac.compare_digest(given, expected):
        return "INVALID"
    if header != expected.hex():
        return "valid (but header is not the canonical 64 lowercase hex chars the spec promises)"
    return "valid"


def std_webhooks_key(secret: str) -> bytes | None:
    raw = secret[len("whsec_") :] if secret.startswith("whsec_") else secret
    try:
        return base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def verify_std_webhooks(body: bytes, headers, secret: str) -> str:
    msg_id = headers.get("webhook-id")
    ts = headers.get("webhook-timestamp")
    sig_header = headers.get("webhook-signature")
    missing = [
        n
        for n, v in (("webhook-id", msg_id), ("webhook-timestamp", ts), ("webhook-signature", sig_header))
        if v is None
    ]
    if missing:
        return f"INVALID (missing {', '.join(missing)})"
    key = std_webhooks_key(secret)
    if not key:
        return "INVALID (secret is not whsec_<base64>)"
    expected = hmac.new(key, f"{msg_id}.{ts}.".encode("utf-8") + body, hashlib.sha256).digest()
    matched = False
    for entry in sig_header.split(" "):
        version, _, b64 = entry.partition(",")
        if version != "v1" or not b64:
            continue
        try:
            given = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(given, expected):
            matched = True  # keep looping: constant work regardless of position
    if not matched:
        return "INVALID"
    try:
        age = int(time.time()) - int(ts)
    except ValueError:
        return "valid signature, but webhook-timestamp is not an integer"
    if abs(age) > STD_WEBHOOKS_TOLERANCE:
        return f"valid signature, but timestamp is {age}s old (libraries reject > {STD_WEBHOOKS_TOLERANCE}s)"
    return f"valid (timestamp age {age}s)"


def verify_std_webhooks_library(body: bytes, headers, secret: str) -> str | None:
    """Cross-check with the reference `standardwebhooks` package, if installed."""
    try:
        from standardwebhooks.webhooks import Webhook  # lazy: optional dependency
    except ImportError:
        return None
    wanted = ("webhook-id", "webhook-timestamp", "webhook-signature")
    try:
        Webhook(secret).verify(
            body, {k: headers[k] for k in wanted if headers.get(k) is not None}, json_parse=False
        )
    except Exception as e:  # noqa: BLE001 - report whatever the library says
        return f"INVALID ({type(e).__name__}: {e})"
    return "valid"


def verify_request(body: bytes, headers, secret: str | None, secret_file: Path | None) -> tuple[list[str], str | None]:
    """The report lines on the request's signatures, and why it is refused (None: accepted).

    With neither --secret nor --secret-file nothing is checked and nothing refused."""
    if secret is None and secret_file is None:
        return [], None
    if secret_file is not None:
        try:
            secret = secret_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            secret = ""
        except OSError as e:
            return [f"signature: not checked ({secret_file}: {e})"], f"cannot read {secret_file}: {e}"
        if not secret:
            return (
                [f"signature: not checked ({secret_file} is missing or empty)"],
                f"no secret in {secret_file} yet: write the webhook's secret there",
            )
    assert secret is not None
    comps = verify_comps_signature(body, headers.get("X-Comps-Signature"), secret)
    std = verify_std_webhooks(body, headers, secret)
    lines = [f"signature: {comps}", f"standard-webhooks signature: {std}"]
    lib = verify_std_webhooks_library(body, headers, secret)
    if lib is not None:
        lines.append(f"standard-webhooks (reference library): {lib}")
    hint = " (a rotated secret? give this receiver the new one)"
    if not comps.startswith("valid"):
        return lines, f"X-Comps-Signature: {comps}{hint}"
    if not std.startswith("valid ("):
        return lines, f"webhook-signature: {std}{hint if std.startswith('INVALID') else ''}"
    if lib is not None and lib != "valid":
        return lines, f"webhook-signature (reference library): {lib}"
    return lines, None


# -------------------------------------------------------------------------- server


class Receiver(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        addr,
        ssl_ctx: ssl.SSLContext,
        statuses: list[int],
        secret: str | None,
        secret_file: Path | None = None,
    ):
        super().__init__(addr, Handler)
        self.ssl_ctx = ssl_ctx
        self.statuses = statuses
        self.secret = secret
        self.secret_file = secret_file
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()
        self.print_lock = threading.Lock()

    def finish_request(self, request, client_address):
        # TLS handshake in the per-connection thread (not in accept()), so a
        # stuck or plain-HTTP client cannot block the server.
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            tls = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            log(f"[{client_address[0]}:{client_address[1]}] TLS handshake failed: {e}")
            return
        tls.settimeout(60)
        try:
            super().finish_request(tls, client_address)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError, socket.timeout)):
            log(f"[{client_address[0]}:{client_address[1]}] connection error: {exc}")
        else:
            super().handle_error(request, client_address)

    def next_status(self, key: str) -> tuple[int, int]:
        with self.lock:
            n = self.counts.get(key, 0) + 1
            self.counts[key] = n
        return n, self.statuses[min(n, len(self.statuses)) - 1]


class Handler(BaseHTTPRequestHandler):
    server: Receiver
    protocol_version = "HTTP/1.1"
    server_version = "comps-webhooks-demo-receiver"
    sys_version = ""

    def log_request(self, code="-", size="-"):  # requests are printed by do_POST
        pass

    def log_message(self, format, *args):  # errors only (log_request is silenced)
        log(f"[{self.address_string()}] {format % args}")

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                total += size
                if total > MAX_BODY:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            return None
        return self.rfile.read(length)

    def _reply(self, status: int, payload: bytes | None, extra: dict | None = None) -> None:
        self.send_response(status)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if payload is None or status in (204, 304):
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self):
        received = _now()
        try:
            body = self._read_body()
        except ValueError:
            body = None
        if body is None:
            self.close_connection = True
            self._reply(413, b'{"error": "body too large or malformed"}')
            return

        h = self.headers
        event_id = h.get("X-Comps-Event-Id") or h.get("webhook-id") or "(no event id)"
        checks, refused = verify_request(body, h, self.server.secret, self.server.secret_file)

        lines = [
            "=" * 72,
            f"{received.astimezone().isoformat(timespec='milliseconds')}  POST {self.path}"
            f"  from {self.client_address[0]}",
        ]
        shown = [(k, v) for k, v in h.items() if k.lower().startswith(("x-comps-", "webhook-"))]
        width = max((len(k) for k, _ in shown), default=0)
        lines += [f"  {k + ':':<{width + 1}} {v}" for k, v in shown] or ["  (no X-Comps-* / webhook-* headers)"]
        if h.get("User-Agent"):
            lines.append(f"  {'User-Agent:':<{width + 1}} {h['User-Agent']}")
        if h.get("X-Comps-Event-Id") and h.get("webhook-id") and h["X-Comps-Event-Id"] != h["webhook-id"]:
            lines.append("  note: webhook-id differs from X-Comps-Event-Id (spec: webhook-id = event id)")
        text = body[:BODY_PRINT_LIMIT].decode("utf-8", errors="replace")
        more = f"  ... ({len(body)} bytes total, truncated)" if len(body) > BODY_PRINT_LIMIT else ""
        lines.append(f"body ({len(body)} bytes):")
        lines.append(f"  {text}{more}")
        lines += checks
        if refused is not None:
            lines.append(f"-> 401  refused: {refused}")
            payload = json.dumps({"error": f"signature check failed: {refused}"}).encode()
            status = 401
        else:
            n, status = self.server.next_status(event_id)
            lines.append(f"-> {status}  (request #{n} for {event_id})")
            payload = b'{"received": true}'
        with self.server.print_lock:
            print("\n".join(lines), flush=True)

        self._reply(status, payload)

    def _not_allowed(self):
        self._reply(405, b'{"error": "POST only"}', {"Allow": "POST"})

    do_GET = do_PUT = do_DELETE = do_PATCH = _not_allowed

    def do_HEAD(self):
        self.send_response(405)
        self.send_header("Allow", "POST")
        self.send_header("Content-Length", "0")
        self.end_headers()


# ---------------------------------------------------------------------------- main


def parse_statuses(s: str) -> list[int]:
    try:
        out = [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r}: expected comma-separated status codes")
    if not out or any(not 200 <= c <= 599 for c in out):
        raise argparse.ArgumentTypeError(f"{s!r}: status codes must be 200-599")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Demo HTTPS webhook receiver for `make dev`.")
    p.add_argument("--port", type=int, default=8443)
    p.add_argument(
        "--statuses",
        type=parse_statuses,
        default=[200],
        help="comma-separated statuses answered per event id, in order; the last repeats (default 200)",
    )
    secret = p.add_mutually_exclusive_group()
    secret.add_argument(
        "--secret", help="the endpoint's signing secret (whsec_...): requests that do not verify get 401"
    )
    secret.add_argument(
        "--secret-file",
        type=Path,
        help="a file holding the secret, read for every request (missing or empty: every request gets 401)",
    )
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"certificate directory (default {DEFAULT_DIR})")
    p.add_argument("--certs-only", action="store_true", help="create (or keep) the certificates in --dir, then exit")
    args = p.parse_args(argv)

    if args.secret is not None and not std_webhooks_key(args.secret):
        log("warning: --secret is not whsec_<base64>; the Standard Webhooks check will fail")

    paths = ensure_certs(args.dir.resolve())
    if args.certs_only:
        log(f"trust this test CA in make dev: WEBHOOKS_EXTRA_CA_FILE={paths['ca']}")
        return 0
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(paths["server"], paths["server_key"])

    try:
        secret_file = args.secret_file.resolve() if args.secret_file else None
        server = Receiver(("127.0.0.1", args.port), ctx, args.statuses, args.secret, secret_file)
    except OSError as e:
        log(f"cannot listen on 127.0.0.1:{args.port}: {e}")
        return 1
    port = server.server_address[1]

    log("")
    log(f"demo webhook receiver listening on https://127.0.0.1:{port}")
    log("run the service so that it trusts this receiver's test CA:")
    log(f"  WEBHOOKS_EXTRA_CA_FILE={paths['ca']} WEBHOOKS_ALLOW_PRIVATE_TARGETS=1 make dev")
    log(f"webhook URL to register:  https://localhost:{port}/hook")
    log(f"responses per event id:   {','.join(map(str, args.statuses))} (last one repeats)")
    if args.secret_file:
        check = f"on, with the secret in {secret_file} (read for every request); 401 if it does not verify"
    elif args.secret:
        check = "on; 401 if it does not verify"
    else:
        check = "off (pass --secret whsec_... or --secret-file PATH)"
    log(f"signature check:          {check}")
    log(f"try it:  curl --cacert {paths['ca']} -d '{{}}' https://localhost:{port}/hook")
    log("Ctrl-C to stop")
    log("")

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log("\nstopping")
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C during startup
        sys.exit(130)
