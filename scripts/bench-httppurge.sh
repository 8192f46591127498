#!/usr/bin/env bash
# Measures the httppurge backend's PURGE throughput against a real Varnish on
# loopback, next to wrk sending PURGE to the same Varnish with 64 keep-alive
# connections (BenchmarkVarnishPurge in backends/httppurge). Each round starts
# a fresh Varnish and runs wrk, then the backend called directly, the same
# backend sending through net/http (WithHTTPClient) for comparison, and the
# backend behind the dispatcher; every request purges a distinct URL that
# Varnish does not hold ("200 Purged"). The goal: the backend at 0.8 of wrk's
# rate or more (the x-wrk column).
#
#   scripts/bench-httppurge.sh                     # 3 rounds of 200,000 purges
#   ROUNDS=5 N=500000 WRK_SECONDS=10 scripts/bench-httppurge.sh
#
# Needs Debian's varnish, varnish-modules and wrk (apt-get install varnish
# varnish-modules wrk). varnishd runs as a child of the test on a free
# 127.0.0.1 port, in a temporary directory, and is stopped by its PID at the
# end of each round. Run it as root, or as a user that may start varnishd.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v varnishd >/dev/null || [ -x /usr/sbin/varnishd ] || missing+=(varnish varnish-modules)
if [ ${#missing[@]} -gt 0 ]; then
	echo "missing: apt-get install ${missing[*]}" >&2
	exit 1
fi

export GORMPURGE_TEST_CACHES=1
export HTTPPURGE_BENCH_WRK_SECONDS="${WRK_SECONDS:-5}"
rounds=${ROUNDS:-3}
n=${N:-200000}
echo "$(nproc) CPUs; per round: wrk -t2 -c64 for ${HTTPPURGE_BENCH_WRK_SECONDS}s, then $n purges by the backend (64 in flight)"
go test -c -o "${TMPDIR:-/tmp}/httppurge-bench.test" ./backends/httppurge/
trap 'rm -f "${TMPDIR:-/tmp}/httppurge-bench.test"' EXIT
out=$(for r in $(seq 1 "$rounds"); do
	(cd backends/httppurge && "${TMPDIR:-/tmp}/httppurge-bench.test" -test.run '^$' \
		-test.bench '^BenchmarkVarnishPurge$' -test.benchtime "${n}x") | grep '^Benchmark'
done)
echo "$out"
echo
echo "$out" | awk '
	/\/wrk/        { w[++nw] = $(NF-1) }
	/\/backend/    { b[++nb] = $(NF-3); rb[nb] = $(NF-1) }
	/\/nethttp/    { h[++nh] = $(NF-3); rh[nh] = $(NF-1) }
	/\/dispatcher/ { d[++nd] = $(NF-3); rd[nd] = $(NF-1) }
	function med(a, k,   i, j, t) {
		for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
	}
	END {
		printf "median of %d rounds:\n", nw
		printf "  wrk                   %6.0f purges/s\n", med(w, nw)
		printf "  backend               %6.0f purges/s  %.2f x wrk\n", med(b, nb), med(rb, nb)
		printf "  backend via net/http  %6.0f purges/s  %.2f x wrk\n", med(h, nh), med(rh, nh)
		printf "  dispatcher + backend  %6.0f purges/s  %.2f x wrk\n", med(d, nd), med(rd, nd)
	}'
