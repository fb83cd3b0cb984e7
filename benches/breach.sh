#!/usr/bin/env bash
# The breached-password index as a whole tool: build throughput and peak memory on N
# generated SHA-1 hashes (default 50 M) for a compact and a full index, bytes a hash,
# and range requests a second with wrk, beside nginx serving a static file of the same
# size as a range answer (the baseline). Lookups a second on one thread come from
# `cargo bench -p portcullis-breach`. Prints a Markdown block for benches/RESULTS.md on
# stdout, progress on stderr. Needs /usr/bin/time, wrk and nginx (Debian: time, wrk,
# nginx-light); the servers listen on loopback only and are stopped on exit.
#
#   benches/breach.sh                # N=50000000 MEMORY=1G DURATION=10
set -euo pipefail
N=${N:-50000000}
MEMORY=${MEMORY:-1G}
DURATION=${DURATION:-10}
repo=$(cd "$(dirname "$0")/.." && pwd)
say() { echo "breach.sh: $*" >&2; }
for tool in /usr/bin/time wrk nginx; do
  command -v "$tool" >/dev/null || [ -x "$tool" ] || [ -x "/usr/sbin/$tool" ] ||
    { say "$tool is missing (Debian: apt-get install time wrk nginx-light)"; exit 1; }
done
tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/portcullis-breach.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
(cd "$repo" && cargo build --release --quiet -p portcullis)
bin=$(cd "$repo" && cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/portcullis

say "generating $N hashes"
python3 "$repo/benches/gen-pwned.py" "$N" "$tmp/pwned.txt" 1
input_mb=$(du -m "$tmp/pwned.txt" | cut -f1)

rows=()
for mode in compact full; do
  flag=(); [ "$mode" = full ] && flag=(--full)
  say "building the $mode index"
  /usr/bin/time -f '%e %U %S %M' -o "$tmp/time" \
    "$bin" breach build --quiet --memory "$MEMORY" "${flag[@]}" "$tmp/pwned.txt" -o "$tmp/$mode.pcb"
  read -r wall user sys rss <"$tmp/time"
  size=$(stat -c %s "$tmp/$mode.pcb")
  rows+=("| $mode | $wall | $(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.1f", u + s }') | $(awk -v n="$N" -v w="$wall" 'BEGIN { printf "%.2f M", n / w / 1e6 }') | $((rss / 1024)) | $((size / 1048576)) | $(awk -v b="$size" -v n="$N" 'BEGIN { printf "%.2f", b / n }') |")
  "$bin" breach info "$tmp/$mode.pcb" >"$tmp/$mode.info"
done

say "serving the full index"
"$bin" breach serve --index "$tmp/full.pcb" --listen 127.0.0.1:0 >"$tmp/serve.out" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$tmp/serve.out" 2>/dev/null && break; sleep 0.1; done
base=$(sed -n 's/^listening on //p' "$tmp/serve.out")
cat >"$tmp/random.lua" <<'LUA'
math.randomseed(1)
request = function()
  return wrk.format("GET", string.format("/range/%05X", math.random(0, 0xFFFFF)))
end
LUA
curl -sf "$base/range/5BAA6" -o "$tmp/answer.txt" || python3 -c "import urllib.request,sys; open(sys.argv[2],'wb').write(urllib.request.urlopen(sys.argv[1]).read())" "$base/range/5BAA6" "$tmp/answer.txt"
answer_bytes=$(stat -c %s "$tmp/answer.txt")
wrk -t2 -c64 -d"${DURATION}s" -s "$tmp/random.lua" "$base" >"$tmp/wrk-ours.txt"
wrk -t2 -c64 -d"${DURATION}s" -H 'Add-Padding: true' -s "$tmp/random.lua" "$base" >"$tmp/wrk-padded.txt"

say "serving the same answer as a static file with nginx"
mkdir -p "$tmp/www/range"
cp "$tmp/answer.txt" "$tmp/www/range/5BAA6"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$tmp/nginx.conf" <<NGINX
worker_processes 2;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx.err;
events { worker_connections 1024; }
http {
  access_log off;
  default_type text/plain;
  client_body_temp_path $tmp/nginx-body;
  proxy_temp_path $tmp/nginx-proxy;
  fastcgi_temp_path $tmp/nginx-fastcgi;
  uwsgi_temp_path $tmp/nginx-uwsgi;
  scgi_temp_path $tmp/nginx-scgi;
  server { listen 127.0.0.1:$port; root $tmp/www; }
}
NGINX
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
"$nginx_bin" -c "$tmp/nginx.conf" &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/range/5BAA6" >/dev/null 2>&1 && break; sleep 0.1; done
wrk -t2 -c64 -d"${DURATION}s" "http://127.0.0.1:$port/range/5BAA6" >"$tmp/wrk-nginx.txt"

rps() { awk '/Requests\/sec/ { printf "%.0f", $2 }' "$1"; }
mean() { awk '/Latency/ { print $2; exit }' "$1"; }

cat <<EOT
### $(date -u '+%Y-%m-%d %H:%M UTC') — portcullis breach, $N generated SHA-1 hashes

- Command: \`N=$N MEMORY=$MEMORY DURATION=$DURATION benches/breach.sh\` at commit $(cd "$repo" && git rev-parse --short HEAD)
- Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ { print $2 }') GiB RAM, $(uname -r); load average before: $(cut -d' ' -f1-3 /proc/loadavg)
- Input: $N lines, $input_mb MiB (\`benches/gen-pwned.py $N FILE 1\`), memory budget $MEMORY

| index | build wall s | CPU s | hashes/s | peak RSS MiB | file MiB | bytes a hash |
| --- | --- | --- | --- | --- | --- | --- |
$(printf '%s\n' "${rows[@]}")

Range requests (wrk, 2 threads, 64 connections, ${DURATION} s, loopback; a range answer
here is about $answer_bytes bytes):

| server | requests/s | mean latency |
| --- | --- | --- |
| portcullis breach serve, random prefixes | $(rps "$tmp/wrk-ours.txt") | $(mean "$tmp/wrk-ours.txt") |
| portcullis breach serve, random prefixes, Add-Padding | $(rps "$tmp/wrk-padded.txt") | $(mean "$tmp/wrk-padded.txt") |
| nginx, the same answer as a static file (baseline) | $(rps "$tmp/wrk-nginx.txt") | $(mean "$tmp/wrk-nginx.txt") |

\`breach info\` of the compact index:

\`\`\`
$(cat "$tmp/compact.info")
\`\`\`
EOT
