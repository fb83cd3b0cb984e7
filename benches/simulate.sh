#!/usr/bin/env bash
# Generation speed of `portcullis simulate`: the westminster scenario at scale 1 and 10,
# written to a temporary directory (deleted on exit). Prints a Markdown block for
# benches/RESULTS.md on stdout, progress on stderr.
#
#   benches/simulate.sh            # RUNS=3 by default
set -euo pipefail
RUNS=${RUNS:-3}
repo=$(cd "$(dirname "$0")/.." && pwd)
say() { echo "simulate.sh: $*" >&2; }
[ -x /usr/bin/time ] || { say "/usr/bin/time is missing: install the Debian package time"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-sim.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$repo" && cargo build --release --quiet -p portcullis)
bin=$(cd "$repo" && cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/portcullis

rows=()
for scale in 1 10; do
  best=
  for ((i = 1; i <= RUNS; i++)); do
    rm -rf "$tmp/out"
    t0=$(date +%s%N)
    /usr/bin/time -f '%U %S %M' -o "$tmp/time" "$bin" simulate --scenario westminster --scale "$scale" --out "$tmp/out" -q
    t1=$(date +%s%N)
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    read -r user sys rss <"$tmp/time"
    lines=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["lines"])' "$tmp/out/truth.json")
    bytes=$(du -cb "$tmp/out"/*.log | tail -n 1 | cut -f1)
    say "scale $scale run $i: ${wall}s wall, ${user}s user, ${rss} KiB peak RSS, $lines lines"
    if [ -z "$best" ] || awk -v a="$wall" -v b="$best" 'BEGIN { exit !(a < b) }'; then
      best=$wall; best_cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }'); best_rss=$rss
    fi
  done
  rate=$(awk -v n="$lines" -v s="$best" 'BEGIN { printf "%.2f", n / s / 1e6 }')
  mb=$(awk -v b="$bytes" 'BEGIN { printf "%.0f", b / 1048576 }')
  rows+=("| westminster, scale $scale | $lines | $mb | $best | $best_cpu | $(awk -v k="$best_rss" 'BEGIN { printf "%.0f", k / 1024 }') | $rate M |")
done

cat <<EOT
### $(date -u '+%Y-%m-%d %H:%M UTC') — simulate

- Command: \`benches/simulate.sh\` (RUNS=$RUNS), commit $(git -C "$repo" rev-parse --short HEAD)
- Machine: $(nproc) CPUs, $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM; load average $(cut -d' ' -f1-3 /proc/loadavg)

| run | lines | MiB written | wall s (best of $RUNS) | CPU s | peak RSS MiB | lines/s |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
$(printf '%s\n' "${rows[@]}")

Target: the westminster scenario generated at ≥ 1 M lines/s.
EOT
