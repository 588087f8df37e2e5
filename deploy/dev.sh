#!/usr/bin/env bash
# Newcomer entry point: `bash deploy/dev.sh demo` sets up and starts the demo;
# `bash deploy/dev.sh test` sets up and runs the whole test suite (lint, types, tests).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"

say() { echo "[dev.sh] $*" >&2; }

need_apt() {
    # Install Debian packages only when their binary is missing (root, or sudo if available).
    local missing=() lean=()
    command -v influxd >/dev/null 2>&1 || missing+=(influxdb)
    { command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || missing+=(postgresql)
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
    command -v Xvfb >/dev/null 2>&1 || missing+=(xvfb)            # the OPC UA GUI test draws on a virtual display
    command -v xauth >/dev/null 2>&1 || missing+=(xauth)
    # PyQt5's X plugin needs these beside Xvfb (a desktop has them; a server may not).
    ldconfig -p 2>/dev/null | grep -q libxcb-icccm.so.4 || missing+=(libxcb-icccm4)
    ldconfig -p 2>/dev/null | grep -q libxcb-keysyms.so.1 || missing+=(libxcb-keysyms1)
    ldconfig -p 2>/dev/null | grep -q libxcb-xinerama.so.0 || missing+=(libxcb-xinerama0)
    command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)  # the report tests read PDFs back
    ldconfig -p 2>/dev/null | grep -q libpangoft2-1.0.so.0 || missing+=(libpango-1.0-0 libpangoft2-1.0-0)  # WeasyPrint
    { command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh 2>/dev/null)" ]; } || missing+=(fonts-noto-cjk)
    command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)  # tests/deploy verifies the units
    # Without their recommends: docker-compose would bring the Docker engine, prometheus a node exporter.
    command -v docker-compose >/dev/null 2>&1 || lean+=(docker-compose)  # tests/deploy validates the compose file
    command -v promtool >/dev/null 2>&1 || lean+=(prometheus)            # ... and the alert rules
    command -v nginx >/dev/null 2>&1 || lean+=(nginx)                    # tests/deploy checks the proxy config
    if [ ${#missing[@]} -gt 0 ] || [ ${#lean[@]} -gt 0 ]; then
        local SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        say "installing system packages: ${missing[*]} ${lean[*]}"
        $SUDO apt-get update -q
        if [ ${#missing[@]} -gt 0 ]; then
            DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}" python3-venv
        fi
        if [ ${#lean[@]} -gt 0 ]; then
            DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${lean[@]}"
        fi
    fi
    # Debian starts the packaged services; the tests run their own throwaway servers instead.
    if command -v systemctl >/dev/null 2>&1; then
        systemctl stop influxdb postgresql prometheus nginx >/dev/null 2>&1 || true
    fi
}

install_stamp() {
    # What an install depends on: the extras, the Python and pyproject.toml (the sources are installed editable).
    local extras="$1"
    { echo "extras=$extras"; "$VENV/bin/python" --version 2>&1; sha256sum pyproject.toml; } | sha256sum | cut -d' ' -f1
}

installed() {
    # True when the virtualenv holds energy-gateway[$1] installed from the pyproject.toml that is here now.
    local stamp_file="$VENV/.dev-sh-installed-$1"
    [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$(install_stamp "$1")" ]
}

setup_venv() {
    # $1: the extras to install; then "always" to install in any case, or other extras that include $1 (the test
    # extras hold the demo's dask), whose up-to-date install will do as well.
    local extras="$1" name
    shift
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating the virtualenv in $VENV"
        python3 -m venv "$VENV" || { say "python3 -m venv failed: apt-get install python3-venv"; exit 1; }
    fi
    if [ "${1:-}" != "always" ]; then
        for name in "$extras" "$@"; do
            if installed "$name"; then
                say "dependencies are up to date (pyproject.toml unchanged since the last install): not reinstalling"
                return
            fi
        done
    fi
    say "installing energy-gateway[$extras] and its dependencies into $VENV"
    say "(the first time downloads every dependency and takes a few minutes; pip names each one as it goes)"
    "$VENV/bin/pip" install --disable-pip-version-check --upgrade pip
    "$VENV/bin/pip" install --disable-pip-version-check -e ".[$extras]"
    install_stamp "$extras" > "$VENV/.dev-sh-installed-$extras"
    say "installed"
}

case "${1:-}" in
    demo)
        shift
        setup_venv dask test
        say "starting the demo: simulated meters, history, API and portal (the portal URL and logins follow)"
        exec "$VENV/bin/energy-gateway" demo "$@"
        ;;
    test)
        shift
        need_apt
        setup_venv test always
        echo "== ruff"; "$VENV/bin/ruff" check .
        echo "== mypy"; "$VENV/bin/mypy" gateway collectors forecasting crm_bridge reports
        echo "== pytest"; exec "$VENV/bin/pytest" "$@"
        ;;
    *)
        echo "usage: bash deploy/dev.sh demo [--duration S] [--port P] [--data-dir DIR] [--smtp HOST:PORT] | test [pytest args]" >&2
        exit 2
        ;;
esac
