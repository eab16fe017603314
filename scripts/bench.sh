#!/usr/bin/env bash
# The benchmarks in one command: builds the release binaries, then runs every scenario on
# SQLite and PostgreSQL against the ceilings measured in the same run, prints the table,
# writes target/bench/{results.json,report.md} and the figures into BENCHMARKS.md.
# Extra arguments go to mosharekat-bench (`--help` lists them; `--smoke` is a few seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins --exclude mosharekat-testkit
if [ "$#" -eq 0 ]; then set -- --markdown BENCHMARKS.md; fi
exec target/release/mosharekat-bench "$@"
