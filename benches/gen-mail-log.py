#!/usr/bin/env python3
"""Generate a large, realistic RFC 3164 syslog mail log for benchmarking Portcullis.

The log is what a Debian mail server running Postfix, Dovecot 2.3, amavis and
OpenDKIM writes to /var/log/mail.log: mostly deliveries, queue chatter and IMAP/LMTP
sessions, with a realistic minority (about 12 %) of authentication lines in the exact
formats those programs use (Dovecot logins and failed logins, auth-worker password
mismatches, Postfix SASL failures and SASL-authenticated submissions), a few of them
from IPv6 clients. Host name `mail01`, time stamps increasing (about ten lines a
second of log time).

Deterministic: the same --seed, --year and size give the same bytes.

Examples:
    benches/gen-mail-log.py --lines 100000 --out /tmp/mail-100k.log
    benches/gen-mail-log.py --size 1G --out /tmp/mail-1g.log --seed 7

Only the standard library is used. A summary (lines, bytes, share of auth lines,
time taken) goes to stderr.
"""

import argparse
import base64
import calendar
import random
import sys
import time

HOST = "mail01"
MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# Lines are generated and written in blocks of this many lines (about 4 MB).
BLOCK_LINES = 30000

FIRST = ("anna", "ben", "chloe", "david", "emma", "felix", "grace", "henry", "isla", "jack",
         "kate", "liam", "maria", "noah", "olivia", "paul", "quinn", "rosa", "sam", "tara",
         "umar", "vera", "will", "xena", "yusuf", "zoe", "a.jones", "j.smith", "m.brown",
         "r.wilson", "s.taylor", "t.evans", "k.thomas", "l.roberts", "p.walker", "c.wright")
LAST = ("smith", "jones", "taylor", "brown", "williams", "wilson", "johnson", "davies",
        "robinson", "wright", "thompson", "evans", "walker", "white", "roberts", "green",
        "hall", "wood", "jackson", "clarke", "patel", "khan", "lewis", "james", "phillips")
LOCAL_DOMAINS = ("parliament.example", "example.org", "mail.example.net")
# Names password-guessing bots try.
GUESSES = ("admin", "info", "test", "sales", "support", "office", "contact", "webmaster",
           "postmaster", "user", "guest", "marketing", "hr", "accounts", "root", "mail",
           "noreply", "billing", "service", "newsletter", "backup", "scanner", "demo")
REMOTE_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "gmx.de", "web.de", "orange.fr",
                  "example.com", "lists.example.net", "mailer.example.io", "news.example.co.uk")
RELAYS = ("gmail-smtp-in.l.google.com", "mx1.hotmail.com", "mx-eu.mail.am0.yahoodns.net",
          "mx00.emig.gmx.net", "mx1.example.com", "smtp-in.orange.fr")
TLS_CIPHERS = ("TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)",
               "TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)",
               "TLSv1.3 with cipher TLS_CHACHA20_POLY1305_SHA256 (256/256 bits)")
LIPS = ("192.0.2.1", "192.0.2.1", "192.0.2.1", "2001:db8::25")
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def parse_size(text):
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    num = t.rstrip("KMGT")
    unit = t[len(num):]
    if not num or unit not in units:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: use e.g. 500M or 1G")
    return int(float(num) * units[unit])


class Gen:
    def __init__(self, seed, year):
        self.r = random.Random(seed)
        r = self.r
        self.rnd = r.random
        # Log time: 1 March of `year`, 00:00, advancing ~0.1 s a line.
        self.t = float(calendar.timegm((year, 3, 1, 0, 0, 0, 0, 0, 0)))
        self.sec = -1
        self.prefix = ""
        self.counter = r.randrange(1 << 30)
        self.auth_lines = 0
        self.generated = 0

        self.users = [f"{r.choice(FIRST)}.{r.choice(LAST)}{'' if r.random() < .7 else r.randrange(2, 99)}@{r.choice(LOCAL_DOMAINS)}"
                      for _ in range(2000)]
        self.guesses = list(GUESSES) + [f"{g}@{d}" for g in GUESSES for d in LOCAL_DOMAINS] \
            + [self.users[r.randrange(2000)].split("@")[0] for _ in range(200)]
        self.senders = [f"{r.choice(FIRST).replace('.', '')}{r.randrange(1, 999)}@{r.choice(REMOTE_DOMAINS)}"
                        for _ in range(3000)] + ["newsletter@lists.example.net", "bounce-7731@mailer.example.io"]

        def v4():
            return f"{r.randrange(11, 223)}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"

        def v6():
            return f"2001:db8:{r.randrange(1 << 16):x}:{r.randrange(1 << 16):x}::{r.randrange(1, 1 << 16):x}"

        # Mail servers that send to us, with reverse names (or `unknown`).
        self.peers = []
        for i in range(4000):
            ip = v6() if i % 40 == 0 else v4()
            name = "unknown" if r.random() < .2 else f"mail{r.randrange(1, 40)}.{r.choice(REMOTE_DOMAINS)}"
            self.peers.append((name, ip))
        # Our users' devices: home and mobile addresses.
        self.clients = [(v6() if i % 25 == 0 else v4()) for i in range(3000)]
        # Password-guessing bots: a few hundred addresses, some hammering hard.
        self.bots = [(v6() if i % 30 == 0 else v4()) for i in range(600)]
        self.msgids = [f"{r.randrange(1 << 40):x}.{r.randrange(1 << 20):x}@{r.choice(REMOTE_DOMAINS)}" for _ in range(5000)]

        self.qmgr = r.randrange(700, 2000)
        self.dovecot_auth = r.randrange(800, 2000)

        # Weighted table of what happens next; each event writes several lines.
        events = [
            (30, self.inbound),
            (12, self.submission),
            (4, self.pickup),
            (25, self.imap_session),
            (3, self.pop3_session),
            (11, self.dovecot_failed),
            (8, self.sasl_failed),
            (5, self.scanner),
            (3, self.reject),
            (1, self.anvil),
        ]
        self.table = [f for w, f in events for _ in range(w)]

    # --- helpers -------------------------------------------------------------------

    def stamp(self, lines=1):
        """The `Mmm dd hh:mm:ss mail01 ` prefix for the next `lines` lines (an event's
        lines share a stamp; log time advances about 0.1 s a line)."""
        self.t += self.rnd() * 0.2 * lines
        s = int(self.t)
        if s != self.sec:
            self.sec = s
            tm = time.gmtime(s)
            self.prefix = f"{MONTHS[tm.tm_mon]} {tm.tm_mday:2d} {tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} {HOST} "
        return self.prefix

    def pick(self, pool):
        return pool[int(self.rnd() * len(pool))]

    def pid(self):
        return 1000 + int(self.rnd() * 60000)

    def qid(self):
        self.counter += 1
        return f"{(self.counter * 2654435761) & 0xFFFFFFFFFF:010X}"

    def session(self):
        self.counter += 1
        x = (self.counter * 0x9E3779B97F4A7C15F39CC0605CEDC835) & ((1 << 96) - 1)
        return base64.b64encode(x.to_bytes(12, "little")).decode()

    def maybe_tls(self, out, st, daemon, pid, name, ip):
        if self.rnd() < .6:
            out.append(f"{st}postfix/{daemon}[{pid}]: Anonymous TLS connection established from {name}[{ip}]: {self.pick(TLS_CIPHERS)} key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256\n")

    # --- events --------------------------------------------------------------------

    def inbound(self, out):
        """A message from the internet delivered to a local mailbox over LMTP."""
        name, ip = self.pick(self.peers)
        pid, q, q2 = self.pid(), self.qid(), self.qid()
        rcpt, sender, msgid = self.pick(self.users), self.pick(self.senders), self.pick(self.msgids)
        size = 2000 + int(self.rnd() * 80000)
        st = self.stamp(6)
        out.append(f"{st}postfix/smtpd[{pid}]: connect from {name}[{ip}]\n")
        self.maybe_tls(out, st, "smtpd", pid, name, ip)
        out.append(f"{st}postfix/smtpd[{pid}]: {q}: client={name}[{ip}]\n")
        out.append(f"{st}postfix/cleanup[{pid + 7}]: {q}: message-id=<{msgid}>\n")
        if self.rnd() < .5:
            out.append(f"{st}opendkim[{self.qmgr + 3}]: {q}: s=selector1 d={sender.split('@')[1]} SSL\n")
        out.append(f"{st}postfix/qmgr[{self.qmgr}]: {q}: from=<{sender}>, size={size}, nrcpt=1 (queue active)\n")
        out.append(f"{st}postfix/smtpd[{pid}]: disconnect from {name}[{ip}] ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7\n")
        if self.rnd() < .5:
            ms = 300 + int(self.rnd() * 3000)
            out.append(f"{st}amavis[{self.qmgr + 41}]: ({self.qmgr + 41}-{int(self.rnd() * 99):02d}) Passed CLEAN {{RelayedInbound}}, [{ip}]:{40000 + int(self.rnd() * 20000)} [{ip}] <{sender}> -> <{rcpt}>, Queue-ID: {q}, Message-ID: <{msgid}>, mail_id: {self.session()[:12]}, Hits: -{self.rnd() * 3:.3f}, size: {size}, queued_as: {q2}, {ms} ms\n")
            out.append(f"{st}postfix/qmgr[{self.qmgr}]: {q2}: from=<{sender}>, size={size + 900}, nrcpt=1 (queue active)\n")
            out.append(f"{st}postfix/smtp[{pid + 11}]: {q}: to=<{rcpt}>, relay=127.0.0.1[127.0.0.1]:10024, delay={ms / 1000 + .2:.1f}, delays=0.09/0/0.01/{ms / 1000:.1f}, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as {q2})\n")
            out.append(f"{st}postfix/qmgr[{self.qmgr}]: {q}: removed\n")
            q = q2
        lpid, sess = self.pid(), self.session()
        st = self.stamp(6)
        out.append(f"{st}dovecot: lmtp({lpid}): Connect from local\n")
        out.append(f"{st}dovecot: lmtp({rcpt})<{lpid}><{sess}>: msgid=<{msgid}>: saved mail to INBOX\n")
        out.append(f"{st}postfix/lmtp[{pid + 13}]: {q}: to=<{rcpt}>, relay=mail01.parliament.example[private/dovecot-lmtp], delay=0.26, delays=0.17/0.01/0.02/0.06, dsn=2.0.0, status=sent (250 2.0.0 <{rcpt}> {sess} Saved)\n")
        out.append(f"{st}dovecot: lmtp({lpid}): Disconnect from local: Client has quit the connection (state=READY)\n")
        out.append(f"{st}postfix/qmgr[{self.qmgr}]: {q}: removed\n")

    def submission(self, out):
        """A user sends a message through submission (SASL login) to the internet."""
        user = self.pick(self.users)
        ip = self.pick(self.clients)
        pid, q = self.pid(), self.qid()
        rcpt, msgid = self.pick(self.senders), self.pick(self.msgids)
        st = self.stamp(9)
        out.append(f"{st}postfix/submission/smtpd[{pid}]: connect from unknown[{ip}]\n")
        self.maybe_tls(out, st, "submission/smtpd", pid, "unknown", ip)
        out.append(f"{st}postfix/submission/smtpd[{pid}]: {q}: client=unknown[{ip}], sasl_method=PLAIN, sasl_username={user}\n")
        out.append(f"{st}postfix/cleanup[{pid + 7}]: {q}: message-id=<{msgid}>\n")
        out.append(f"{st}opendkim[{self.qmgr + 3}]: {q}: DKIM-Signature field added (s=mail, d={user.split('@')[1]})\n")
        out.append(f"{st}postfix/qmgr[{self.qmgr}]: {q}: from=<{user}>, size={1500 + int(self.rnd() * 40000)}, nrcpt=1 (queue active)\n")
        out.append(f"{st}postfix/submission/smtpd[{pid}]: disconnect from unknown[{ip}] ehlo=2 starttls=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=8\n")
        relay = self.pick(RELAYS)
        out.append(f"{st}postfix/smtp[{pid + 9}]: {q}: to=<{rcpt}>, relay={relay}[{self.pick(self.peers)[1]}]:25, delay=1.4, delays=0.1/0.01/0.42/0.87, dsn=2.0.0, status=sent (250 2.0.0 OK {int(self.t)} {self.session()[:10]} - gsmtp)\n")
        out.append(f"{st}postfix/qmgr[{self.qmgr}]: {q}: removed\n")
        self.auth_lines += 1

    def pickup(self, out):
        """A local cron or web application sends mail."""
        q = self.qid()
        rcpt = self.pick(self.users)
        st = self.stamp(6)
        out.append(f"{st}postfix/pickup[{self.qmgr + 1}]: {q}: uid=33 from=<www-data>\n")
        out.append(f"{st}postfix/cleanup[{self.pid()}]: {q}: message-id=<{int(self.t)}.{q}@mail01.parliament.example>\n")
        out.append(f"{st}postfix/qmgr[{self.qmgr}]: {q}: from=<www-data@mail01.parliament.example>, size=812, nrcpt=1 (queue active)\n")
        lpid, sess = self.pid(), self.session()
        out.append(f"{st}dovecot: lmtp({rcpt})<{lpid}><{sess}>: msgid=<{int(self.t)}.{q}@mail01.parliament.example>: saved mail to INBOX\n")
        out.append(f"{st}postfix/lmtp[{self.pid()}]: {q}: to=<{rcpt}>, orig_to=<root>, relay=mail01.parliament.example[private/dovecot-lmtp], delay=0.05, delays=0.01/0.01/0.01/0.02, dsn=2.0.0, status=sent (250 2.0.0 <{rcpt}> {sess} Saved)\n")
        out.append(f"{st}postfix/qmgr[{self.qmgr}]: {q}: removed\n")

    def imap_session(self, out):
        """A user's mail client logs in over IMAP, later logs out."""
        user = self.pick(self.users)
        ip, lip = self.pick(self.clients), self.pick(LIPS)
        pid, sess = self.pid(), self.session()
        st = self.stamp(2)
        out.append(f"{st}dovecot: imap-login: Login: user=<{user}>, method=PLAIN, rip={ip}, lip={lip}, mpid={pid}, TLS, session=<{sess}>\n")
        self.auth_lines += 1
        if self.rnd() < .3:
            out.append(f"{st}dovecot: imap({user})<{pid}><{sess}>: Connection closed (IDLE running for 0.001 + waiting input for 28.002 secs, 2 B in + 10 B out, state=wait-input) in={int(self.rnd() * 9000)} out={int(self.rnd() * 400000)} deleted=0 expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 body_count=0 body_bytes=0\n")
        else:
            out.append(f"{st}dovecot: imap({user})<{pid}><{sess}>: Logged out in={int(self.rnd() * 9000)} out={int(self.rnd() * 400000)} deleted={int(self.rnd() * 3)} expunged={int(self.rnd() * 3)} trashed=0 hdr_count=0 hdr_bytes=0 body_count=1 body_bytes={int(self.rnd() * 90000)}\n")

    def pop3_session(self, out):
        user = self.pick(self.users)
        ip, lip = self.pick(self.clients), self.pick(LIPS)
        pid, sess = self.pid(), self.session()
        st = self.stamp(2)
        out.append(f"{st}dovecot: pop3-login: Login: user=<{user}>, method=PLAIN, rip={ip}, lip={lip}, mpid={pid}, TLS, session=<{sess}>\n")
        self.auth_lines += 1
        n = int(self.rnd() * 5)
        out.append(f"{st}dovecot: pop3({user})<{pid}><{sess}>: Disconnected: Logged out top=0/0, retr={n}/{n * 23411}, del={n}/{n}, size={n * 23290}\n")

    def dovecot_failed(self, out):
        """A failed IMAP/POP3/submission login: auth-worker line, then login process line."""
        bot = self.rnd() < .7
        ip = self.pick(self.bots) if bot else self.pick(self.clients)
        user = self.pick(self.guesses) if bot else self.pick(self.users)
        lip = self.pick(LIPS)
        st = self.stamp(3)
        n = 1 + int(self.rnd() * 3) if bot else 1
        proto = self.pick(("imap", "imap", "imap", "pop3", "submission"))
        sess = self.session()
        why = "unknown user" if bot and self.rnd() < .5 else "Password mismatch"
        for _ in range(n):
            out.append(f"{st}dovecot: auth-worker({self.dovecot_auth}): sql({user},{ip},<{sess}>): {why}\n")
        tls = ", TLS" if self.rnd() < .8 else ""
        out.append(f"{st}dovecot: {proto}-login: Disconnected (auth failed, {n} attempts in {2 * n + int(self.rnd() * 4)} secs): user=<{user}>, method=PLAIN, rip={ip}, lip={lip}{tls}, session=<{sess}>\n")
        self.auth_lines += n + 1

    def sasl_failed(self, out):
        """A bot guessing passwords over SMTP AUTH."""
        ip = self.pick(self.bots)
        pid = self.pid()
        daemon = "submission/smtpd" if self.rnd() < .5 else "smtpd"
        mech, arg = ("LOGIN", "UGFzc3dvcmQ6") if self.rnd() < .8 else ("PLAIN", "")
        st = self.stamp(4)
        out.append(f"{st}postfix/{daemon}[{pid}]: connect from unknown[{ip}]\n")
        n = 1 + int(self.rnd() * 2)
        for _ in range(n):
            out.append(f"{st}postfix/{daemon}[{pid}]: warning: unknown[{ip}]: SASL {mech} authentication failed: {arg}\n")
        out.append(f"{st}postfix/{daemon}[{pid}]: lost connection after AUTH from unknown[{ip}]\n")
        out.append(f"{st}postfix/{daemon}[{pid}]: disconnect from unknown[{ip}] ehlo=1 auth=0/{n} commands=1/{n + 1}\n")
        self.auth_lines += n

    def scanner(self, out):
        """Connections that never try to log in."""
        ip = self.pick(self.bots)
        st = self.stamp(2)
        if self.rnd() < .5:
            out.append(f"{st}dovecot: imap-login: Disconnected (no auth attempts in {int(self.rnd() * 10)} secs): user=<>, rip={ip}, lip={self.pick(LIPS)}, session=<{self.session()}>\n")
        else:
            pid = self.pid()
            out.append(f"{st}postfix/smtpd[{pid}]: connect from unknown[{ip}]\n")
            out.append(f"{st}postfix/smtpd[{pid}]: lost connection after EHLO from unknown[{ip}]\n")
            out.append(f"{st}postfix/smtpd[{pid}]: disconnect from unknown[{ip}] ehlo=1 commands=1\n")

    def reject(self, out):
        name, ip = self.pick(self.peers)
        pid = self.pid()
        st = self.stamp(3)
        out.append(f"{st}postfix/smtpd[{pid}]: connect from {name}[{ip}]\n")
        out.append(f"{st}postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from {name}[{ip}]: 550 5.1.1 <{self.pick(self.guesses)}@parliament.example>: Recipient address rejected: User unknown in virtual mailbox table; from=<{self.pick(self.senders)}> to=<nobody@parliament.example> proto=ESMTP helo=<{name}>\n")
        out.append(f"{st}postfix/smtpd[{pid}]: disconnect from {name}[{ip}] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4\n")

    def anvil(self, out):
        ip = self.pick(self.bots)
        st = self.stamp(2)
        out.append(f"{st}postfix/anvil[{self.qmgr + 2}]: statistics: max connection rate 4/60s for (smtp:{ip}) at {self.prefix[:15]}\n")
        out.append(f"{st}postfix/anvil[{self.qmgr + 2}]: statistics: max cache size 12 at {self.prefix[:15]}\n")

    # --- driver --------------------------------------------------------------------

    def run(self, out_file, max_lines, max_bytes):
        table, rnd = self.table, self.rnd
        n_table = len(table)
        lines = written = 0
        buf = []
        while True:
            buf.clear()
            while len(buf) < BLOCK_LINES:
                table[int(rnd() * n_table)](buf)
            self.generated += len(buf)
            if max_lines is not None and lines + len(buf) >= max_lines:
                del buf[max_lines - lines:]
            data = "".join(buf).encode("ascii")
            if max_bytes is not None and written + len(data) >= max_bytes:
                # Cut after the first line end at or beyond the target size.
                cut = data.index(b"\n", max_bytes - written - 1) + 1 if max_bytes > written else 0
                lines += data.count(b"\n", 0, cut)
                out_file.write(data[:cut])
                written += cut
                return lines, written
            out_file.write(data)
            lines += len(buf)
            written += len(data)
            if max_lines is not None and lines >= max_lines:
                return lines, written


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--lines", type=int, help="number of lines to write")
    g.add_argument("--size", type=parse_size, help="bytes to write, e.g. 500M, 1G (rounded up to a whole line)")
    ap.add_argument("--out", required=True, help="output file ('-' for standard output)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--year", type=int, default=2024, help="year of the first line (default 2024); logs start on 1 March")
    args = ap.parse_args()
    if args.lines is not None and args.lines < 0:
        ap.error("--lines must be >= 0")

    start = time.monotonic()
    gen = Gen(args.seed, args.year)
    out = sys.stdout.buffer if args.out == "-" else open(args.out, "wb")
    try:
        lines, written = gen.run(out, args.lines, args.size)
    finally:
        if out is not sys.stdout.buffer:
            out.close()
        else:
            out.flush()
    secs = time.monotonic() - start
    # Counted over every line generated, including the few cut off at the end.
    share = 100.0 * gen.auth_lines / max(gen.generated, 1)
    print(f"gen-mail-log: {lines} lines, {written} bytes, ~{share:.1f}% auth lines, "
          f"{secs:.1f} s ({written / max(secs, 1e-9) / 1e6:.0f} MB/s)", file=sys.stderr)


if __name__ == "__main__":
    main()
