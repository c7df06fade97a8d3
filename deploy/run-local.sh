#!/usr/bin/env bash
# Runs Procyon on this machine: local Postgres, the example module published as database
# `example`, Swagger UI at the printed URL. Ctrl-C stops the server.
source "$(dirname "$0")/common.sh"

PORT="${PORT:-5080}"
URL="http://localhost:$PORT"

install_prerequisites
start_postgres procyon
build_modules

log "Building the server and the command line"
dotnet build --nologo -v quiet -c Release "$REPO/src/Procyon.Server/Procyon.Server.csproj" >/dev/null
dotnet build --nologo -v quiet -c Release "$REPO/src/Procyon.Cli/Procyon.Cli.csproj" >/dev/null

export ConnectionStrings__Postgres="${ConnectionStrings__Postgres:-Host=localhost;Username=procyon;Password=procyon;Database=procyon;SSL Mode=Disable}"
dotnet run --no-build -c Release --project "$REPO/src/Procyon.Server" -- --urls "$URL" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null' EXIT INT TERM

for _ in $(seq 1 120); do
  curl -fs "$URL/healthz" >/dev/null 2>&1 && break
  kill -0 $SERVER 2>/dev/null || { echo "the server exited; see its output above" >&2; exit 1; }
  sleep 0.5
done

log "Publishing the example module as database 'example'"
# The first identity to publish a database owns it: keep this machine's token for the next run.
TOKEN_FILE="$REPO/.procyon/local-token"
if [ ! -s "$TOKEN_FILE" ]; then
  mkdir -p "$(dirname "$TOKEN_FILE")"
  curl -fsS -X POST "$URL/v1/identity" | sed -E 's/.*"token":"([^"]+)".*/\1/' > "$TOKEN_FILE"
fi
TOKEN="$(cat "$TOKEN_FILE")"
curl -fsS -X PUT "$URL/v1/databases/example" -H "Authorization: Bearer $TOKEN" --data-binary "@$WASM_DIR/example.wasm" -o /dev/null

cat <<INFO

  Procyon is running.
  Console:     $URL/
  Swagger UI:  $URL/swagger
  CLI:         alias procyon='dotnet $REPO/src/Procyon.Cli/bin/Release/net10.0/procyon.dll'; export PROCYON_SERVER=$URL
               procyon login --token "\$(cat $TOKEN_FILE)"   # as the identity that owns 'example'
               procyon call example add 2 3
  Try:         curl -X POST $URL/v1/databases/example/call/add -d '[2,3]'
               curl -X POST $URL/v1/databases/example/call/sleep_one_second -d '[]'
               curl $URL/v1/databases/example/logs -H "Authorization: Bearer \$TOKEN"
  Publish:     curl -X PUT $URL/v1/databases/example -H "Authorization: Bearer \$TOKEN" --data-binary @module.wasm
               with the token of the identity that owns 'example' (logs are the owner's too):
               TOKEN=$TOKEN
  Stop:        Ctrl-C

INFO
wait $SERVER
