#!/usr/bin/env bash
# Installs what Dozor needs on a fresh Debian/Ubuntu machine, idempotently:
#   - Java 17+ (runs the embedded Kafka broker) and Maven (fetches Kafka's jars from Maven Central),
#   - with --test, Debian's chromium (the browser tests drive it headless) and poppler-utils,
#   - the DejaVu fonts of the PDF briefing,
#   - a Python virtual environment in .venv with Dozor and its dependencies,
#   - the pinned Kafka jars (infra/kafka/pom.xml) into ~/.cache/dozor.
# Usage: infra/bootstrap.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."

with_test=0
[ "${1:-}" = "--test" ] && with_test=1

missing=()
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
if [ "$with_test" = 1 ] && ! command -v chromium >/dev/null; then missing+=(chromium); fi
# The managers' PDF briefing is set in DejaVu Sans (Cyrillic and Kazakh letters); the tests render
# it back with pdftoppm.
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
if [ "$with_test" = 1 ] && ! command -v pdftoppm >/dev/null; then missing+=(poppler-utils); fi
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python3 - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"Dozor needs Python 3.11 or newer; this is {sys.version.split()[0]}")
PY

[ -x .venv/bin/python ] || python3 -m venv .venv
extras="."
[ "$with_test" = 1 ] && extras=".[test]"
.venv/bin/python -m pip install -q --disable-pip-version-check -e "$extras"
.venv/bin/dozor kafka fetch >/dev/null
echo "Dozor is installed in .venv (run: .venv/bin/dozor --help)"
