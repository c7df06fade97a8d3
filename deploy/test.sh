#!/usr/bin/env bash
# Runs every test: installs prerequisites, starts the local Postgres, builds the Rust
# workspace (SDK, example and test modules) and the .NET solution, then runs the tests.
# Extra arguments go to `dotnet test` (e.g. --filter HostileModuleTests); without them, every
# benchmark also runs once at a tiny size.
source "$(dirname "$0")/common.sh"

install_prerequisites chromium
start_postgres procyon
build_modules

log "Installing the browser tests' packages (playwright-core drives Debian's Chromium) and the client tests' (TypeScript, @microsoft/signalr)"
for packages in browser clients; do
  (cd "$REPO/tests/$packages" && npm ci --no-audit --no-fund --loglevel=error)
done

log "Testing the Rust SDK on the build machine (codec golden vectors)"
(cd "$REPO/src/rust" && cargo test --quiet --workspace)

# Users build modules with current stable Rust (rustup); Debian's rustc here is older. Both must
# build the SDK, the macros and the modules without a warning.
if "$HOME/.cargo/bin/rustup" toolchain list 2>/dev/null | grep -q '^stable'; then
  log "Checking the Rust workspace with rustup's stable Rust, warnings as errors"
  # rustup's directory first, so that cargo runs rustup's rustc and not Debian's (common.sh put /usr/bin first).
  (cd "$REPO/src/rust" && PATH="$HOME/.cargo/bin:$PATH" RUSTFLAGS="-D warnings" cargo +stable check --quiet --workspace --all-targets --target-dir target/stable)
else
  log "No rustup stable toolchain on this machine: the check with stable Rust is skipped"
fi

log "Building and testing the .NET solution"
dotnet build --nologo -v quiet "$REPO/Server.sln"
# The servers' own warnings interleave with the test results; repeat the failures at the end,
# where a CI log's tail shows them.
results="$(mktemp)"
trap 'rm -f "$results"' EXIT
status=0
dotnet test --nologo --no-build "$REPO/Server.sln" --logger "console;verbosity=normal" "$@" 2>&1 | tee "$results" || status=$?
if [ "$status" -ne 0 ]; then
  log "Failed tests (details above):"
  awk '/^  Failed /{shown=1} /^  Stack Trace:/{shown=0} shown' "$results" | cut -c1-300 >&2
  exit "$status"
fi

# Every benchmark once at a tiny size (on a full run), so one that no longer runs fails here and
# not in a release measurement. The figures mean nothing at these sizes.
if [ "$#" -eq 0 ]; then
  run_benchmarks Debug 1 "${TINY_BENCHMARKS[@]}"
fi
