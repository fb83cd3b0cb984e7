#!/usr/bin/env bash
# Side-by-side throughput of `portcullis events`, `wc -l` and fail2ban-regex on one
# generated mail log, on this machine, with the file in the page cache.
#
#   benches/compare.sh [SIZE]        # SIZE defaults to 1G; e.g. 200M while developing
#
# Environment:
#   RUNS=3            runs of each fast command; the best wall time is reported
#   F2B_LINES=500000  lines of the file given to fail2ban-regex (it is ~100x slower)
#   SEED=1            generator seed
#   LABEL=...         a note for the results heading (e.g. "placeholder parsers")
#
# The log is generated into a temporary directory outside the repository and deleted on
# exit. Prints progress on stderr and, at the end, a Markdown block for
# benches/RESULTS.md on stdout.
set -euo pipefail

SIZE=${1:-1G}
RUNS=${RUNS:-3}
F2B_LINES=${F2B_LINES:-500000}
SEED=${SEED:-1}
YEAR=2024
LABEL=${LABEL:-}
FILTER=/etc/fail2ban/filter.d/dovecot.conf

repo=$(cd "$(dirname "$0")/.." && pwd)
say() { echo "compare.sh: $*" >&2; }
die() { say "$*"; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is missing: $2"; }

need python3 "install Python 3"
need cargo "install the Rust toolchain (rustup)"
need wc "install coreutils"
need awk "install gawk or mawk"
need taskset "install util-linux"
need fail2ban-regex "install the Debian package fail2ban (apt-get install fail2ban)"
[ -x /usr/bin/time ] || die "/usr/bin/time is missing: install the Debian package time (GNU time)"
/usr/bin/time -f '%e' true 2>/dev/null || die "/usr/bin/time is not GNU time (needs -f)"
[ -r "$FILTER" ] || die "$FILTER is missing: install the Debian package fail2ban"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer"
[[ "$F2B_LINES" =~ ^[1-9][0-9]*$ ]] || die "F2B_LINES must be a positive integer"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
log=$tmp/mail.log

say "building: cargo build --release -p portcullis"
(cd "$repo" && cargo build --release --quiet -p portcullis) || die "cargo build failed"
target=$(cd "$repo" && cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
bin=$target/release/portcullis
[ -x "$bin" ] || die "$bin was not built"

say "generating $SIZE of mail log (seed $SEED) into $log"
python3 "$repo/benches/gen-mail-log.py" --size "$SIZE" --seed "$SEED" --year "$YEAR" --out "$log" 2>"$tmp/gen.txt" ||
  { cat "$tmp/gen.txt" >&2; die "generator failed"; }
cat "$tmp/gen.txt" >&2
bytes=$(wc -c <"$log")
lines=$(wc -l <"$log")
head -n "$F2B_LINES" "$log" >"$tmp/slice.log"
slice_lines=$(wc -l <"$tmp/slice.log")
# Warm the page cache.
cat "$log" "$tmp/slice.log" >/dev/null

# measure NAME RUNS CMD...: runs CMD with stdout to $out (default /dev/null), keeps the
# best wall time and its CPU time (user + sys), and the largest peak RSS. Sets best_wall,
# best_cpu, max_rss_kb. Wall time is taken with nanosecond clock reads around GNU time,
# which gives CPU time and peak RSS (its own wall clock has 10 ms resolution).
out=/dev/null
measure() {
  local name=$1 runs=$2
  shift 2
  best_wall= best_cpu= max_rss_kb=0
  local i t0 t1 wall _wall user sys rss
  for ((i = 1; i <= runs; i++)); do
    t0=$(date +%s%N)
    /usr/bin/time -f '%e %U %S %M' -o "$tmp/time" "$@" >"$out" 2>"$tmp/stderr" ||
      { cat "$tmp/stderr" >&2; die "$name failed: $*"; }
    t1=$(date +%s%N)
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    read -r _wall user sys rss <"$tmp/time"
    say "  $name run $i/$runs: ${wall}s wall, ${user}s user, ${sys}s sys, ${rss} KiB peak RSS"
    if [ -z "$best_wall" ] || awk -v a="$wall" -v b="$best_wall" 'BEGIN { exit !(a < b) }'; then
      best_wall=$wall
      best_cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    fi
    if [ "$rss" -gt "$max_rss_kb" ]; then max_rss_kb=$rss; fi
  done
}

# rate LINES SECONDS: lines per second, guarding against a zero time.
rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s < 0.001) s = 0.001; printf "%.0f", n / s }'; }
human() { awk -v r="$1" 'BEGIN { if (r >= 1e6) printf "%.2f M", r / 1e6; else if (r >= 1e3) printf "%.1f k", r / 1e3; else printf "%.0f ", r }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }

rows=()
row() { # NAME COMMAND LINES
  local r_wall r_cpu
  r_wall=$(rate "$3" "$best_wall")
  r_cpu=$(rate "$3" "$best_cpu")
  rows+=("| $1 | \`$2\` | $3 | $best_wall | $best_cpu | $(mib "$max_rss_kb") | $(human "$r_wall")lines/s | $(human "$r_cpu")lines/s |")
  eval "rate_$4=$r_wall"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)

say "wc -l"
measure "wc -l" "$RUNS" wc -l "$log"
row "wc -l" "wc -l FILE" "$lines" wc

say "portcullis events (JSON)"
measure "events" "$RUNS" "$bin" events -q "$log"
row "portcullis events (JSON, all cores)" "portcullis events -q FILE > /dev/null" "$lines" events

say "portcullis events (JSON) pinned to one core"
measure "events one core" "$RUNS" taskset -c 0 "$bin" events -q "$log"
row "portcullis events (JSON, one core)" "taskset -c 0 portcullis events -q FILE > /dev/null" "$lines" onecore

say "portcullis events (CSV)"
measure "events csv" "$RUNS" "$bin" events -q --format csv "$log"
row "portcullis events (CSV, all cores)" "portcullis events -q --format csv FILE > /dev/null" "$lines" csv

say "fail2ban-regex on the first $slice_lines lines (one run; this takes a while)"
out=$tmp/f2b.txt measure "fail2ban-regex" 1 fail2ban-regex "$tmp/slice.log" "$FILTER"
f2b_wall=$best_wall
row "fail2ban-regex, stock \`dovecot\` filter" "fail2ban-regex SLICE $FILTER" "$slice_lines" f2b

# What each tool found, for the record (not timed).
summary=$("$bin" events "$log" 2>&1 >/dev/null | tail -n 1)
f2b_found=$(grep -m1 '^Lines:' "$tmp/f2b.txt" || true)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) print "n/a"; else printf "%.3g", a / b }'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v + 0 >= t ? "met" : "NOT met") }'; }
r_wc=$(ratio "$rate_events" "$rate_wc")
r_f2b=$(ratio "$rate_onecore" "$rate_f2b")

cpu=$(grep -m1 -E '^(model name|Hardware|cpu model)' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')
mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$repo" diff --quiet HEAD 2>/dev/null || commit="$commit (with uncommitted changes)"
mb=$(awk -v b="$bytes" 'BEGIN { printf "%.2f GiB (%d bytes)", b / 1073741824, b }')

cat <<EOF
### $(date -u '+%Y-%m-%d %H:%M UTC')${LABEL:+ — $LABEL}

- Command: \`benches/compare.sh $SIZE\` (RUNS=$RUNS, F2B_LINES=$F2B_LINES, SEED=$SEED), commit $commit
- Machine: $(nproc) CPUs, ${cpu:-unknown CPU}, $mem RAM, Linux $(uname -r); load average $load_before before, $load_after after
- Tools: $(rustc --version 2>/dev/null || echo rustc unknown), $(fail2ban-regex --version 2>/dev/null | head -n 1), $(wc --version | head -n 1)
- File: generated mail log, $mb, $lines lines (\`gen-mail-log.py --size $SIZE --seed $SEED --year $YEAR\`), warm page cache
- Portcullis found: $summary
- fail2ban-regex found: ${f2b_found:-?} (on the $slice_lines-line slice)

| tool | command | lines | wall s (best of $RUNS) | CPU s (that run) | peak RSS MiB | lines/s (wall) | lines/s (CPU) |
| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |
$(printf '%s\n' "${rows[@]}")

fail2ban-regex ran once, on the first $slice_lines lines of the same file (the whole file would take too long); its rate is from that slice, including its start-up (${f2b_wall} s in all). \`portcullis events\` runs three threads (read and prefilter, parse, write) on the machine's $(nproc) cores; the one-core row pins it to one CPU with \`taskset\`, and is the one compared with fail2ban-regex (single-threaded).

| target | measured | |
| --- | ---: | --- |
| \`events\` ≥ 2 M lines/s on one core | $(human "$rate_onecore")lines/s | $(verdict "$rate_onecore" 2000000) |
| \`events\` on one core ≥ 100 × fail2ban-regex | $r_f2b × | $(verdict "$r_f2b" 100) |
| \`events\` ≥ 1/10 of \`wc -l\` | $r_wc × | $(verdict "$r_wc" 0.1) |
EOF
