#!/usr/bin/env bash
# The official EventStoreDB/KurrentDB Python clients against `daojia serve` (CI runs this, see
# .ci/run):
#   1. a venv per client package under ${XDG_CACHE_HOME:-$HOME/.cache}/daojia-py-<package>,
#      from requirements-<package>.txt (their grpcio pins conflict); reused while the
#      requirements file is unchanged;
#   2. builds `daojia` (cargo, honouring CARGO_TARGET_DIR; DAOJIA_BIN=PATH uses that binary);
#   3. starts an insecure server and a TLS server with tokens, both on port 0 (the address
#      is read from the `listening` log line; readiness by polling the log), and runs
#      test_esdb_clients.py with kurrentdbclient and with esdbclient;
#   4. starts a server on a simulated clock, runs a small `daojia simulate` against it, and
#      checks that examples/analytics/kpis.py recomputes the KPI projection's table
#      (`daojia admin --json kpis`) exactly, for every breakdown.
# Stops the servers and exits non-zero with a message naming what failed.
# Usage: bash tests/python/run.sh
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/tests/python"
cache="${XDG_CACHE_HOME:-$HOME/.cache}"
packages=(kurrentdbclient esdbclient)

work="$(mktemp -d "${TMPDIR:-/tmp}/daojia-py.XXXXXX")"
server_pids=()
failures=()

cleanup() {
    local pid
    for pid in "${server_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${server_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

say() { printf 'run.sh: %s\n' "$*" >&2; }
die() {
    say "FAILED: $*"
    exit 1
}

# --- 1. venvs -----------------------------------------------------------------------------

# Makes an empty venv with pip at $1. Without ensurepip (Debian's python3 without
# python3-venv) it falls back to virtualenv from `pip --user`, then to apt-get as root.
make_venv() {
    local dir=$1
    if python3 -m venv "$dir" >/dev/null 2>&1 && "$dir/bin/python" -m pip --version >/dev/null 2>&1; then
        return 0
    fi
    rm -rf "$dir"
    if ! python3 -m virtualenv --version >/dev/null 2>&1; then
        python3 -m pip install --user --quiet virtualenv >/dev/null 2>&1 ||
            python3 -m pip install --user --quiet --break-system-packages virtualenv >/dev/null 2>&1 ||
            true
    fi
    if python3 -m virtualenv --version >/dev/null 2>&1; then
        python3 -m virtualenv --quiet "$dir" && return 0
    fi
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        say "installing python3-venv with apt-get"
        apt-get update -qq >/dev/null && apt-get install -y -qq python3-venv >/dev/null &&
            python3 -m venv "$dir" && return 0
    fi
    die "cannot make a Python venv at $dir: install python3-venv (or pip, for virtualenv)"
}

venv_python() {
    printf '%s/daojia-py-%s/bin/python' "$cache" "$1"
}

ensure_venv() {
    local pkg=$1
    local dir="$cache/daojia-py-$pkg" req="$here/requirements-$pkg.txt"
    if [[ -x $dir/bin/python ]] && cmp -s "$req" "$dir/requirements.txt" &&
        "$dir/bin/python" -c "import $pkg" 2>/dev/null; then
        return 0
    fi
    say "making $dir from $(basename "$req")"
    command -v python3 >/dev/null || die "python3 is not installed"
    rm -rf "$dir"
    mkdir -p "$cache"
    make_venv "$dir"
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" ||
        die "pip install -r $req"
    "$dir/bin/python" -c "import $pkg" || die "$pkg does not import in $dir"
    cp "$req" "$dir/requirements.txt"
}

for pkg in "${packages[@]}"; do ensure_venv "$pkg"; done

# --- 2. the binary --------------------------------------------------------------------------

if [[ -n ${DAOJIA_BIN:-} ]]; then
    bin=$DAOJIA_BIN
else
    say "building daojia"
    (cd "$root" && cargo build --locked --quiet -p daojia-server --bin daojia) || die "cargo build"
    bin="${CARGO_TARGET_DIR:-$root/target}/debug/daojia"
fi
[[ -x $bin ]] || die "no daojia binary at $bin"

# --- servers --------------------------------------------------------------------------------

# start_server NAME ARGS...: starts `daojia serve` on 127.0.0.1:0 with data and log under the
# work directory, waits until its store is open, and sets ADDR to its address.
start_server() {
    local name=$1
    shift
    local log="$work/$name.log"
    NO_COLOR=1 RUST_LOG=info "$bin" serve --listen 127.0.0.1:0 --data-dir "$work/$name" "$@" \
        >"$log" 2>&1 &
    local pid=$!
    server_pids+=("$pid")
    local deadline=$((SECONDS + 120))
    until grep -qs 'event store open, serving' "$log"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$log" >&2
            die "server $name exited before serving (log above)"
        fi
        ((SECONDS < deadline)) || die "server $name is not serving after 120 s"
        sleep 0.1
    done
    ADDR=$(grep -o 'listening addr=[^ ]*' "$log" | head -n 1 | cut -d= -f2)
    [[ -n $ADDR ]] || die "server $name logged no address"
    say "server $name on $ADDR"
}

show_log_and_record() { # NAME WHAT
    tail -n 30 "$work/$1.log" >&2 || true
    failures+=("$2")
}

start_server insecure --insecure
insecure_addr=$ADDR

# TLS with a self-signed certificate for localhost and three tokens, `ROLE TOKEN ACTOR`.
command -v openssl >/dev/null || die "openssl is needed to make the TLS test certificate"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null || die "openssl req"
admin_token=$(openssl rand -hex 24)
analytics_token=$(openssl rand -hex 24)
customer_token=$(openssl rand -hex 24)
printf 'admin %s py-admin\nanalytics %s py-analytics\ncustomer-app %s py-customer\n' \
    "$admin_token" "$analytics_token" "$customer_token" >"$work/tokens"
start_server tls --tokens "$work/tokens" --tls-cert "$work/cert.pem" --tls-key "$work/key.pem"
tls_port=${ADDR##*:}

# --- 3. the client tests ----------------------------------------------------------------------

for pkg in "${packages[@]}"; do
    say "test_esdb_clients.py with $pkg"
    if ! (cd "$here" &&
        DAOJIA_ESDB_PACKAGE=$pkg DAOJIA_ESDB_ADDR=$insecure_addr \
            DAOJIA_TLS_ADDR="localhost:$tls_port" DAOJIA_TLS_CA="$work/cert.pem" \
            DAOJIA_TLS_ADMIN="py-admin:$admin_token" \
            DAOJIA_TLS_ANALYTICS="py-analytics:$analytics_token" \
            DAOJIA_TLS_OTHER="py-customer:$customer_token" \
            "$(venv_python "$pkg")" test_esdb_clients.py); then
        show_log_and_record insecure "the client tests with $pkg"
    fi
done

# --- 4. the analytics example against the KPI projection ----------------------------------

kpis_check() {
    local sim_orders=60
    start_server simulated --insecure --simulated-clock 2027-01-15T06:00:00Z
    local addr=$ADDR admin=("$bin" admin --server "http://$ADDR")
    say "daojia simulate --workers 30 --orders $sim_orders --seed 1"
    "$bin" simulate --server "$addr" --workers 30 --orders "$sim_orders" --seed 1 \
        >"$work/simulate.out" 2>"$work/simulate.err" || {
        tail -n 20 "$work/simulate.err" >&2
        return 1
    }
    "${admin[@]}" wait-settled >/dev/null || return 1
    # The last event's commit position ($all read backwards, system events included).
    local head
    head=$("$(venv_python kurrentdbclient)" -c 'import sys
from kurrentdbclient import KurrentDBClient
print(KurrentDBClient(sys.argv[1]).get_commit_position(filter_exclude=()))' \
        "kdb://$addr?Tls=false") || return 1
    "$(venv_python kurrentdbclient)" "$root/examples/analytics/kpis.py" \
        --uri "kdb://$addr?Tls=false" --until "$head" --json >"$work/kpis.json" || return 1
    local b pairs=()
    for b in total day category county company; do
        "${admin[@]}" --json kpis --breakdown "$b" --limit 500 --min-position "$head" \
            >"$work/projection-$b.json" || return 1
        pairs+=("$b=$work/projection-$b.json")
    done
    "$(venv_python kurrentdbclient)" "$here/compare_kpis.py" "$work/kpis.json" "$head" \
        "$sim_orders" "${pairs[@]}"
}

say "examples/analytics/kpis.py against the KPI projection"
if ! kpis_check; then
    failures+=("examples/analytics/kpis.py does not agree with the KPI projection")
fi

if ((${#failures[@]})); then
    for f in "${failures[@]}"; do say "FAILED: $f"; done
    exit 1
fi
say "all passed: ${packages[*]} client tests, TLS with credentials, kpis.py = KPI projection"
