#!/usr/bin/env bash
# Speed of `portcullis audit`, the whole command on generated exports in a temporary
# directory (deleted on exit). Prints a Markdown block for benches/RESULTS.md on
# stdout, progress on stderr.
#
#   benches/audit.sh                 # RUNS=3, SHA_HASHES=40, BUDGET=120s
#
# 1. 100,000 pwdump lines (random NT hashes, 1 % of them shared, 1,000 of them in a
#    10,000-line --breached-list): every unsalted check, the 1,000-candidate guessing
#    through the precomputed NT map, JSON written to /dev/null.
# 2. SHA512-CRYPT (rounds=5000, `openssl passwd -6`, random salts) with passwords no
#    candidate matches, so every hash takes all 1,000 guesses: the guess rate on all
#    cores, and the time 10,000 such hashes would take.
set -euo pipefail
RUNS=${RUNS:-3}
SHA_HASHES=${SHA_HASHES:-40}
BUDGET=${BUDGET:-120s}
repo=$(cd "$(dirname "$0")/.." && pwd)
say() { echo "audit.sh: $*" >&2; }
command -v openssl >/dev/null || { say "openssl is missing: install the Debian package openssl"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-audit.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$repo" && cargo build --release --quiet -p portcullis)
bin=$(cd "$repo" && cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/portcullis

python3 - "$tmp" <<'PY'
import random, sys
tmp = sys.argv[1]
rng = random.Random(1)
hashes = ["%032x" % rng.getrandbits(128) for _ in range(99_000)]
hashes += rng.sample(hashes, 1_000)  # 1 % shared
with open(f"{tmp}/nt.txt", "w") as f:
    for i, h in enumerate(hashes):
        f.write(f"CORP\\user{i}:{1000 + i}:aad3b435b51404eeaad3b435b51404ee:{h}:::\n")
with open(f"{tmp}/breached.txt", "w") as f:
    for h in rng.sample(hashes, 1_000):
        f.write(f"{h.upper()}:{rng.randint(1, 100000)}\n")
    for _ in range(9_000):
        f.write("%032X:%d\n" % (rng.getrandbits(128), rng.randint(1, 100000)))
PY

best=
for ((i = 1; i <= RUNS; i++)); do
  t0=$(date +%s%N)
  "$bin" audit --quiet --format json -o "$tmp/nt.json" --breached-list "$tmp/breached.txt" "$tmp/nt.txt" || [ $? -eq 1 ]
  t1=$(date +%s%N)
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  say "100k NT run $i: ${wall}s"
  if [ -z "$best" ] || awk -v a="$wall" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$wall; fi
done
nt_findings=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["summary"]["breached"], r["summary"]["shared_password"])' "$tmp/nt.json")

say "generating $SHA_HASHES SHA512-CRYPT hashes"
for ((i = 0; i < SHA_HASHES; i++)); do
  salt=$(head -c 12 /dev/urandom | base64 | tr -dc 'a-zA-Z0-9' | head -c 16)
  printf 'user%d@example.org:{SHA512-CRYPT}%s:1000:1000::/home/u::\n' "$i" \
    "$(openssl passwd -6 -salt "$salt" "unguessable-$i-$salt")"
done >"$tmp/sha.txt"
t0=$(date +%s%N)
"$bin" audit --quiet --format json -o "$tmp/sha.json" --candidates 1000 --time-budget "$BUDGET" "$tmp/sha.txt" || [ $? -eq 1 ]
t1=$(date +%s%N)
wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
read -r guesses stopped full < <(python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["checks"]; print(c["guesses"], c["stopped_by_time_budget"], c["fully_checked"])' "$tmp/sha.json")
rate=$(awk -v g="$guesses" -v s="$wall" 'BEGIN { printf "%.0f", g / s }')
extra=$(awk -v r="$rate" 'BEGIN { s = 1e7 / r; printf "%.0f s (%.1f h)", s, s / 3600 }')

cat <<EOT
- Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average before: $(cut -d' ' -f1-3 /proc/loadavg)
- Commit: $(cd "$repo" && git rev-parse --short HEAD)

| workload | command | figure |
| --- | --- | --- |
| 100,000 pwdump NT hashes, 10,000-line breached list, 1,000 candidates | \`portcullis audit --quiet --format json -o FILE --breached-list breached.txt nt.txt\` | best of $RUNS: **${best} s** whole command (breached, shared accounts found: $nt_findings) |
| $SHA_HASHES SHA512-CRYPT (rounds=5000) × 1,000 candidates | \`portcullis audit --quiet --format json -o FILE --candidates 1000 --time-budget $BUDGET sha.txt\` | $guesses guesses in ${wall} s (fully checked $full, budget stopped: $stopped): **$rate guesses/s** on $(nproc) cores |
| 10,000 SHA512-CRYPT × 1,000 candidates (extrapolated) | | $extra |
EOT
