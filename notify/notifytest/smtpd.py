"""A loopback SMTP server for signet's tests, on aiosmtpd (Debian
python3-aiosmtpd). Each accepted message is written to OUTDIR as N.eml (the
bytes as received) and N.json (envelope and session facts), the .json
last, atomically, so a reader that sees it sees the whole message.

  smtpd.py --port PORT --outdir DIR [--tls-cert C --tls-key K]
           [--username U --password P]

With a certificate the server offers STARTTLS and requires it before MAIL;
with a username it requires AUTH (PLAIN or LOGIN, only over TLS when TLS is
on). A recipient whose local part starts with "reject" is refused with 550.
It prints "READY <aiosmtpd version>" once it accepts connections and runs
until SIGTERM or SIGINT.
"""
import argparse
import json
import os
import signal
import ssl
import sys
import threading

import aiosmtpd
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Handler:
    def __init__(self, outdir):
        self.outdir = outdir
        self.lock = threading.Lock()
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@", 1)[0].startswith("reject"):
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        base = os.path.join(self.outdir, "%06d" % n)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(base + ".eml.tmp", base + ".eml")
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "authenticated": bool(session.authenticated),
            "login": getattr(session, "signet_login", ""),
            "helo": session.host_name or "",
        }
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".json.tmp", base + ".json")
        return "250 2.0.0 Message accepted"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--outdir", required=True)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--username")
    p.add_argument("--password")
    a = p.parse_args()

    kwargs = {}
    if a.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        kwargs.update(tls_context=ctx, require_starttls=True)
    if a.username:
        want = (a.username.encode(), a.password.encode())

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (auth_data.login, auth_data.password) == want
            if ok:
                session.signet_login = auth_data.login.decode()
            return AuthResult(success=ok)

        kwargs.update(authenticator=authenticator, auth_required=True,
                      auth_require_tls=bool(a.tls_cert))
    controller = Controller(Handler(a.outdir), hostname="127.0.0.1", port=a.port,
                            server_hostname="smtp.test", **kwargs)
    controller.start()
    print("READY", aiosmtpd.__version__, flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    sys.exit(main())
