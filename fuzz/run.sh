#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of outside input (fuzz/README.md): builds the libFuzzer targets with
# AddressSanitizer (the Swift code also with libFuzzer's coverage; the C kernels and BoringSSL with ASan only), makes the seed corpora, runs each target for SECONDS (or RUNS inputs, whichever comes first), and
# fails on any crash, trap, sanitizer report, hang (-timeout=10) or memory blow-up (-rss_limit_mb=2048).
#
#   fuzz/run.sh SECONDS_PER_TARGET [RUNS]
#
# Environment: ZRANK_FUZZ_TARGETS (default: all five), ZRANK_FUZZ_CONFIG (release), ZRANK_FUZZ_KEEP_CORPUS=1 (start
# from the corpus a previous run left in fuzz/.work instead of the seeds alone), ZRANK_FUZZ_ARGS (more libFuzzer flags).
# Builds go to .build-fuzz (never .build); work files (corpus, seeds, logs, crash artifacts) to fuzz/.work.
set -euo pipefail

usage() { echo "usage: fuzz/run.sh SECONDS_PER_TARGET [RUNS]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
seconds=$1
runs=${2:-}
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || usage
[[ -z $runs || $runs =~ ^[0-9]+$ ]] || usage

cd "$(dirname "$0")/.."
targets=(${ZRANK_FUZZ_TARGETS:-FuzzFrames FuzzRankRequest FuzzAdmin FuzzModelFile FuzzHeads})
config=${ZRANK_FUZZ_CONFIG:-release}
build=.build-fuzz
work=fuzz/.work
swift=${SWIFT:-swift}

# The fuzz targets exist only in a manifest evaluated with ZRANK_FUZZ=1; `--manifest-cache local` keeps that
# evaluation inside .build-fuzz, out of the shared manifest cache that normal builds read.
started=$(date +%s)
mkdir -p "$work/logs"
for t in "${targets[@]}"; do
    echo "== building $t ($config, Swift -sanitize=fuzzer,address, C -fsanitize=address)"
    if ! ZRANK_FUZZ=1 "$swift" build -c "$config" --build-path "$build" --manifest-cache local \
        -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=address --product "$t" >"$work/logs/build-$t.log" 2>&1; then
        tail -n 40 "$work/logs/build-$t.log" >&2
        echo "fuzz: building $t failed (log: $work/logs/build-$t.log)" >&2
        exit 1
    fi
    grep -v "Cannot export local symbol '__asan_extra_spill_area'" "$work/logs/build-$t.log" | tail -n 1
done
built=$(date +%s)
bin=$(ZRANK_FUZZ=1 "$swift" build -c "$config" --build-path "$build" --manifest-cache local --show-bin-path 2>/dev/null)

rm -rf "$work/seeds" "$work/tmp"
mkdir -p "$work/tmp"
# Scratch files (the targets rewrite one per input for readers that take paths) on tmpfs when there is one: on a disk,
# ext4 writes every truncated-and-rewritten file out, and the I/O, not the parsing, sets the pace.
scratch=$work/tmp
[[ -d /dev/shm && -w /dev/shm ]] && scratch=$(mktemp -d /dev/shm/zrank-fuzz.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
python3 fuzz/make_seeds.py "$work/seeds" >/dev/null

failed=0
summary=()
for t in "${targets[@]}"; do
    corpus=$work/corpus/$t
    artifacts=$work/artifacts/$t
    log=$work/logs/$t.log
    [[ ${ZRANK_FUZZ_KEEP_CORPUS:-0} == 1 ]] || rm -rf "$corpus"
    rm -rf "$artifacts"
    mkdir -p "$corpus" "$artifacts"
    args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
          -artifact_prefix="$artifacts/")
    [[ -n $runs ]] && args+=(-runs="$runs")
    [[ -f fuzz/dicts/$t.dict ]] && args+=(-dict="fuzz/dicts/$t.dict")
    # shellcheck disable=SC2206
    args+=(${ZRANK_FUZZ_ARGS:-})
    echo "== $t: $bin/$t $corpus $work/seeds/$t ${args[*]}"
    set +e
    # The Swift runtime's crash backtracer reads the dead process's memory in a way AddressSanitizer reports as a
    # crash of its own: it is off, and ASan/libFuzzer print the stack of a trap instead.
    SWIFT_BACKTRACE=enable=no LSAN_OPTIONS=suppressions=fuzz/lsan.supp:print_suppressions=0 \
    ZRANK_FUZZ_TMP=$scratch timeout --kill-after=30 $((seconds + 300)) \
        "$bin/$t" "$corpus" "$work/seeds/$t" "${args[@]}" >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+.*cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1 || true)
    cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    corp=$(sed -nE 's/.* corp: ([0-9]+\/[0-9A-Za-z]+).*/\1/p' <<<"$last")
    crashes=$(find "$artifacts" -type f | wc -l)
    if [[ $rc -eq 0 && $crashes -eq 0 ]] && ! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|SUMMARY: ' "$log"; then
        verdict=ok
    else
        verdict="FAILED (exit $rc)"
        failed=1
        grep -E 'ERROR:|SUMMARY:|Fatal error|Program crashed|Test unit written|ALARM|out-of-memory' "$log" | head -n 20 >&2 || true
        for a in "$artifacts"/*; do [[ -f $a ]] && echo "   reproduce: $bin/$t $a" >&2; done
        echo "   log: $log" >&2
    fi
    line=$(printf '%-16s %12s execs %8s exec/s  cov %6s  ft %7s  corpus %-12s rss %5s MB  crashes %s  %s' \
        "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${rss:-?}" "$crashes" "$verdict")
    echo "$line"
    summary+=("$line")
done

finished=$(date +%s)
echo
echo "== fuzz summary ($seconds s per target${runs:+, at most $runs runs}; build $((built - started)) s, total $((finished - started)) s)"
printf '%s\n' "${summary[@]}" | tee "$work/summary.txt"
exit $failed
