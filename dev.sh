#!/usr/bin/env bash
# One entry point for a fresh machine: installs what the project needs (Java 17+, a virtual environment
# with the pinned packages) and then runs what you ask for.
#   ./dev.sh demo    the pipeline end to end on a generated sample, local Spark
#   ./dev.sh test    ruff and the test suite
#   ./dev.sh teem …  any `teem` command
#   ./dev.sh ui      the Dagster UI (dagster dev) on the runs `teem` recorded
set -euo pipefail
cd "$(dirname "$0")"
VENV=${TEEM_VENV:-.venv}
PYTHON=${PYTHON:-python3}

java_major() {
  java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1
}

ensure_java() {
  if command -v java >/dev/null 2>&1 && [ "$(java_major)" -ge 17 ]; then
    return
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "dev.sh: installing Java 17 (Spark needs it)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
  fi
  if ! command -v java >/dev/null 2>&1 || [ "$(java_major)" -lt 17 ]; then
    echo "dev.sh: Spark needs Java 17 or 21 on PATH (java -version); install it and run again" >&2
    exit 1
  fi
}

# The JVM jars local Spark needs (Iceberg, its AWS bundle, hadoop-aws, SQLite's JDBC driver), fetched with
# Maven from jvm/pom.xml into jvm/jars at install time and checked against jvm/jars.sha256; never at run time.
ensure_jars() {
  local stamp="jvm/jars/.installed-$(cat jvm/pom.xml jvm/jars.sha256 | sha256sum | cut -c1-16)"
  if [ -f "$stamp" ]; then
    return
  fi
  if ! command -v mvn >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "dev.sh: installing Maven (it fetches the JVM jars)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven >/dev/null
  fi
  command -v mvn >/dev/null 2>&1 || { echo "dev.sh: needs Maven (mvn) to fetch jvm/pom.xml's jars" >&2; exit 1; }
  rm -rf jvm/jars
  echo "dev.sh: fetching the JVM jars (jvm/pom.xml) with Maven" >&2
  (cd jvm && mvn -q -B --strict-checksums dependency:copy-dependencies -DoutputDirectory=jars -DincludeScope=runtime)
  (cd jvm/jars && sha256sum --quiet -c ../jars.sha256) || { echo "dev.sh: a jar does not match jvm/jars.sha256" >&2; exit 1; }
  extra=$(cd jvm/jars && ls *.jar | grep -vxF -f <(awk '{print $2}' ../jars.sha256) || true)
  [ -z "$extra" ] || { echo "dev.sh: jars not listed in jvm/jars.sha256: $extra" >&2; exit 1; }
  touch "$stamp"
}

# The browser tests drive Debian's Chromium through Playwright; no browser is ever downloaded.
ensure_chromium() {
  local chromium=${TEEM_CHROMIUM:-/usr/bin/chromium}
  if [ -x "$chromium" ]; then
    return
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "dev.sh: installing Debian's chromium (the browser tests drive it)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  [ -x "$chromium" ] || {
    echo "dev.sh: the browser tests need Chromium: Debian's chromium package, or TEEM_CHROMIUM=/path/to/it" >&2
    exit 1
  }
}

ensure_venv() {
  local stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
  if [ -f "$stamp" ]; then
    return
  fi
  "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] in ((3, 11), (3, 12)) else 1)' || {
    echo "dev.sh: needs Python 3.11 or 3.12 as \$PYTHON (found $("$PYTHON" --version 2>&1))" >&2
    exit 1
  }
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e '.[dev]'
  rm -f "$VENV"/.installed-*
  touch "$stamp"
}

# The local Spark driver's class archive (teem_assets/class_archive.py), for the suite's many fresh driver JVMs;
# any local run maps it once it is there. Built again when the jars, the packages or Java change. Without it
# every driver still runs, only slower: a failed build is reported and the command goes on.
ensure_class_archive() {
  local key stamp
  key=$( (ls jvm/jars/.installed-* "$VENV"/.installed-*; java -version 2>&1) | sha256sum | cut -c1-16)
  stamp="jvm/.spark-driver-$key"
  if [ -f "$stamp" ] && [ -f jvm/spark-driver.jsa ]; then
    return
  fi
  echo "dev.sh: building the Spark driver's class archive (jvm/spark-driver.jsa, about a minute, once)" >&2
  local log
  log=$(mktemp)
  if "$VENV/bin/teem" class-archive >"$log" 2>&1; then
    rm -f jvm/.spark-driver-*
    touch "$stamp"
  else
    echo "dev.sh: no class archive, Spark's drivers start slower (teem class-archive failed):" >&2
    tail -n 5 "$log" >&2
  fi
  rm -f "$log"
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
  demo)
    ensure_java; ensure_jars; ensure_venv
    exec "$VENV/bin/teem" demo "$@"
    ;;
  test)
    ensure_java; ensure_jars; ensure_venv; ensure_chromium; ensure_class_archive
    # Far from UTC unless told otherwise: Spark pins its own clocks, never the process's (tests/test_timezones.py).
    export TZ=${TZ:-America/Los_Angeles}
    "$VENV/bin/ruff" check .
    # Two workers, a module each at a time, the slowest modules first (tests/conftest.py): the suite is mostly
    # process and JVM start-ups, and two at once on two cores ended it in 44 minutes instead of 60. Three were no
    # faster: the CPU was then busy all the time and every module took half as long again (.ci/run of
    # 2026-12-03: 3,432 s against 3,305 s with two). How many help depends on the machine's cores.
    # TEEM_TEST_WORKERS=0 runs it in this process.
    exec "$VENV/bin/python" -m pytest -n "${TEEM_TEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder "$@"
    ;;
  teem)
    ensure_java; ensure_jars; ensure_venv
    exec "$VENV/bin/teem" "$@"
    ;;
  ui)
    ensure_java; ensure_jars; ensure_venv
    export DAGSTER_HOME=${DAGSTER_HOME:-$PWD/.teem/dagster}
    # the instance's settings: the pools that keep writers of one table apart (teem_assets/runner.py)
    "$VENV/bin/python" -c 'import os, sys, teem_assets.runner as r
try:
    r.ensure_instance_settings(os.environ["DAGSTER_HOME"])
except r.SettingError as error:
    sys.exit(f"dev.sh: {error}")'
    exec "$VENV/bin/dagster" dev -w workspace.yaml "$@"
    ;;
  *)
    echo "usage: ./dev.sh demo | test [pytest args] | teem COMMAND … | ui" >&2
    exit 2
    ;;
esac
