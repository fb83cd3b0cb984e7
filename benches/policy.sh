#!/usr/bin/env bash
# The policy server's throughput and latency under wrk, beside a bare axum server that
# answers every request with a constant (the `policy_constant` example), in the same
# run: Dovecot auth policy requests, an allow then the report of the same login
# (benches/policy.lua), on loopback. Also the memory per tracked account and source.
# Prints a Markdown block for RESULTS.md on stdout; progress goes to stderr.
#
#   benches/policy.sh
#   DURATION=20 CONNECTIONS=64 benches/policy.sh
#
# Settings (environment):
#   DURATION=10        seconds of each wrk run
#   CONNECTIONS=32     wrk connections (one wrk thread: the machine has 2 CPUs)
#   THREADS=1          wrk threads
#   ACCOUNTS=100000    accounts the requests spread over
#   SOURCES=50000      client addresses they spread over
#   REPORT_TO_ENGINE=true  [policy] report_to_engine: false measures the policy
#                      server without the detection engine's share of the CPUs
#   PORTCULLIS=PATH    measure this portcullis binary instead of building this tree's
#
# Needs cargo, wrk (Debian package `wrk`), curl and awk. Runs the benchmark only as
# asked: check `uptime` first (the figures mean little on a loaded machine).
set -euo pipefail

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
export ACCOUNTS=${ACCOUNTS:-100000}
export SOURCES=${SOURCES:-50000}
REPORT_TO_ENGINE=${REPORT_TO_ENGINE:-true}

root=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "policy-bench: $*" >&2; }
die() { log "$*"; exit 1; }
for tool in cargo wrk curl awk; do
    command -v "$tool" >/dev/null || die "needs $tool"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/policy-bench.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

log "building (release)"
(cd "$root" && cargo build --release -p portcullis --bin portcullis && cargo build --release -p portcullis-daemon --example policy_constant) >&2
bin=$root/target/release
portcullis=${PORTCULLIS:-$bin/portcullis}

# Waits for "NAME on http://ADDR" in a log file; prints ADDR.
listening() {
    local file=$1 name=$2
    for _ in $(seq 1 300); do
        local addr
        addr=$(grep -o "$name on http://[0-9.:]*" "$file" 2>/dev/null | head -1 | sed 's|.*http://||')
        if [ -n "$addr" ]; then
            echo "$addr"
            return
        fi
        sleep 0.1
    done
    die "$name did not start: $(cat "$file")"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
commit=$(cd "$root" && git rev-parse --short HEAD)

# The baseline.
"$bin/examples/policy_constant" 127.0.0.1:0 2>"$work/constant.log" &
pids+=($!)
constant=$(listening "$work/constant.log" policy_constant)

# The daemon: the policy listener with a secret, nothing else to do.
secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$secret" >"$work/policy-secret"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/token"
cat >"$work/portcullis.toml" <<TOML
[daemon]
state_dir = "$work/state"
dry_run = true
[http]
listen = "127.0.0.1:0"
token_file = "$work/token"
[policy]
listen = "127.0.0.1:0"
secret_file = "$work/policy-secret"
report_to_engine = $REPORT_TO_ENGINE
TOML
"$portcullis" run -c "$work/portcullis.toml" 2>"$work/daemon.log" &
pids+=($!)
daemon_pid=$!
policy=$(listening "$work/daemon.log" "policy server")
admin=$(listening "$work/daemon.log" "admin API")
rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$daemon_pid/status")

run() {
    local url=$1 out=$2
    POLICY_SECRET=$secret wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency \
        -s "$root/benches/policy.lua" "http://$url" >"$out"
}
# wrk's "Requests/sec:" line and the 99% latency, in ms.
rps() { awk '/Requests\/sec:/ {printf "%d", $2}' "$1"; }
p99() {
    awk '$1 == "99%" {
        v = $2; u = v; gsub(/[0-9.]/, "", u); sub(/[a-z]+$/, "", v);
        if (u == "us") v = v / 1000; else if (u == "s") v = v * 1000;
        printf "%.3f", v }' "$1"
}
errors() { awk '/Non-2xx|Socket errors/ {print}' "$1" | tr '\n' ' '; }

log "warm-up"
DURATION=2 run "$constant" "$work/warm1.txt"
DURATION=2 run "$policy" "$work/warm2.txt"
log "bare axum, ${DURATION}s"
run "$constant" "$work/constant.txt"
log "portcullis policy server, ${DURATION}s"
run "$policy" "$work/policy.txt"
log "bare axum again, ${DURATION}s"
run "$constant" "$work/constant2.txt"

rss_after=$(awk '/VmRSS/ {print $2}' "/proc/$daemon_pid/status")
metrics=$(curl -s "http://$admin/metrics")
entries() { echo "$metrics" | awk -v t="$1" '$1 ~ "portcullis_policy_entries\\{table=\""t"\"" {print $2}'; }
accounts=$(entries accounts)
sources=$(entries sources)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

c1=$(rps "$work/constant.txt"); c2=$(rps "$work/constant2.txt"); p=$(rps "$work/policy.txt")
bare=$(( (c1 + c2) / 2 ))
ratio=$(awk -v p="$p" -v b="$bare" 'BEGIN {printf "%.2f", p / b}')
tracked=$((accounts + sources))
if [ "$REPORT_TO_ENGINE" = true ]; then
    rss_note="includes the engine's own tables, fed by the reports"
else
    rss_note="the policy's tables and the allocator's spare room; no events reach the engine"
fi
per_entry=$(awk -v a="$rss_after" -v b="$rss_before" -v n="$tracked" 'BEGIN {if (n > 0) printf "%.0f", (a - b) * 1024 / n; else print "n/a"}')

log "slot sizes from the policy crate's memory test"
slots=$(cd "$root" && cargo test --release -q -p portcullis-policy state_per_tracked -- --nocapture 2>&1 | grep "bytes per tracked entry" || true)

cat <<MD
### $(date -u '+%Y-%m-%d %H:%M') UTC — benches/policy.sh, the policy server beside a bare axum server

- Command: \`DURATION=$DURATION CONNECTIONS=$CONNECTIONS THREADS=$THREADS ACCOUNTS=$ACCOUNTS SOURCES=$SOURCES REPORT_TO_ENGINE=$REPORT_TO_ENGINE benches/policy.sh\` at commit $commit
- Machine: $(nproc) CPUs (\`nproc\`), $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r); load average before: $load_before
- Load: \`wrk -t$THREADS -c$CONNECTIONS --latency -s benches/policy.lua\`, on the same CPUs as the server: Dovecot \`?command=allow\` then \`?command=report\` of the same login, $ACCOUNTS accounts, $SOURCES addresses, a quarter succeeding

| server | requests/s | p99 | errors |
| --- | ---: | ---: | --- |
| bare axum (\`policy_constant\`), before | $c1 | $(p99 "$work/constant.txt") ms | $(errors "$work/constant.txt") |
| portcullis policy server | $p | $(p99 "$work/policy.txt") ms | $(errors "$work/policy.txt") |
| bare axum, after | $c2 | $(p99 "$work/constant2.txt") ms | $(errors "$work/constant2.txt") |

- Policy server / bare axum (mean of before and after): $ratio
- Tracked after the runs: $accounts accounts, $sources sources; daemon RSS $((rss_before / 1024)) MiB before, $((rss_after / 1024)) MiB after: $per_entry bytes per tracked entry by RSS ($rss_note)
- Policy tables alone: $slots
- Load average after: $load_after
MD
