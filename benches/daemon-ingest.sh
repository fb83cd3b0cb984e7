#!/usr/bin/env bash
# Sustained syslog ingest of `portcullis run` over loopback, beside a bare receiver of
# the same stream, and the daemon's resident memory while an attacker sends millions
# of distinct addresses and account names. Prints a Markdown block for RESULTS.md on
# stdout; progress goes to stderr.
#
#   benches/daemon-ingest.sh                 # udp, tcp, memory: about 15 minutes
#   benches/daemon-ingest.sh udp             # one part
#   RATE=100000 DURATION=10 MEM_EVENTS=1000000 benches/daemon-ingest.sh
#
# Settings (environment):
#   RATE=200000         events/s of the sustained runs
#   DURATION=25         seconds of each sustained run
#   STEP=50000          UDP: the rate is raised by this much until both receivers lose
#   STEP_DURATION=12    ... for this many seconds a step
#   MAX_RATE=600000     ... up to this
#   MEM_EVENTS=10000000 events of each memory run (distinct random addresses and names)
#   QUEUE=262144        the daemon's daemon.queue (its default)
#   SNAPSHOT_INTERVAL=10s  daemon.snapshot_interval: a third of the default, so that
#                       every run and step includes the engine's pauses for snapshots
#   KEEP=DIR            keep the daemons' logs, configurations and RSS samples there
#   LABEL=TEXT          what is being measured (goes in the heading)
#   PORTCULLIS=PATH     measure this portcullis binary (another commit's build) instead
#                       of building this tree's
#
# Needs cargo, curl and awk. Everything listens on 127.0.0.1 on ports the kernel picks,
# state goes to a temporary directory, and every process started is stopped on exit.
set -euo pipefail

RATE=${RATE:-200000}
DURATION=${DURATION:-25}
STEP=${STEP:-50000}
STEP_DURATION=${STEP_DURATION:-12}
MAX_RATE=${MAX_RATE:-600000}
MEM_EVENTS=${MEM_EVENTS:-10000000}
QUEUE=${QUEUE:-262144}
SNAPSHOT_INTERVAL=${SNAPSHOT_INTERVAL:-10s}
LABEL=${LABEL:-portcullis run, syslog ingest and memory}
PARTS=("$@")
[ ${#PARTS[@]} -gt 0 ] || PARTS=(udp tcp memory)

root=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "daemon-ingest: $*" >&2; }
die() { log "$*"; exit 1; }
for tool in cargo curl awk; do
    command -v "$tool" >/dev/null || die "needs $tool"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/daemon-ingest.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [ -n "${KEEP:-}" ]; then
        mkdir -p "$KEEP" && cp -r "$work"/. "$KEEP"/ && log "kept in $KEEP"
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building (release)"
if [ -z "${PORTCULLIS:-}" ]; then
    (cd "$root" && cargo build --release --bin portcullis) >&2
fi
(cd "$root" && cargo build --release -p portcullis-daemon --example syslog_load --example syslog_sink) >&2
bin=$root/target/release
portcullis=${PORTCULLIS:-$bin/portcullis}
load=$bin/examples/syslog_load
sink=$bin/examples/syslog_sink

# `key=value` lines: the value of one key.
field() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2 }'; }
# Kernel-wide UDP datagrams dropped for a full receive buffer.
rcvbuf_errors() { awk '/^Udp:/ { getline; print $6; exit }' /proc/net/snmp; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# --- the daemon ----------------------------------------------------------------------
# start_daemon NAME [ENGINE_TOML]: a fresh daemon with its own state directory.
start_daemon() {
    local name=$1 engine=${2:-}
    local dir=$work/$name
    mkdir -p "$dir/state"
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/token"
    cat >"$dir/portcullis.toml" <<EOF
[daemon]
state_dir = "$dir/state"
dry_run = true
snapshot_interval = "$SNAPSHOT_INTERVAL"
queue = $QUEUE

[sources.syslog]
udp = "127.0.0.1:0"
tcp = "127.0.0.1:0"

[parse]
timezone = "UTC"

[engine]
$engine

[http]
listen = "127.0.0.1:0"
token_file = "$dir/token"
EOF
    "$portcullis" run -c "$dir/portcullis.toml" 2>"$dir/daemon.log" &
    dpid=$!
    pids+=("$dpid")
    local i
    for i in $(seq 100); do
        grep -q "^portcullis: running" "$dir/daemon.log" && break
        kill -0 "$dpid" 2>/dev/null || die "the daemon did not start: $(cat "$dir/daemon.log")"
        sleep 0.1
    done
    udp_addr=$(sed -n 's|.*syslog on udp://\([^,]*\).*|\1|p' "$dir/daemon.log")
    tcp_addr=$(sed -n 's|.*syslog on tcp://\(.*\)|\1|p' "$dir/daemon.log")
    http_addr=$(sed -n 's|.*admin API on http://\(.*\)|\1|p' "$dir/daemon.log")
    udp_buffer=$(sed -n 's|.*syslog on udp://[^,]*, \(receive buffer.*\)|\1|p' "$dir/daemon.log")
    [ -n "$udp_buffer" ] || udp_buffer="receive buffer not reported (the kernel's default)"
    [ -n "$udp_addr" ] && [ -n "$tcp_addr" ] && [ -n "$http_addr" ] \
        || die "cannot read the daemon's addresses: $(cat "$dir/daemon.log")"
    log "daemon $name (pid $dpid): udp $udp_addr, tcp $tcp_addr, http $http_addr; $udp_buffer"
}

stop_daemon() {
    kill -TERM "$dpid" 2>/dev/null || true
    wait "$dpid" 2>/dev/null || true
}

metrics() { curl -sf "http://$http_addr/metrics"; }
# metric NAME{LABELS}: one sample's value (0 if absent).
metric() { metrics | awk -v k="$1" '$1 == k { v = $2 } END { print v + 0 }'; }

# Waits until the daemon has taken in everything it received: its counters stop moving
# and its line queue is empty (the engine's counter is refreshed once a second).
settle() {
    local before="" now i
    for i in $(seq 120); do
        sleep 1
        now=$(metrics | awk '
            $1 == "portcullis_syslog_messages_total" { m = $2 }
            $1 == "portcullis_engine_events_total" { e = $2 }
            $1 == "portcullis_queue_depth{queue=\"lines\"}" { q = $2 }
            END { print m + 0, e + 0, q + 0 }')
        if [ "$now" = "$before" ] && [ "${now##* }" = 0 ]; then
            return
        fi
        before=$now
    done
    log "the daemon did not settle"
}

# --- one run each --------------------------------------------------------------------
# daemon_run PROTO RATE SECS: prints "sent rate received events kernel_drops queue_drops".
daemon_run() {
    local proto=$1 rate=$2 secs=$3 addr
    [ "$proto" = udp ] && addr=$udp_addr || addr=$tcp_addr
    local m0 e0 q0 k0 out
    m0=$(metric portcullis_syslog_messages_total)
    e0=$(metric portcullis_engine_events_total)
    q0=$(metric 'portcullis_syslog_dropped_total{reason="queue_full"}')
    k0=$(rcvbuf_errors)
    out=$("$load" "--$proto" "$addr" --rate "$rate" --duration "$secs")
    settle
    local m1 e1 q1 k1
    m1=$(metric portcullis_syslog_messages_total)
    e1=$(metric portcullis_engine_events_total)
    q1=$(metric 'portcullis_syslog_dropped_total{reason="queue_full"}')
    k1=$(rcvbuf_errors)
    echo "$(field "$out" sent) $(field "$out" rate) $((m1 - m0)) $((e1 - e0)) $((k1 - k0)) $((q1 - q0))"
}

# sink_run PROTO RATE SECS: the bare receiver; prints "sent rate received kernel_drops".
sink_run() {
    local proto=$1 rate=$2 secs=$3
    local err=$work/sink.err out=$work/sink.out
    : >"$err"
    if [ "$proto" = udp ]; then
        "$sink" --udp 127.0.0.1:0 --rcvbuf 8388608 --idle 2 >"$out" 2>"$err" &
    else
        "$sink" --tcp 127.0.0.1:0 --idle 2 >"$out" 2>"$err" &
    fi
    local spid=$! addr="" i
    pids+=("$spid")
    for i in $(seq 50); do
        addr=$(sed -n "s|.*listening on $proto://\([^,]*\).*|\1|p" "$err")
        [ -n "$addr" ] && break
        sleep 0.1
    done
    [ -n "$addr" ] || die "the bare receiver did not start: $(cat "$err")"
    local k0 gen
    k0=$(rcvbuf_errors)
    gen=$("$load" "--$proto" "$addr" --rate "$rate" --duration "$secs")
    wait "$spid" || die "the bare receiver failed: $(cat "$err")"
    local k1
    k1=$(rcvbuf_errors)
    echo "$(field "$gen" sent) $(field "$gen" rate) $(field "$(cat "$out")" received) $((k1 - k0))"
}

pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f %%", 100 * a / b; else print "-" }'; }
krate() { awk -v r="$1" 'BEGIN { printf "%.0f k", r / 1000 }'; }
# passed LOST SENT_RATE: a step at $rate passes.
passed() { awk -v lost="$1" -v sent_rate="$2" -v r="$rate" 'BEGIN { exit !(lost == 0 && sent_rate >= 0.95 * r) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

# --- the report's head ---------------------------------------------------------------
commit=$(cd "$root" && git rev-parse --short HEAD)
dirty=$(cd "$root" && git status --porcelain --untracked-files=no | grep -q . && echo " (with uncommitted changes)" || true)
[ -z "${PORTCULLIS:-}" ] || dirty="$dirty, daemon binary $PORTCULLIS"
cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
rmem_max=$(cat /proc/sys/net/core/rmem_max 2>/dev/null || echo "?")
rmem_default=$(cat /proc/sys/net/core/rmem_default 2>/dev/null || echo "?")
# What the bare receiver gets when it asks for 8 MiB, as the daemon does by default.
sink_granted=$(awk -v m="$rmem_max" 'BEGIN { printf "%d KiB", (m + 0 < 8388608 ? m : 8388608) / 1024 }')

echo "### $(date -u '+%Y-%m-%d %H:%M') UTC — $LABEL"
echo
echo "- Command: \`RATE=$RATE DURATION=$DURATION STEP=$STEP STEP_DURATION=$STEP_DURATION MAX_RATE=$MAX_RATE MEM_EVENTS=$MEM_EVENTS QUEUE=$QUEUE SNAPSHOT_INTERVAL=$SNAPSHOT_INTERVAL benches/daemon-ingest.sh ${PARTS[*]}\` at commit $commit$dirty"
echo "- Machine: $(nproc) CPUs (\`nproc\`), $cpu, $mem RAM, Linux $(uname -r); net.core.rmem_max $rmem_max, rmem_default $rmem_default; load average before: $(loadavg)"
echo "- Generator: \`syslog_load\` (Dovecot \`imap-login: Disconnected (auth failed, …)\` lines, about 190 bytes, RFC 3164 with PRI), one thread, on the same two CPUs as the receiver"
echo

want() { local p; for p in "${PARTS[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }

if want udp || want tcp; then
    start_daemon ingest
    echo "Daemon: default configuration but \`dry_run\`, \`daemon.queue = $QUEUE\`, \`daemon.snapshot_interval = \"$SNAPSHOT_INTERVAL\"\`, \`[parse] timezone = \"UTC\"\`; UDP $udp_buffer."
    echo
fi

# --- UDP -----------------------------------------------------------------------------
if want udp; then
    log "UDP at $RATE/s for $DURATION s, then stepping up"
    echo "#### UDP, a pool of 1,000 sources and 5,000 users"
    echo
    echo "Each rate: the bare receiver (\`syslog_sink\`, one blocking socket, 8 MiB asked, $sink_granted granted), then the daemon."
    echo "\"Kernel\" is datagrams dropped for a full socket buffer (\`/proc/net/snmp\` RcvbufErrors), \"queue\" the daemon's \`portcullis_syslog_dropped_total{reason=\"queue_full\"}\`; lost is sent minus engine events (daemon) or received (bare)."
    echo
    echo "| rate asked | secs | receiver | sent | sent/s | received | engine events | kernel | queue | lost |"
    echo "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    rate=$RATE secs=$DURATION
    best_daemon=0 best_sink=0 daemon_climbing=1 sink_climbing=1
    sustained_daemon="" sustained_sink=""
    while :; do
        log "udp $rate/s for $secs s: bare receiver"
        read -r s_sent s_rate s_recv s_kern < <(sink_run udp "$rate" "$secs")
        s_lost=$((s_sent - s_recv))
        echo "| $(krate "$rate") | $secs | bare | $s_sent | $(krate "$s_rate") | $s_recv | – | $s_kern | – | $s_lost ($(pct "$s_lost" "$s_sent")) |"
        log "udp $rate/s for $secs s: daemon"
        read -r d_sent d_rate d_recv d_events d_kern d_queue < <(daemon_run udp "$rate" "$secs")
        d_lost=$((d_sent - d_events))
        echo "| $(krate "$rate") | $secs | daemon | $d_sent | $(krate "$d_rate") | $d_recv | $d_events | $d_kern | $d_queue | $d_lost ($(pct "$d_lost" "$d_sent")) |"
        [ -n "$sustained_daemon" ] || sustained_daemon="$d_sent $d_rate $d_events $d_lost $d_kern $d_queue"
        [ -n "$sustained_sink" ] || sustained_sink="$s_sent $s_rate $s_recv $s_lost"
        # A step passes with nothing lost and the generator (on the same CPUs) within
        # 5 % of the rate asked; the climb goes on while either receiver passes.
        if [ "$sink_climbing" = 1 ] && passed "$s_lost" "$s_rate"; then best_sink=$rate; else sink_climbing=0; fi
        if [ "$daemon_climbing" = 1 ] && passed "$d_lost" "$d_rate"; then best_daemon=$rate; else daemon_climbing=0; fi
        [ "$sink_climbing" = 1 ] || [ "$daemon_climbing" = 1 ] || break
        rate=$((rate + STEP)) secs=$STEP_DURATION
        [ "$rate" -le "$MAX_RATE" ] || break
    done
    echo
    read -r d_sent d_rate d_events d_lost _ _ <<<"$sustained_daemon"
    read -r s_sent s_rate s_recv s_lost <<<"$sustained_sink"
    echo "- Sustained $(krate "$RATE")/s for $DURATION s: the daemon took in $d_events of $d_sent (lost $d_lost, $(pct "$d_lost" "$d_sent")); the bare receiver $s_recv of $s_sent (lost $s_lost)."
    echo "- Highest rate passed (nothing lost, and the generator within 5 % of the rate asked), stepping up by $(krate "$STEP")/s: daemon $(krate "$best_daemon")/s, bare receiver $(krate "$best_sink")/s; ratio daemon / bare $(ratio "$best_daemon" "$best_sink") (a rate of 0 k would mean the first rate did not pass)."
    echo
fi

# --- TCP -----------------------------------------------------------------------------
if want tcp; then
    echo "#### TCP (octet counting), one connection, a pool of 1,000 sources and 5,000 users"
    echo
    echo "TCP pushes back, so nothing is lost; what counts is whether the receiver keeps the pace. Paced at $(krate "$RATE")/s, then unpaced (as fast as the receiver reads)."
    echo
    echo "| rate asked | secs | receiver | sent | sent/s | received | engine events | lost |"
    echo "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
    for rate in "$RATE" 0; do
        asked=$([ "$rate" = 0 ] && echo unpaced || krate "$rate")
        log "tcp $asked for $DURATION s: bare receiver"
        read -r s_sent s_rate s_recv _ < <(sink_run tcp "$rate" "$DURATION")
        echo "| $asked | $DURATION | bare | $s_sent | $(krate "$s_rate") | $s_recv | – | $((s_sent - s_recv)) |"
        log "tcp $asked for $DURATION s: daemon"
        read -r d_sent d_rate d_recv d_events _ _ < <(daemon_run tcp "$rate" "$DURATION")
        echo "| $asked | $DURATION | daemon | $d_sent | $(krate "$d_rate") | $d_recv | $d_events | $((d_sent - d_events)) |"
        [ "$rate" = 0 ] && tcp_ratio=$(ratio "$d_rate" "$s_rate")
    done
    echo
    echo "- Unpaced, daemon / bare receiver: $tcp_ratio of the events a second (the daemon parses and judges every line; the bare receiver only counts frames)."
    echo
fi

if want udp || want tcp; then
    rss=$(awk '/VmHWM/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$dpid/status")
    echo "Daemon peak RSS over these runs: $rss."
    echo
    stop_daemon
fi

# --- memory --------------------------------------------------------------------------
# mem_run NAME ENGINE_TOML: MEM_EVENTS distinct random sources and names over TCP
# (no loss), sampling the daemon's memory and tables once a second.
mem_run() {
    local name=$1 engine=$2
    start_daemon "mem-$name" "$engine"
    local samples=$work/mem-$name/rss.tsv
    echo -e "secs\tvmrss_kib\tvmhwm_kib\tevents\tsources\tprefixes\taccounts\tpending\tevictions\tqueue" >"$samples"
    (
        t0=$(date +%s.%N)
        while kill -0 "$dpid" 2>/dev/null; do
            st=$(awk '/VmRSS/ { r = $2 } /VmHWM/ { h = $2 } END { print r, h }' "/proc/$dpid/status" 2>/dev/null) || break
            m=$(metrics | awk '
                $1 == "portcullis_engine_events_total" { e = $2 }
                $1 == "portcullis_engine_entries{table=\"sources\"}" { s = $2 }
                $1 == "portcullis_engine_entries{table=\"prefixes\"}" { p = $2 }
                $1 == "portcullis_engine_entries{table=\"accounts\"}" { a = $2 }
                $1 == "portcullis_engine_entries{table=\"pending\"}" { q = $2 }
                $1 == "portcullis_engine_evictions_total" { v = $2 }
                $1 == "portcullis_queue_depth{queue=\"lines\"}" { l = $2 }
                END { print e + 0, s + 0, p + 0, a + 0, q + 0, v + 0, l + 0 }') || m=""
            t=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
            echo "$t $st $m" | tr ' ' '\t' >>"$samples"
            sleep 1
        done
    ) &
    local sampler=$!
    pids+=("$sampler")
    log "memory ($name): $MEM_EVENTS random sources and names over TCP"
    local out
    out=$("$load" --tcp "$tcp_addr" --rate 0 --count "$MEM_EVENTS" --addresses random --ipv6-share 0.5)
    settle
    sleep 3
    local hwm rss events evicted
    hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$dpid/status")
    rss=$(awk '/VmRSS/ { print $2 }' "/proc/$dpid/status")
    events=$(metric portcullis_engine_events_total)
    evicted=$(metric portcullis_engine_evictions_total)
    local s p a q
    s=$(metric 'portcullis_engine_entries{table="sources"}')
    p=$(metric 'portcullis_engine_entries{table="prefixes"}')
    a=$(metric 'portcullis_engine_entries{table="accounts"}')
    q=$(metric 'portcullis_engine_entries{table="pending"}')
    # Stopping writes a last snapshot: the sampler watches that too, until the end.
    stop_daemon
    wait "$sampler" 2>/dev/null || true
    local hwm_all
    hwm_all=$(awk -F'\t' 'NR > 1 && $3 + 0 > m { m = $3 } END { print m + 0 }' "$samples")
    local settings
    settings=$(printf '%s\n' "$engine" | paste -sd, - | sed 's/,/, /g')
    echo "##### $name: \`[engine]\` ${settings:-(defaults: max_* = 1000000)}"
    echo
    echo "- Sent: $(field "$out" sent) events in $(field "$out" secs) s ($(krate "$(field "$out" rate)")/s over TCP, unpaced); engine events $events; evictions $evicted"
    echo "- Tables at the end: sources $s, prefixes $p, accounts $a, pending $q"
    echo "- **Peak RSS (VmHWM) $((hwm / 1024)) MiB** once all events were in; RSS then $((rss / 1024)) MiB; highest VmHWM sampled until the daemon exited (with its last snapshot, sampled once a second) $((hwm_all / 1024)) MiB"
    echo
    echo "RSS as the events came in (samples once a second; the first row past each tenth of the events, as the engine's counter shows them):"
    echo
    echo "| events in | RSS MiB | peak so far MiB | sources | accounts | pending | evictions |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    awk -F'\t' -v total="$MEM_EVENTS" '
        NR == 1 { next }
        { n = split("0.05 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9 1.0", marks, " ")
          hit = 0
          for (i = 1; i <= n; i++) if (!(i in done) && $4 >= marks[i] * total * 0.999) {
              done[i] = 1
              hit = 1
          }
          if (hit) printf "| %d | %d | %d | %d | %d | %d | %d |\n", $4, $2 / 1024, $3 / 1024, $5, $7, $8, $9
        }' "$samples"
    echo
}

if want memory; then
    echo "#### Memory: $MEM_EVENTS events, each a distinct random address (half IPv4, half IPv6) and user name"
    echo
    echo "One fresh daemon per configuration; events over one TCP connection as fast as the daemon takes them (TCP pushes back: none lost); RSS from \`/proc/PID/status\`."
    echo
    mem_run default ""
    mem_run bounded "max_sources = 100000
max_accounts = 100000
max_prefixes = 100000
max_pending = 100000"
fi

echo "- Load average after: $(loadavg)"
