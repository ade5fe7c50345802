# Sourced by benches/noop_bench.sh and benches/flake_bench.sh: `noop_runs BIN WS RUNS SCRATCH`
# times RUNS no-op `generate --all` and keyless `check` (structure only) runs of workspace WS
# and prints, per command, the wall time (best, median), the CPU time (user + sys, median), the
# peak RSS and the load average. A run that fails ends the bench with its stderr.
noop_runs() {
  local bin=$1 ws=$2 runs=$3 scratch=$4 cmd e u s m w c mid
  local -a walls cpus
  for cmd in "generate --all" check; do
    walls=() cpus=()
    for _ in $(seq 1 "$runs"); do
      # shellcheck disable=SC2086
      env -u SOPS_AGE_KEY -u SOPS_AGE_KEY_FILE /usr/bin/time -o "$scratch/t" -f '%e %U %S %M' \
        "$bin" -C "$ws" $cmd >/dev/null 2>"$scratch/err" || { cat "$scratch/err" >&2; exit 1; }
      read -r e u s m < "$scratch/t"
      walls+=("$e"); cpus+=("$(echo "$u + $s" | bc -l)")
    done
    w=$(printf '%s\n' "${walls[@]}" | sort -n)
    c=$(printf '%s\n' "${cpus[@]}" | sort -n)
    mid=$(( (runs + 1) / 2 ))
    printf 'no-op %-15s wall best %.2f s, median %.2f s; CPU median %.2f s; peak RSS %d MiB; load %s\n' \
      "$cmd:" "$(echo "$w" | head -n1)" "$(echo "$w" | sed -n "${mid}p")" \
      "$(echo "$c" | sed -n "${mid}p")" $((m / 1024)) "$(cut -d' ' -f1 /proc/loadavg)"
  done
}
