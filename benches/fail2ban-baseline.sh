#!/usr/bin/env bash
# What stock fail2ban would have made of the simulated scenarios: its stock filters
# (fail2ban-regex) and the stock dovecot, postfix-sasl and sshd jail logic
# (benches/fail2ban_jail.py) on `portcullis simulate` logs, scored by `portcullis eval`.
# Prints a Markdown block for benches/RESULTS.md on stdout; progress and eval's text
# output on stderr.
#
#   benches/fail2ban-baseline.sh                          # all four scenarios, SEED=1
#   SEED=7 benches/fail2ban-baseline.sh small-office      # one scenario
#   KEEP=/tmp/f2b benches/fail2ban-baseline.sh            # keep logs, matches, reports there
set -euo pipefail
SEED=${SEED:-1}
repo=$(cd "$(dirname "$0")/.." && pwd)
say() { echo "fail2ban-baseline.sh: $*" >&2; }
for tool in fail2ban-regex python3 cargo /usr/bin/time; do
  command -v "$tool" >/dev/null || { say "$tool is missing (fail2ban-regex: Debian package fail2ban; /usr/bin/time: package time)"; exit 1; }
done
[ -f /etc/fail2ban/jail.conf ] || { say "/etc/fail2ban/jail.conf is missing"; exit 1; }
[ $# -gt 0 ] || set -- westminster small-office ssh-exposed slow-vip

if [ -n "${KEEP:-}" ]; then
  tmp=$KEEP; mkdir -p "$tmp"
else
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-f2b.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
fi

say "building portcullis (release)"
(cd "$repo" && cargo build --release --quiet -p portcullis)
bin=$(cd "$repo" && cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/portcullis
jail_py=$repo/benches/fail2ban_jail.py
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# The filters the stock jails use (jail.conf: [dovecot] filter = dovecot[mode=normal],
# [postfix-sasl] filter = postfix[mode=auth], [sshd] filter = sshd[mode=normal]).
declare -A FILTER=([dovecot]='dovecot[mode=normal]' [postfix-sasl]='postfix[mode=auth]' [sshd]='sshd[mode=normal]')

sections=()
for scenario in "$@"; do
  toml=$repo/scenarios/$scenario.toml
  [ -f "$toml" ] || { say "no scenario file $toml"; exit 1; }
  tz=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["time_zone"])' "$toml")
  out=$tmp/$scenario
  rm -rf "$out"
  say "$scenario: simulating (seed $SEED)"
  "$bin" simulate --scenario "$scenario" --seed "$SEED" --out "$out" -q

  jails=() timing=()
  for jail in dovecot postfix-sasl sshd; do
    case $jail in sshd) log=$out/auth.log ;; *) log=$out/mail.log ;; esac
    [ -f "$log" ] || continue
    lines=$(wc -l <"$log")
    say "$scenario: fail2ban-regex ${FILTER[$jail]} on $(basename "$log") ($lines lines, TZ=$tz)"
    # TZ: RFC 3164 stamps are local time in the scenario's zone; fail2ban converts them
    # with the process's zone. -o prints one row per failure (time, address, the line).
    TZ=$tz /usr/bin/time -f '%e %U %S' -o "$out/$jail.time" \
      fail2ban-regex -o '<time>	<ip>	<msg>' "$log" "${FILTER[$jail]}" >"$out/$jail.tsv"
    read -r wall user sys <"$out/$jail.time"
    say "$scenario: $jail: $(wc -l <"$out/$jail.tsv") failures matched in ${wall}s"
    jails+=(--jail "$jail=$out/$jail.tsv")
    timing+=("{\"filter\": \"${FILTER[$jail]}\", \"file\": \"$(basename "$log")\", \"lines\": $lines, \"wall\": $wall, \"cpu\": $(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')}")
  done
  (IFS=,; echo "[${timing[*]}]") >"$out/timing.json"

  python3 "$jail_py" replay --truth "$out/truth.json" --tz "$tz" "${jails[@]}" \
    --logs "$out"/*.log --timing "$out/timing.json" --report "$out/fail2ban-report.json" --summary "$out/summary.json"
  # eval exits 1 only when a threshold is missed; none are given here.
  "$bin" eval "$out/truth.json" "$out/fail2ban-report.json" >&2
  "$bin" eval "$out/truth.json" "$out/fail2ban-report.json" --format json >"$out/eval.json"
  sections+=("$(python3 "$jail_py" markdown --truth "$out/truth.json" --summary "$out/summary.json" --eval "$out/eval.json")")
done

cat <<EOT
### $(date -u '+%Y-%m-%d %H:%M UTC') — fail2ban baseline on simulated logs

- Command: \`benches/fail2ban-baseline.sh $*\` (SEED=$SEED), commit $(git -C "$repo" rev-parse --short HEAD)
- Machine: $(nproc) CPUs, $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r); load average $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after
- Tools: $(fail2ban-regex --version 2>&1 | head -n 1), stock /etc/fail2ban (jails dovecot, postfix-sasl, sshd; filters \`dovecot[mode=normal]\`, \`postfix[mode=auth]\`, \`sshd[mode=normal]\`), Python $(python3 -c 'import platform; print(platform.python_version())')
- Method: fail2ban-regex finds the failures (with TZ set to the scenario's zone);
  \`benches/fail2ban_jail.py\` replays fail2ban 1.0.2's ticket counting (maxretry within
  findtime, estimated as fail2ban does), bans for bantime, and drops the attempts a banned
  address could not have made (the ban's ports); every address ever banned is reported as
  an attacker. fail2ban names no accounts and no campaigns.

$(printf '%s\n\n' "${sections[@]}")
EOT
