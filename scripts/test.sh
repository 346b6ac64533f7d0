#!/usr/bin/env bash
# The project's one test command (README quick start; .ci/run calls it).
# Installs what the tests need, then runs every check: Rust format, lints and tests;
# Python lints, types and tests; the short form of the benchmarks (report only, no
# speed assertions). Runs every step even after a failure, then exits non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."

failed=()
step() {
    local name=$1
    shift
    echo
    echo "=== $name: $*"
    if "$@"; then
        echo "=== $name: ok"
    else
        echo "=== $name: FAILED"
        failed+=("$name")
    fi
}

# System packages the tests use as real peers, from Debian: Mosquitto (the MQTT tests start
# and stop their own brokers on free ports; the packaged service is not used), and chromium
# with its driver (the dashboard tests drive a headless browser).
missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if ((${#missing[@]})); then
    echo "=== install: apt-get install ${missing[*]}"
    if [ "$(id -u)" = 0 ]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
    { "${apt_get[@]}" update -qq && DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq \
        --no-install-recommends "${missing[@]}" fonts-dejavu-core; } >/dev/null \
        || { echo "=== install: FAILED (${missing[*]})"; exit 1; }
fi

# Installing builds the Rust extension (release profile) into gateway/ as an editable
# install, with the pinned test dependencies. A failed install makes every later step moot.
echo "=== install: pip install -e .[test]"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e ".[test]" \
    || { echo "=== install: FAILED"; exit 1; }

step "cargo fmt" cargo fmt --all --check
step "cargo clippy" cargo clippy --workspace --all-targets --locked -- -D warnings
# The binding crate links against libpython only as an extension module, so its tests run
# through pytest instead.
step "cargo test" cargo test --workspace --exclude evgw-python --locked
step "ruff check" python3 -m ruff check .
step "ruff format" python3 -m ruff format --check .
step "mypy" python3 -m mypy
step "pytest" python3 -m pytest -q -p no:cacheprovider
step "codec benchmark (short)" python3 benches/bench_codec.py --quick --report benches/report-codec.txt
step "balancing benchmark (short)" python3 benches/bench_balancing.py --quick --report benches/report-balancing.txt
step "register decoding benchmark (short)" python3 benches/bench_registers.py --quick --report benches/report-registers.txt
step "poll benchmark (short)" python3 benches/bench_poll.py --quick --report benches/report-poll.txt
step "depot day (short)" python3 benches/depot_day.py --quick --report benches/report-depot-day.txt
step "start-up benchmark (short)" python3 benches/bench_startup.py --quick --report benches/report-startup.txt

echo
if ((${#failed[@]})); then
    echo "FAILED steps: ${failed[*]}"
    exit 1
fi
echo "all steps passed"
