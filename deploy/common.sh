# Shared by run-local.sh, test.sh and bench.sh: installs prerequisites (idempotently), starts the local
# Postgres and builds the Rust workspace. Source it; it sets REPO and the PROCYON_* variables.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO
# Debian's Rust has the wasm32 standard library; a rustup toolchain in ~/.cargo/bin does not.
export PATH="/usr/bin:$PATH"

APT_PACKAGES=(rustc cargo libstd-rust-dev-wasm32 lld-14 wabt binaryen
  librust-syn-dev librust-quote-dev librust-proc-macro2-dev librust-log-dev librust-serde-dev librust-rand-dev librust-http-dev
  postgresql redis-server)

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_prerequisites() {
  local missing=()
  for package in "${APT_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "Installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  command -v dotnet >/dev/null || { echo "the .NET 10 SDK is required (dotnet on PATH)" >&2; exit 1; }
}

# Starts the local cluster and creates the procyon role and the given databases.
start_postgres() {
  local cluster
  cluster="$(pg_lsclusters -h | awk 'NR==1 {print $1" "$2}')"
  [ -n "$cluster" ] || { echo "no Postgres cluster found (pg_lsclusters)" >&2; exit 1; }
  # shellcheck disable=SC2086
  pg_lsclusters -h | awk 'NR==1 {print $4}' | grep -q online || as_root pg_ctlcluster $cluster start
  as_root su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname = 'procyon'\"" | grep -q 1 ||
    as_root su postgres -c "psql -qc \"CREATE ROLE procyon LOGIN PASSWORD 'procyon'\""
  # Tests create a database per test class; each published database gets a read-only role.
  as_root su postgres -c "psql -qc \"ALTER ROLE procyon CREATEDB CREATEROLE\""
  # Tests drop their databases WITH (FORCE), which must end sessions of the databases' reader roles.
  as_root su postgres -c "psql -qc \"GRANT pg_signal_backend TO procyon\""
  # Tests run a dozen servers at once, each with its own connection pool; Debian's default of
  # 100 connections is too few for that.
  if [ "$(as_root su postgres -c "psql -qtAc 'SHOW max_connections'")" -lt 400 ]; then
    as_root su postgres -c "psql -qc 'ALTER SYSTEM SET max_connections = 400'"
    # shellcheck disable=SC2086
    as_root pg_ctlcluster $cluster restart
  fi
  for database in "$@"; do
    as_root su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname = '$database'\"" | grep -q 1 ||
      as_root su postgres -c "createdb -O procyon '$database'"
  done
}

# Builds the SDK, the example module and the test modules for wasm32.
build_modules() {
  log "Building Rust modules (wasm32-unknown-unknown)"
  (cd "$REPO/src/rust" && cargo build --quiet --release --target wasm32-unknown-unknown)
  WASM_DIR="$REPO/src/rust/target/wasm32-unknown-unknown/release"
  export WASM_DIR
}

# The benchmarks at the sizes of the README's figures, and at the tiny sizes CI runs so that a
# benchmark that no longer runs fails there (the abuse benchmark compares nothing: CI only).
BENCHMARKS=("codec" "http-add 16 10" "sleepers 1000 5000 10000" "inserts 5000 16" "hub 1000 100" "scheduler 10000 20000" "scheduler 10000 20000 1000" "startup 50" "databases 1000 10" "publish 10 200" "durable 10000")
TINY_BENCHMARKS=("codec 100" "http-add 2 1" "sleepers 20" "startup 2" "inserts 20 2" "hub 5 3" "scheduler 20 20" "scheduler 20 20 5" "databases 3 1" "publish 1 5" "durable 5" "abuse 4")

# run_benchmarks CONFIGURATION ROUNDS BENCHMARK...: each benchmark once per round, in turn, so a
# slow spell of the machine hits every one alike; then one markdown table of the medians.
run_benchmarks() {
  local configuration="$1" rounds="$2" outputs round number benchmark
  shift 2
  outputs="$(mktemp -d)"
  for round in $(seq "$rounds"); do
    number=0
    for benchmark in "$@"; do
      number=$((number + 1))
      log "Benchmark round $round of $rounds: $benchmark"
      # shellcheck disable=SC2086
      dotnet run --no-build -c "$configuration" --project "$REPO/tests/Procyon.Benchmarks" -- $benchmark | tee "$outputs/$round-$number.txt"
    done
  done
  log "Medians over $rounds rounds (ratios: the median of each round's)"
  dotnet run --no-build -c "$configuration" --project "$REPO/tests/Procyon.Benchmarks" -- summarize "$outputs"/*.txt
  rm -rf "$outputs"
}
