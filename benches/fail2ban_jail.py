#!/usr/bin/env python3
"""Replay fail2ban's stock jail logic on the failures fail2ban-regex found, and score it.

Used by benches/fail2ban-baseline.sh; Python 3.9+, standard library only.

  fail2ban_jail.py replay --truth truth.json --tz Europe/London \\
      --jail dovecot=dovecot.tsv --jail postfix-sasl=postfix.tsv [--jail sshd=sshd.tsv] \\
      [--jail-conf /etc/fail2ban/jail.conf] --report report.json --summary summary.json
  fail2ban_jail.py markdown --truth truth.json --summary summary.json --eval eval.json

Each JAIL=FILE is the output of `fail2ban-regex -o '<time>\t<ip>\t<msg>' LOG FILTER`:
one failure a line, the time as fail2ban parsed it (seconds since the epoch), the address
and (optional) the matched line, whose own stamp is read here to check fail2ban's time.

What is replayed (read in fail2ban 1.0.2, /usr/lib/python3/dist-packages/fail2ban/server;
this is a re-implementation, no code is taken from it):

- filter.py, Filter.processLineAndAdd: every failure found in a line is added to the
  jail's FailManager (failmanager.py, addFailure), one ticket per address (the ticket id
  is the address itself: IPv6 addresses are not grouped by prefix). When the ticket's
  count reaches maxretry, Filter.performBan -> FailManager.toBan removes the ticket (so
  the count restarts from nothing) and the jail bans the address.
- The count is not a sliding window of the last findtime seconds. ticket.py,
  FailTicket.adjustTime: when a failure comes more than findtime after the ticket's
  (estimated) first failure, the count is rescaled to the rate over the known interval,
  count = int(round(count / (now - first) * findtime)), and first = now - findtime;
  then the new failure adds 1 (FailTicket.inc).
- failmanager.py, FailManager.cleanup (run by Filter.performSvc at most every 5 s and
  every 100 lines): a ticket whose last failure is findtime or more in the past is
  dropped. Modelled exactly at the next failure of that address (the 5 s / 100-line
  laziness of the real cleanup is ignored).
- banmanager.py / ticket.py: a ban starts at the time of the failure that reached
  maxretry (the ticket's time) and is lifted once the time is past start + bantime
  (Ticket.isTimedOut, BanManager.unBanList). bantime.increment is off in the stock
  jail.conf, so every ban lasts bantime.
- The stock banaction (iptables-multiport) drops everything from a banned address to the
  jail's ports, so the attempts it would have made during the ban never reach the
  server and are never logged. The simulated logs still contain them (the simulator knows
  nothing of bans), so a failure from an address while it is banned by a jail whose
  `port` list covers that service is skipped here; it counts for no jail. (Were such
  lines logged, fail2ban would count them again and prolong the ban; they cannot be.)
  The stock mail jails both list imap, imaps, pop3, pop3s and submission, so a ban by
  either blocks the other's service too; the simulator's SMTP AUTH runs on
  postfix/submission (port 587). sshd bans only the ssh port.
- Stock values (jail.conf [DEFAULT]): maxretry 5, findtime 10m, bantime 10m; read from
  --jail-conf. ignoreip is unset (ignoreself only covers the host's own addresses).

Year-less RFC 3164 stamps: fail2ban gives them the current year (strptime.py,
reGroupDictStrptime). Such times are moved back to the scenario's year, keeping the
local wall-clock time in --tz (the zone fail2ban ran in, via TZ), so the ban times in the
summary match the truth. ISO-8601 stamps carry their year and offset and are kept.
"""

import argparse
import configparser
import datetime as dt
import json
import re
import sys
from collections import Counter, defaultdict
from zoneinfo import ZoneInfo

# The service each filter's failures come from, as a port name of jail.conf's `port` lists.
STREAM_SERVICE = {"dovecot": "imap", "postfix-sasl": "submission", "sshd": "ssh"}


def seconds(text):
    """A fail2ban duration ("600", "10m", "1h30m", "1d") in seconds."""
    text = text.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return float(text)
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    total, pos = 0.0, 0
    for m in re.finditer(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])[a-z]*", text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    if pos != len(text):
        sys.exit(f"fail2ban_jail.py: cannot read the duration {text!r}")
    return total


def jail_settings(conf_path, name):
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    if not cp.read(conf_path):
        sys.exit(f"fail2ban_jail.py: cannot read {conf_path}")
    if not cp.has_section(name):
        sys.exit(f"fail2ban_jail.py: no [{name}] in {conf_path}")
    return {
        "maxretry": int(cp.get(name, "maxretry")),
        "findtime": seconds(cp.get(name, "findtime")),
        "bantime": seconds(cp.get(name, "bantime")),
        "ports": {p.strip() for p in cp.get(name, "port").split(",")},
    }


def rfc3339(t, tz):
    return dt.datetime.fromtimestamp(t, tz).isoformat(timespec="seconds")


def fix_year(t, tz, lo, hi):
    """fail2ban's time t, moved to the year that puts it in [lo, hi] (local wall clock kept)."""
    if lo <= t <= hi:
        return t
    local = dt.datetime.fromtimestamp(t, tz).replace(tzinfo=None)
    for year in sorted({dt.datetime.fromtimestamp(x, tz).year for x in (lo, hi)}):
        try:
            cand = local.replace(year=year).replace(tzinfo=tz).timestamp()
        except ValueError:  # 29 February
            continue
        if lo <= cand <= hi:
            return cand
    return t  # left as fail2ban had it; counted as out of range in the summary


def stamp_time(line, tz, near):
    """The time of a log line's own stamp, read here independently of fail2ban.

    ISO 8601 stamps carry their offset; RFC 3164 ones ("Jun 23 09:14:05") are local time
    in tz, in the year of `near` (the year-corrected fail2ban time)."""
    try:
        if line[:4].isdigit():
            return dt.datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()
        year = dt.datetime.fromtimestamp(near, tz).year
        local = dt.datetime.strptime(f"{year} {line[:15]}", "%Y %b %d %H:%M:%S")
        return local.replace(tzinfo=tz).timestamp()
    except ValueError:
        return None


LOGIN_PATTERNS = [  # (service, regex with groups user, address) for successful logins
    ("imap", re.compile(r"-login: Login: user=<([^>]*)>.*? rip=([^,\s]+)")),
    ("submission", re.compile(r"client=[^\[]*\[([^\]]+)\].*?sasl_username=(\S+)")),
    ("ssh", re.compile(r"sshd\[\d+\]: Accepted \S+ for (\S+) from (\S+) port")),
]


def refused_logins(paths, bans, jails, tz, year_near):
    """Successful logins in the logs from an address while a ban covering the service
    was in force: the firewall would have refused them. -> {ip: (logins, {users})}"""
    found = defaultdict(lambda: [0, set()])
    for path in paths:
        with open(path, errors="replace") as f:
            for line in f:
                if "Login: " not in line and "sasl_username=" not in line and "Accepted " not in line:
                    continue
                for service, rx in LOGIN_PATTERNS:
                    m = rx.search(line)
                    if not m:
                        continue
                    a, b = m.groups()
                    user, ip = (b, a) if service == "submission" else (a, b)
                    if ip not in bans:
                        break
                    t = stamp_time(line, tz, year_near)
                    if t is not None and any(s < t <= e and service in jails[j]["ports"]
                                             for j, s, e in bans[ip]):
                        found[ip][0] += 1
                        found[ip][1].add(user)
                    break
    return found


def replay(args):
    truth = json.load(open(args.truth))
    tz = ZoneInfo(args.tz)
    start = dt.datetime.fromisoformat(truth["start"]).timestamp()
    end = dt.datetime.fromisoformat(truth["end"]).timestamp()
    lo, hi = start - 86400, end + 86400

    jails, events, matched, out_of_range, moved = {}, [], Counter(), Counter(), Counter()
    checked, time_mismatch, mismatch_examples = Counter(), Counter(), []
    for spec in args.jail:
        name, path = spec.split("=", 1)
        jails[name] = jail_settings(args.jail_conf, name)
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                parts = line.split("\t", 2)
                t_text, ip = parts[:2]
                t0 = float(t_text)
                t = fix_year(t0, tz, lo, hi)
                moved[name] += t != t0
                if not lo <= t <= hi:
                    out_of_range[name] += 1
                if len(parts) > 2:  # the matched line: check fail2ban's time against its stamp
                    checked[name] += 1
                    own = stamp_time(parts[2], tz, t)
                    if own is None or abs(own - t) >= 1:
                        time_mismatch[name] += 1
                        if len(mismatch_examples) < 5:
                            mismatch_examples.append(f"{rfc3339(t, tz)} for: {parts[2][:120]}")
                events.append((t, len(events), name, ip))
                matched[name] += 1
    events.sort()  # by time; ties keep file order

    tickets = {}  # (jail, ip) -> [first, last, count]
    bans = defaultdict(list)  # ip -> [(jail, start, end)]
    counted, blocked = Counter(), Counter()
    per_ip_matches = Counter()
    for t, _, name, ip in events:
        per_ip_matches[ip] += 1
        service = STREAM_SERVICE.get(name, name)
        # Dropped by the firewall: banned by a jail covering this service (start < t <= end;
        # lines stamped at the ban's own instant come from the session that triggered it).
        if any(s < t <= e and service in jails[j]["ports"] for j, s, e in bans.get(ip, ())):
            blocked[name] += 1
            continue
        counted[name] += 1
        cfg = jails[name]
        key = (name, ip)
        tk = tickets.get(key)
        if tk is not None and tk[1] <= t - cfg["findtime"]:
            tk = None  # FailManager.cleanup
        if tk is None:
            tk = [t, t, 1]
        else:
            if t > tk[1]:  # FailTicket.adjustTime
                if tk[0] < t - cfg["findtime"]:
                    tk[2] = int(round(tk[2] / (t - tk[0]) * cfg["findtime"]))
                    tk[0] = t - cfg["findtime"]
                tk[1] = t
            tk[2] += 1  # FailTicket.inc
        tickets[key] = tk
        if tk[2] >= cfg["maxretry"]:  # performBan -> toBan: the ticket goes
            del tickets[key]
            bans[ip].append((name, t, t + cfg["bantime"]))

    truth_by_ip = {s["address"]: s for s in truth["sources"]}
    sources = []
    for ip, bl in sorted(bans.items(), key=lambda kv: kv[1][0][1]):
        per_jail = Counter(j for j, _, _ in bl)
        first = bl[0][1]
        sources.append({
            "address": ip,
            "verdict": "attacker",
            "attacks": [],
            "first_seen": rfc3339(first, tz),
            "failures": per_ip_matches[ip],
            "evidence": "fail2ban stock jails: "
            + ", ".join(f"{j} banned {n}x" for j, n in sorted(per_jail.items()))
            + f", first ban {rfc3339(first, tz)}",
        })
    report = {
        "version": 1,
        "input": {"files": truth.get("files", []), "lines": truth.get("lines", 0),
                  "events": sum(matched.values())},
        "sources": sources,
        "accounts": [],
        "campaigns": [],
    }
    json.dump(report, open(args.report, "w"), indent=1)

    # Figures for the Markdown block.
    banned_kinds = Counter()
    banned_benign = []
    for ip in bans:
        s = truth_by_ip.get(ip)
        role_kind = (s["role"], s["kind"]) if s else ("unknown", "not in truth")
        banned_kinds[role_kind] += 1
        if s and s["role"] == "benign":
            banned_benign.append({"address": ip, "kind": s["kind"], "failures": s["failures"],
                                  "successes": s["successes"], "bans": len(bans[ip]),
                                  "first_ban": rfc3339(bans[ip][0][1], tz)})
    # Legitimate logins the bans would have refused (read from the logs, if given).
    refused = refused_logins(args.logs or [], bans, jails, tz, start) if args.logs else {}
    for b in banned_benign:
        n, users = refused.get(b["address"], (0, set()))
        b["logins_refused"] = n
        b["users_refused"] = len(users)
    refused_users = set()
    for ip, (n, users) in refused.items():
        s = truth_by_ip.get(ip)
        if s and s["role"] == "benign":
            refused_users |= users
    # Sources with failed attempts in the truth that fail2ban matched nowhere.
    unmatched = Counter()
    unmatched_failures = Counter()
    for s in truth["sources"]:
        if s["failures"] and not per_ip_matches.get(s["address"]):
            unmatched[s["role"] + "/" + s["kind"]] += 1
            unmatched_failures[s["role"] + "/" + s["kind"]] += s["failures"]
    # First ban of any source of each campaign (fail2ban raises no campaign alert; this is
    # the earliest moment an administrator could have seen one of its addresses banned).
    campaigns = []
    for c in truth["campaigns"]:
        c_ips = [s["address"] for s in truth["sources"] if s.get("campaign") == c["id"]]
        c_bans = [bans[ip][0][1] for ip in c_ips if ip in bans]
        c_start = dt.datetime.fromisoformat(c["start"]).timestamp()
        campaigns.append({"id": c["id"], "kind": c["kind"], "sources": len(c_ips),
                          "banned": len(c_bans), "attempts": c["attempts"],
                          "first_ban_after_s": (min(c_bans) - c_start) if c_bans else None})
    summary = {
        "scenario": truth["scenario"], "seed": truth["seed"], "tz": args.tz,
        "jails": {j: {"maxretry": c["maxretry"], "findtime": c["findtime"],
                      "bantime": c["bantime"], "ports": sorted(c["ports"]),
                      "matched": matched[j], "counted": counted[j], "blocked": blocked[j],
                      "year_moved": moved[j], "out_of_range": out_of_range[j],
                      "stamps_checked": checked[j], "stamp_mismatches": time_mismatch[j]}
                  for j, c in jails.items()},
        "banned_ips": len(bans),
        "bans": sum(len(b) for b in bans.values()),
        "banned_by_role_kind": {f"{r}/{k}": n for (r, k), n in sorted(banned_kinds.items())},
        "logs_read": bool(args.logs),
        "benign_logins_refused": sum(b["logins_refused"] for b in banned_benign),
        "benign_users_refused": len(refused_users),
        "banned_benign": sorted(banned_benign, key=lambda b: -b["successes"]),
        "truth_failed_sources_unmatched": dict(unmatched),
        "truth_failures_of_unmatched_sources": dict(unmatched_failures),
        "campaigns": campaigns,
        "stamp_mismatch_examples": mismatch_examples,
    }
    if args.timing:
        summary["timing"] = json.load(open(args.timing))
    json.dump(summary, open(args.summary, "w"), indent=1)


def fmt_delay(s):
    if s is None:
        return "never"
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def markdown(args):
    truth = json.load(open(args.truth))
    sm = json.load(open(args.summary))
    ev = json.load(open(args.eval))["score"]
    out = []
    p = out.append
    p(f"#### {sm['scenario']} (seed {sm['seed']}): {truth['lines']} lines, "
      f"{truth['attempts']} login attempts, {len(truth['legitimate_users'])} legitimate users, "
      f"time zone {sm['tz']}")
    p("")
    p("| jail | maxretry / findtime / bantime | failures matched | counted | skipped (address banned) |")
    p("| --- | --- | ---: | ---: | ---: |")
    for j, c in sm["jails"].items():
        p(f"| {j} | {c['maxretry']} / {int(c['findtime'])} s / {int(c['bantime'])} s | "
          f"{c['matched']} | {c['counted']} | {c['blocked']} |")
    p("")
    p(f"Addresses banned: {sm['banned_ips']} ({sm['bans']} bans).")
    p("")
    p("| attack kind | attacking sources | banned | recall | first ban after campaign start |")
    p("| --- | ---: | ---: | ---: | --- |")
    by_kind = defaultdict(list)
    for c in sm["campaigns"]:
        by_kind[c["kind"]].append(c)
    for a in ev["attacks"]:
        delays = ", ".join(f"{c['id']} {fmt_delay(c['first_ban_after_s'])}"
                           for c in by_kind.get(a["kind"], []))
        p(f"| {a['kind']} | {a['sources']} | {a['found']} | {100 * a['recall']:.1f} % | {delays} |")
    p("")
    p("| benign class | sources | banned |")
    p("| --- | ---: | ---: |")
    for b in ev["benign"]:
        p(f"| {b['class']} | {b['sources']} | {b['attacker']} |")
    p(f"| all | {ev['benign_sources']} | {ev['benign_flagged']} "
      f"({100 * ev['benign_flagged_rate']:.1f} %) |")
    p("")
    shared = [b for b in sm["banned_benign"] if b["kind"] in ("office_gateway", "vpn_gateway", "cgnat")]
    if shared:
        p("Shared addresses banned (everyone behind them is locked out of mail for each "
          "ban; the truth gives per-address counts, not users):")
        p("")
        for b in shared:
            refused = (f"; {b['logins_refused']} successful logins by {b['users_refused']} "
                       f"users fell inside its bans" if sm["logs_read"] else "")
            p(f"- {b['address']} ({b['kind']}): {b['bans']} ban(s), first at {b['first_ban']}; "
              f"in the whole scenario {b['successes']} successful logins and "
              f"{b['failures']} failures came from it{refused}")
        p("")
    else:
        p("No shared address (office or VPN gateway, CGNAT) was banned.")
        p("")
    other = Counter(b["kind"] for b in sm["banned_benign"]
                    if b["kind"] not in ("office_gateway", "vpn_gateway", "cgnat"))
    if other:
        p("Other benign addresses banned: " + ", ".join(f"{n} {k}" for k, n in sorted(other.items()))
          + " (each a single household or device, locked out for bantime at each ban).")
        p("")
    c = ev["compromise"]
    if sm["logs_read"]:
        p(f"Legitimate logins that fell inside a ban of their (benign) address, so would have "
          f"been refused: {sm['benign_logins_refused']}, by {sm['benign_users_refused']} "
          f"distinct users (counted from the logs' successful logins; the simulator does not "
          f"make them retry later).")
        p("")
    p(f"Legitimate users locked out: n/a (fail2ban bans addresses, not accounts). "
      f"Compromised accounts named: 0 of {c['truth']}. Campaigns reported: none "
      f"(eval: every campaign \"not detected\").")
    p("")
    if sm["truth_failed_sources_unmatched"]:
        parts = ", ".join(f"{n} {k} ({sm['truth_failures_of_unmatched_sources'][k]} failures)"
                          for k, n in sorted(sm["truth_failed_sources_unmatched"].items()))
        p(f"Sources with failed logins in the truth that no filter matched: {parts}.")
        p("")
    chk = sum(j["stamps_checked"] for j in sm["jails"].values())
    bad = sum(j["stamp_mismatches"] for j in sm["jails"].values())
    p(f"Time check: of {chk} matched lines, {bad} had a fail2ban time (after the year "
      f"correction) a second or more away from the line's own stamp read in {sm['tz']}."
      + (" Examples: " + "; ".join(sm["stamp_mismatch_examples"]) if bad else ""))
    p("")
    moved = sum(j["year_moved"] for j in sm["jails"].values())
    oor = sum(j["out_of_range"] for j in sm["jails"].values())
    if moved or oor:
        p(f"Times: {moved} year-less stamps moved from fail2ban's assumed year to the scenario's; "
          f"{oor} outside the scenario after that.")
        p("")
    if "timing" in sm:
        p("| fail2ban-regex run | file | lines | wall s | CPU s | lines/s (wall) |")
        p("| --- | --- | ---: | ---: | ---: | ---: |")
        for r in sm["timing"]:
            p(f"| `{r['filter']}` | {r['file']} | {r['lines']} | {r['wall']:.1f} | "
              f"{r['cpu']:.1f} | {r['lines'] / r['wall'] / 1000:.1f} k |")
        p("")
    print("\n".join(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("replay")
    r.add_argument("--truth", required=True)
    r.add_argument("--tz", required=True, help="IANA zone fail2ban-regex ran in (TZ)")
    r.add_argument("--jail", action="append", required=True, help="JAIL=FILE of time<TAB>ip")
    r.add_argument("--jail-conf", default="/etc/fail2ban/jail.conf")
    r.add_argument("--report", required=True)
    r.add_argument("--summary", required=True)
    r.add_argument("--logs", nargs="*", help="the scenario's logs, to count the legitimate "
                   "logins that bans would have refused")
    r.add_argument("--timing", help="JSON list of fail2ban-regex runs (added to the summary)")
    m = sub.add_parser("markdown")
    m.add_argument("--truth", required=True)
    m.add_argument("--summary", required=True)
    m.add_argument("--eval", required=True)
    args = ap.parse_args()
    replay(args) if args.cmd == "replay" else markdown(args)


if __name__ == "__main__":
    main()
