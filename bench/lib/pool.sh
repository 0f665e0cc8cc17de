# Shared by the pool benchmarks (source it): wait_ready ENDPOINT [ZRANK] waits until a pool answers with a worker
# behind it (`zrank health --ready`, for up to 30 s) and fails loudly otherwise, so a benchmark never measures a pool
# that did not start.
wait_ready() {
  local endpoint="$1" zrank="${2:-.build/release/zrank}" start=$SECONDS
  while ((SECONDS - start < 30)); do
    "$zrank" health --endpoint "$endpoint" --ready --timeout 500ms >/dev/null 2>&1 && return 0
  done
  echo "the pool at $endpoint did not become ready in 30 s" >&2
  return 1
}
