#!/usr/bin/env bash
# Runs a benchmark against the local Postgres: ./deploy/bench.sh sleepers 1000 5000 10000
#                                            ./deploy/bench.sh startup 50
#                                            ./deploy/bench.sh scheduler 10000 20000 1000
# Prints Procyon's figures beside a bare baseline run in the same process.
# ./deploy/bench.sh all [rounds] runs every one at the README's sizes, rounds times (3) in turn,
# and prints one markdown table of the medians: the README's Performance summary.
source "$(dirname "$0")/common.sh"

install_prerequisites
start_postgres procyon
build_modules
dotnet build --nologo -v quiet -c Release "$REPO/tests/Procyon.Benchmarks/Procyon.Benchmarks.csproj" >/dev/null
if [ "${1:-}" = all ]; then
  run_benchmarks Release "${2:-3}" "${BENCHMARKS[@]}"
else
  exec dotnet run --no-build -c Release --project "$REPO/tests/Procyon.Benchmarks" -- "$@"
fi
