#!/usr/bin/env bash
# Runs every libFuzzer harness in BUILD_DIR/bin for SECONDS each, one after another, then prints a
# line per target: the result, executions, executions per second, coverage, corpus.
#
#   tests/fuzz/run_fuzzers.sh SECONDS [BUILD_DIR]      (BUILD_DIR defaults to build/fuzz)
#
# FUZZ_RUNS=N in the environment also stops each target after N executions (whichever comes
# first): `make fuzz FUZZ_SECONDS=7200 FUZZ_RUNS=10000000` is the long run docs/reliability.md
# records.
#
# A target grows its corpus in BUILD_DIR/corpus/<target> (seeded by make_corpus.py), so the next
# run starts where this one stopped. It also reads tests/fuzz/regressions/<target>, inputs that
# once crashed it, so a bug that comes back fails at once. A crashing input is written to
# BUILD_DIR/artifacts/<target>/, the log to BUILD_DIR/logs/<target>.log. Every target runs; the
# exit status is 1 when any of them found a crash, leak, timeout or out-of-memory.
set -u

seconds=${1:?usage: run_fuzzers.sh SECONDS [BUILD_DIR]}
build=${2:-build/fuzz}
here=$(cd "$(dirname "$0")" && pwd)

# Longest input per target: room for a header of a few dozen tensors, an index of as many names,
# the largest family spec (clap, 17.5 KB) with its config, a DLPack description and its buffer.
declare -A max_len=([safetensors_header]=8192 [sharded_index]=4096 [family_spec]=24576
                    [from_dlpack]=1024)

export UBSAN_OPTIONS="print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
# Scratch files (fuzz_sharded_index's checkpoint folder) go to a folder of this run's own, in
# memory where possible, removed at the end even when a crash kept a harness from cleaning up.
shm=/dev/shm
[ -w $shm ] || shm=${TMPDIR:-/tmp}
TMPDIR=$(mktemp -d "$shm/hfport-fuzz-XXXXXX") || exit 1
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT
failed=0
summary=()
for binary in "$build"/bin/fuzz_*; do
  target=${binary##*/fuzz_}
  corpus=$build/corpus/$target
  artifacts=$build/artifacts/$target
  log=$build/logs/$target.log
  mkdir -p "$corpus" "$artifacts" "$build/logs"
  seeds=()
  [ -d "$here/regressions/$target" ] && seeds=("$here/regressions/$target")
  echo "fuzz_$target: ${seconds}s, log in $log"
  "$binary" "$corpus" "${seeds[@]}" -dict="$here/json.dict" -max_len="${max_len[$target]:-4096}" \
    -timeout=10 -max_total_time="$seconds" ${FUZZ_RUNS:+-runs=$FUZZ_RUNS} -print_final_stats=1 \
    -artifact_prefix="$artifacts/" \
    >"$log" 2>&1
  status=$?
  result=ok
  if [ $status -ne 0 ]; then
    # The first line that says what broke: a sanitizer, an escaped exception, a harness check.
    broke='runtime error|what\(\)|ERROR: (Address|Leak)Sanitizer|broke a promise|accepted the'
    what=$(grep -m1 -E "$broke|ERROR: libFuzzer" "$log")
    result="FAILED (exit $status): ${what:0:160}"
    failed=1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: //p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: //p' "$log")
  coverage=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [^ ]+')
  summary+=("$(printf '%-20s %10s execs %7s/s  %-36s %s' "$target" "${execs:-?}" "${rate:-?}" \
                "${coverage:-}" "$result")")
done

echo
printf '%s\n' "${summary[@]}"
exit $failed
