#!/usr/bin/env bash
# System set-up for the sandbox tests: bubblewrap, Docker (daemon running) and the
# docker sandbox image; chromium and its driver for the HTML report's browser test. Idempotent and cheap when everything is in place; safe to
# call on every `make test`. Without root it only reports what is missing.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
say() { echo "setup_system: $*"; }

if [ "$(id -u)" != "0" ]; then
  for t in bwrap dockerd debootstrap chromium chromedriver; do
    command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || say "missing $t (not root: not installing)"
  done
  exit 0
fi

missing=()
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
{ command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ]; } || missing+=(docker.io)
{ command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ]; } || missing+=(debootstrap)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/tmp/agentgym-apt.log 2>&1 \
    || { say "apt-get install failed; see /tmp/agentgym-apt.log"; exit 1; }
else
  say "bubblewrap, docker.io, debootstrap, chromium and chromium-driver present"
fi

PATH="$PATH:/usr/sbin:/sbin"
if docker info >/dev/null 2>&1; then
  say "dockerd already running"
else
  say "starting dockerd (log: /var/log/agentgym-dockerd.log)"
  nohup dockerd >/var/log/agentgym-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { say "dockerd did not come up; see /var/log/agentgym-dockerd.log"; exit 1; }
  say "dockerd is up"
fi

# One implementation of the image build: the CLI's (skips when the image exists).
"$PY" -m agentgym.sandbox.cli build-image || { say "image build failed"; exit 1; }
"$PY" -m agentgym.sandbox.cli check || true
