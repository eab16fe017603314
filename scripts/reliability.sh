#!/usr/bin/env bash
# The suite's fault tests (tests/faults.rs) in one command: builds what
# `cargo nextest run --workspace` builds (the service binaries included), runs the fault
# tests one at a time with their output shown, and writes RELIABILITY.md: every fault, what
# the suite promises for it, and the figures the tests printed (`FIGURE <fault> k=v …` and
# `SKIP <fault>: why` lines), with each test's verdict and, for a failing one, the promises
# it found broken. The full output is kept in target/reliability/run.log.
#
# PostgreSQL must be at 127.0.0.1:5432 (or MOSHAREKAT_TEST_POSTGRES); the storage tests
# mount a tmpfs and use chattr, so run as root (they print SKIP otherwise).
# Exits with the tests' status, after writing RELIABILITY.md either way.
set -uo pipefail
cd "$(dirname "$0")/.."
out=RELIABILITY.md
log=target/reliability/run.log
mkdir -p "$(dirname "$log")"

# The same build as CI's test command (features unify as there), then only the faults.
cargo nextest run --workspace --no-run || exit 1
started=$(date -u '+%Y-%m-%d %H:%M UTC')
t0=$(date +%s)
cargo nextest run --workspace -E 'binary(faults)' --no-capture --no-fail-fast \
  --test-threads 1 >"$log" 2>&1
status=$?
elapsed=$(( $(date +%s) - t0 ))
grep -E '^(FIGURE|SKIP) |^ +(PASS|FAIL|SIGSEGV|SIGABRT|TIMEOUT) \[' "$log" || true

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain 2>/dev/null | grep -qv '^??' && echo " (with uncommitted changes)" || true)

{
  cat <<'EOF'
# Reliability

What the suite promises when the machine misbehaves, how it is checked, and the figures of
the last run. The checks are `tests/faults.rs`: the service binaries run as separate
processes, each on its own database (SQLite files, PostgreSQL databases), and the test does
to them what an operator or the kernel would. Every test prints its figures and then fails
listing every promise it found broken. This file is written by `scripts/reliability.sh`.

## Run it

```sh
scripts/reliability.sh       # runs the fault tests one at a time (a few minutes), rewrites this file
cargo nextest run --workspace   # CI's test command: runs them too, in parallel with the rest
```

PostgreSQL must be at `127.0.0.1:5432` (or `MOSHAREKAT_TEST_POSTGRES`). The storage tests
mount a tmpfs and set `chattr +i`, so they need root (CI runs as root); where that is
refused they print `SKIP` and pass.

## The faults and the promises

Every write below is a create carrying its own `request_id`, sent byte for byte the same
when retried. "Accounted for" means, after the fault and a restart where there is one:
every acknowledged write reads back (**zero lost**); every unacknowledged write, retried
with its `request_id`, is answered OK, and a resent acknowledged one answers with its first
result; the listing holds exactly one row per write (**zero duplicated**);
`AuditService/VerifyAuditChain` finds the chain intact with one record per write; and for
the registry, `WatchLicenceEvents` from 0 yields sequences 1..n, one per licence (gap-free).

| fault | tests | databases | the suite promises |
|---|---|---|---|
| `kill9`: SIGKILL under concurrent writes | `kill9_{registry,referral,meeting}_{sqlite,postgres}` | both | 8 writers, 240 creates (registry: institutions and licences; referral: filings; meeting: working groups); SIGKILL once 80 are acknowledged, restart on the same database, retry, finish, resend 16: accounted for, and no write fails before the kill. |
| `disk-full`: the disk fills | `disk_full_sqlite` | SQLite (a file on a 4 MiB tmpfs; PostgreSQL's disk is not the service's) | 10 creates, the tmpfs filled, 30 creates, space freed, 10 creates, SIGKILL and restart: while full a create is never OK unless durable, never INTERNAL; it fails `RESOURCE_EXHAUSTED` or `UNAVAILABLE` with `ErrorInfo` reason `STORAGE_FULL`, no SQL in the message; health turns `NOT_SERVING` (within 3 s) and `SERVING` by itself once space is back (within 5 s); an outside connection can then take the write lock (no pooled connection is left inside a transaction); the creates after are all OK; accounted for. |
| `read-only`: the store turns read-only under the service | `read_only_store_sqlite` | SQLite (`chattr +i` on the file, its WAL and the folder: root ignores permissions) | writes `UNAVAILABLE` with an `ErrorInfo` reason, never INTERNAL, no SQL; health `NOT_SERVING`, then `SERVING` by itself once writable; writes OK again without a restart; accounted for after a SIGKILL and restart. |
| `pg-refuses`: PostgreSQL refuses connections | `postgres_refuses_connections` | PostgreSQL | `ALLOW_CONNECTIONS false` and the service's backends ended, for 2 s, under 8 writers retrying with their `request_id`: failures only `UNAVAILABLE`/`ABORTED`, never INTERNAL or SQL; health `NOT_SERVING` during, `SERVING` by itself after; every write lands; accounted for. |
| `pg-backends-killed`: backends killed during commits | `postgres_backends_killed_during_commits` | PostgreSQL | the service's backends terminated every 40 ms while 8 writers write (retrying with their `request_id`): failures only `UNAVAILABLE`/`ABORTED`, never INTERNAL or SQL; it recovers by itself (health `SERVING`); accounted for. |
| `peer-killed`: a peer is killed | `peer_killed` | SQLite (the database plays no part) | with the registry SIGKILLed, referral's `SubmitFiling` (which calls the registry's `CheckEligibility`) answers `UNAVAILABLE` within 100 ms once the registry is known down (after 2 first failures); restarted, the first successful call comes within 1 s of the registry `SERVING` again. |
| `peer-hung`: a peer hangs | `peer_hung` | SQLite (the database plays no part) | with the registry SIGSTOPped, `SubmitFiling` calls sent with a 2 s `grpc-timeout` fail by it (+300 ms), answered by the referral service (`DEADLINE_EXCEEDED` or `UNAVAILABLE`, not given up by the client); after SIGCONT calls succeed again. |
| `overload`: more calls than the admission limit | `overload_{sqlite,postgres}` | both | a registry started with `--max-concurrent-requests 4`, flooded for 2 s by 32 callers creating (each write waits for the write lock and its commit), while `grpc.health.v1.Health/Check` and reflection are probed every 10 ms: zero health or reflection refusals, health `SERVING` throughout, the excess answered `RESOURCE_EXHAUSTED` (nothing else); the refusals' p50 and p99 are printed, not asserted. |

EOF
  printf '## Last run\n\n'
  printf '%s, commit `%s`%s, %s CPUs, kernel %s; %s s for the fault tests run one at a time.\n\n' \
    "$started" "$commit" "$dirty" "$(nproc)" "$(uname -r)" "$elapsed"
  awk '
    # Which test the lines that follow belong to, and what each test printed.
    /^ +START +\[/ { cur = $NF; if (!(cur in seen)) { seen[cur] = 1; order[++n] = cur } next }
    /^ +(PASS|FAIL|SIGSEGV|SIGABRT|TIMEOUT) +\[/ {
      t = $NF; if (!(t in verdict)) { v = $1; sub(/^ +/, "", v); verdict[t] = v
        match($0, /\[ *[0-9.]+s\]/); took[t] = substr($0, RSTART + 1, RLENGTH - 2); gsub(/ /, "", took[t]) }
      next }
    /^FIGURE / { fig[cur] = fig[cur] $0 "\n"; faults[$2] = 1; next }
    /^SKIP / { skip[cur] = skip[cur] $0 "\n"; next }
    /promise\(s\) broken:$/ { inbroken = 1; next }
    inbroken && /^- / { broken[cur] = broken[cur] $0 "\n"; next }
    { inbroken = 0 }
    END {
      pass = fail = 0
      for (i = 1; i <= n; i++) { if (verdict[order[i]] == "PASS") pass++; else fail++ }
      printf "%d tests: %d passed, %d failed.\n\n", n, pass, fail
      print "| test | verdict | time |"; print "|---|---|---|"
      for (i = 1; i <= n; i++) {
        t = order[i]; v = verdict[t] == "" ? "did not finish" : verdict[t]
        if (skip[t] != "") v = v " (skipped: " substr(skip[t], 6, length(skip[t]) - 6) ")"
        printf "| `%s` | %s | %s |\n", t, v, took[t]
      }
      print ""
      # One table per fault: a row per test, a column per figure.
      for (i = 1; i <= n; i++) {
        t = order[i]; if (fig[t] == "") continue
        nl = split(fig[t], lines, "\n")
        for (k = 1; k <= nl; k++) { if (lines[k] == "") continue
          m = split(lines[k], f, " "); fault = f[2]
          if (!(fault in header)) {
            h = "| test |"; sep = "|---|"
            for (j = 3; j <= m; j++) { split(f[j], kv, "="); h = h " " kv[1] " |"; sep = sep "---|" }
            header[fault] = h "\n" sep; forder[++nf] = fault
          }
          row = "| `" t "` |"
          for (j = 3; j <= m; j++) { p = index(f[j], "="); row = row " " substr(f[j], p + 1) " |" }
          rows[fault] = rows[fault] row "\n"
        }
      }
      for (i = 1; i <= nf; i++) {
        printf "### %s\n\n%s\n%s\n", forder[i], header[forder[i]], rows[forder[i]]
      }
      any = 0
      for (i = 1; i <= n; i++) if (broken[order[i]] != "") any = 1
      if (any) {
        print "### Promises broken in this run\n"
        for (i = 1; i <= n; i++) {
          t = order[i]; if (broken[t] == "") continue
          b = broken[t]; gsub(/\|/, "\\|", b)
          printf "`%s`:\n\n%s\n", t, b
        }
      }
    }
  ' "$log"
  cat <<'EOF'
### What the figures mean

- `acked_*`: writes answered OK; `in_flight_at_kill`: writes sent and not answered when
  the process was killed; `committed_unacked`: of those, the ones the database held after
  the restart (their retries must find them, not write them again). Writers share
  commits (group commit), so a kill between a batch's commit and its answers leaves
  several of these at once.
- `lost`, `duplicated`, `never_acked`: the accounting above (all must be 0);
  `rows`: rows listed (fixtures included); `audit_records`: records the chain verification
  checked; `events`: licence events read, `events_gap_free`: sequences 1..n.
- `errors*`: error answers as `CODE[/ErrorInfo reason]:count` (`Unknown` after a kill is the
  client's own transport error: the process is gone); `*_ms`: milliseconds, `never` when
  the awaited state did not come within its bound.
EOF
} >"$out"
echo "wrote $out (full output: $log)"
exit $status
