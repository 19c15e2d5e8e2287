# Sourced by the scripts that measure a live server (loadtest.sh, overload.sh, schemathesis.sh):
# start_server PORT SERVE_ARGS... starts `$bk serve` on 127.0.0.1:PORT in the background, stops
# it on exit, and returns once /health answers (an error after 60 s); its pid is $server_pid.
# stop_server sends SIGTERM (the server drains) and waits.
start_server() {
  local port=$1
  shift
  "$bk" serve --port "$port" "$@" 2>/dev/null &
  server_pid=$!
  trap 'kill $server_pid 2>/dev/null || true' EXIT
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "error: bertkit serve on port $port did not become healthy within 60 s" >&2
  return 1
}

stop_server() {
  kill -TERM "$server_pid"
  wait "$server_pid" || true
}
