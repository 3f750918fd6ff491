#!/usr/bin/env bash
# Runs etcd's own end-to-end tests (package go.etcd.io/etcd/tests/v3/e2e of
# v3.7.3, unmodified, built from the Go module proxy) against Cadre: cadre
# is installed as `etcd` in a bin dir beside the real etcdctl and etcdutl,
# and etcd's test binary runs with -bin-dir pointing there.
#
#   tests/etcde2e/run.sh            the CI subset (ci.txt): must all pass
#   tests/etcde2e/run.sh chosen     the whole chosen set (chosen.txt), a report
#   tests/etcde2e/run.sh 'REGEX'    the tests matching REGEX
#   ETCDE2E_SERVER=/path/to/etcd tests/etcde2e/run.sh chosen   the same against etcd
#
# Prints one line per test and a summary; exits non-zero if any test failed
# (for the CI subset) — the chosen set only reports. Results of the chosen
# set are recorded in docs/COMPATIBILITY.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
version=v3.7.3
cache="${CADRE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cadre-tools/etcd-$version}"
work="${ETCDE2E_WORK:-$(mktemp -d /tmp/cadre-etcde2e.XXXXXX)}"
per_test_timeout="${ETCDE2E_TIMEOUT:-180s}"
export GOFLAGS="-mod=mod -buildvcs=false"

mode="${1:-ci}"
case "$mode" in
  ci)     tests=$(grep -v '^#' "$here/ci.txt" | grep -v '^$'); strict=1 ;;
  chosen) tests=$(grep -v '^#' "$here/chosen.txt" | grep -v '^$'); strict=0 ;;
  *)      tests=""; strict=0 ;;
esac

# The real etcdctl, etcdutl (and etcd, for comparison runs), built once
# into the cache from a throwaway module (go install refuses modules with
# replace directives; as dependencies they build).
mkdir -p "$cache"
if [ ! -f "$cache/go.mod" ]; then
  printf 'module etcdtools\n\ngo 1.26.8\n' > "$cache/go.mod"
fi
for tool in etcdctl etcdutl; do
  if [ ! -x "$cache/$tool" ]; then
    (cd "$cache" && go get "go.etcd.io/etcd/$tool/v3@$version" && go build -o "$tool.tmp" "go.etcd.io/etcd/$tool/v3" && mv "$tool.tmp" "$tool")
  fi
done
# etcd's e2e test binary, built as a dependency of a throwaway module.
e2edir="$cache/e2e"
if [ ! -x "$e2edir/e2e.test" ]; then
  mkdir -p "$e2edir"
  printf 'module etcde2e\n\ngo 1.26.8\n' > "$e2edir/go.mod"
  printf '//go:build tools\n\npackage etcde2e\n\nimport _ "go.etcd.io/etcd/tests/v3/e2e"\n' > "$e2edir/tools.go"
  (cd "$e2edir" && go get "go.etcd.io/etcd/tests/v3@$version" && go test -c -o e2e.test.tmp go.etcd.io/etcd/tests/v3/e2e && mv e2e.test.tmp e2e.test)
fi
fixtures="$(cd "$e2edir" && go env GOMODCACHE)/go.etcd.io/etcd/tests/v3@$version/fixtures"
# Some of etcd's tests name their certificates under /tmp/fixtures whatever
# -cert-dir says: point it at the module's fixtures when nothing is there.
if [ ! -e /tmp/fixtures ]; then ln -s "$fixtures" /tmp/fixtures; fi

bin="$work/bin"
mkdir -p "$bin"
if [ -n "${ETCDE2E_SERVER:-}" ]; then
  cp "$ETCDE2E_SERVER" "$bin/etcd"
else
  (cd "$root" && go build -o "$bin/etcd" ./cmd/cadre)
fi
cp "$cache/etcdctl" "$cache/etcdutl" "$bin/"

if [ -z "$tests" ]; then
  tests=$("$e2edir/e2e.test" -test.list "$mode")
fi

pass=0; fail=0; skip=0; failed=()
for t in $tests; do
  log="$work/$t.log"
  start=$(date +%s)
  set +e
  (cd "$work" && timeout --kill-after=10s "$per_test_timeout" "$e2edir/e2e.test" -test.run "^${t}\$" -test.v \
     -bin-dir "$bin" -cert-dir "$fixtures" > "$log" 2>&1)
  code=$?
  set -e
  took=$(( $(date +%s) - start ))
  if [ $code -eq 0 ] && grep -q -- "--- SKIP: $t " "$log"; then
    skip=$((skip+1)); echo "SKIP  $t (${took}s)"
  elif [ $code -eq 0 ]; then
    pass=$((pass+1)); echo "PASS  $t (${took}s)"
  else
    fail=$((fail+1)); failed+=("$t"); echo "FAIL  $t (${took}s): $(grep -m1 -E 'Error:|error:|FAIL|panic' "$log" | cut -c1-200)"
  fi
done
echo
echo "etcd $version e2e against $( [ -n "${ETCDE2E_SERVER:-}" ] && echo "$ETCDE2E_SERVER" || echo cadre ): $pass passed, $fail failed, $skip skipped of $((pass+fail+skip)); logs in $work"
if [ $fail -gt 0 ]; then
  printf 'failed: %s\n' "${failed[@]}"
  [ "$strict" = 1 ] && exit 1
fi
exit 0
