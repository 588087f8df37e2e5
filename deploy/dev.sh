#!/usr/bin/env bash
# Newcomer entry point: `bash deploy/dev.sh demo` sets up and starts the demo;
# `bash deploy/dev.sh test` sets up and runs the whole test suite (lint, types, tests).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"

need_apt() {
    # Install Debian packages only when their binary is missing (root, or sudo if available).
    local missing=()
    command -v influxd >/dev/null 2>&1 || missing+=(influxdb)
    { command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || missing+=(postgresql)
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
    if [ ${#missing[@]} -gt 0 ]; then
        local SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        echo "installing system packages: ${missing[*]}" >&2
        $SUDO apt-get update -q
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}" python3-venv
    fi
    # Debian starts the packaged services; the tests run their own throwaway servers instead.
    if command -v systemctl >/dev/null 2>&1; then
        systemctl stop influxdb postgresql >/dev/null 2>&1 || true
    fi
}

setup_venv() {
    local extras="$1"
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV"
    fi
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q -e ".[$extras]"
}

case "${1:-}" in
    demo)
        shift
        setup_venv dask
        exec "$VENV/bin/energy-gateway" demo "$@"
        ;;
    test)
        shift
        need_apt
        setup_venv test
        echo "== ruff"; "$VENV/bin/ruff" check .
        echo "== mypy"; "$VENV/bin/mypy" gateway collectors forecasting crm_bridge reports
        echo "== pytest"; exec "$VENV/bin/pytest" "$@"
        ;;
    *)
        echo "usage: bash deploy/dev.sh demo [--duration S] [--port P] [--data-dir DIR] | test [pytest args]" >&2
        exit 2
        ;;
esac
