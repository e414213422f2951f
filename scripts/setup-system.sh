#!/bin/sh
# Installs the system tools the tests need, when missing:
#   chromium     the browser the end-to-end tests drive (never a downloaded browser build)
#   postgresql   the server binaries for throwaway test clusters (scripts/pg-cluster.mjs);
#                no system service is used
#   ffmpeg       the reference HLS client: packages/packager/test/ffmpeg.test.ts makes clear
#                streams with it and checks that it decrypts the packaged ones
#   podman, debootstrap
#                the container image test (test/image): podman builds deploy/docker/Dockerfile,
#                debootstrap makes the Debian base it builds on (scripts/container-base.mjs)
#   cfn-lint     the CloudFormation linter test/templates.test.ts runs on deploy/'s templates.
#                Debian has no package of it, so it goes into a virtualenv (python3-venv, from
#                Debian) from PyPI, linked as /usr/local/bin/cfn-lint
#   moto, boto3  moto's standalone S3 server (moto_server) that the upload tests store objects in
#                (test/support/moto-server.ts). When python3 cannot import moto and boto3, or
#                moto_server is not on PATH, they go into a virtualenv from PyPI, moto_server
#                linked as /usr/local/bin/moto_server
# Uses sudo when not root. Set CHROMIUM_PATH, PG_BIN, FFMPEG_PATH, CFN_LINT or MOTO_SERVER to use
# ones installed elsewhere.
set -e
missing=""
chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
[ -x "$chromium" ] || missing="$missing chromium"
if [ -n "${PG_BIN:-}" ] && [ -x "$PG_BIN/initdb" ]; then
  :
elif ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing="$missing postgresql"
fi
if [ -n "${FFMPEG_PATH:-}" ] && [ -x "$FFMPEG_PATH" ]; then
  :
elif ! command -v ffmpeg >/dev/null 2>&1; then
  missing="$missing ffmpeg"
fi
command -v podman >/dev/null 2>&1 || missing="$missing podman"
command -v debootstrap >/dev/null 2>&1 || missing="$missing debootstrap"
need_cfn_lint=""
if [ -n "${CFN_LINT:-}" ] && [ -x "$CFN_LINT" ]; then
  :
elif ! command -v cfn-lint >/dev/null 2>&1; then
  need_cfn_lint=1
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing="$missing python3-venv"
fi
moto_venv=/opt/blindcast-moto
need_moto=""
if [ -n "${MOTO_SERVER:-}" ] && [ -x "$MOTO_SERVER" ]; then
  :
elif ! command -v moto_server >/dev/null 2>&1 ||
  ! { python3 -c 'import moto, boto3' >/dev/null 2>&1 ||
    "$moto_venv/bin/python" -c 'import moto, boto3' >/dev/null 2>&1; }; then
  need_moto=1
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing="$missing python3-venv"
fi
[ -z "$missing" ] && [ -z "$need_cfn_lint" ] && [ -z "$need_moto" ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ -n "$missing" ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-system: missing:$missing; install them with your package manager (or set CHROMIUM_PATH / PG_BIN / FFMPEG_PATH)" >&2
    exit 1
  fi
  echo "setup-system: installing$missing from Debian's packages" >&2
  $sudo apt-get update -qq
  # The postgresql package may start a system cluster; the tests never use it.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if [ -n "$need_cfn_lint" ]; then
  venv=/opt/blindcast-cfn-lint
  echo "setup-system: installing cfn-lint from PyPI into $venv" >&2
  if ! { $sudo python3 -m venv "$venv" && $sudo "$venv/bin/pip" install --quiet --disable-pip-version-check cfn-lint; }; then
    $sudo rm -rf "$venv"
    echo "setup-system: could not install cfn-lint from PyPI (Debian packages none). Install it yourself" >&2
    echo "  (pipx install cfn-lint, or pip install cfn-lint) and put it on PATH, or set CFN_LINT to its path." >&2
    exit 1
  fi
  $sudo ln -sf "$venv/bin/cfn-lint" /usr/local/bin/cfn-lint
fi
if [ -n "$need_moto" ]; then
  what=""
  command -v moto_server >/dev/null 2>&1 || what="moto_server (not on PATH)"
  python3 -c 'import moto' >/dev/null 2>&1 || what="$what moto (python3 cannot import it)"
  python3 -c 'import boto3' >/dev/null 2>&1 || what="$what boto3 (python3 cannot import it)"
  echo "setup-system: missing: $what; installing moto[server] and boto3 from PyPI into $moto_venv" >&2
  if ! { $sudo python3 -m venv "$moto_venv" &&
    $sudo "$moto_venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5,<6' boto3; }; then
    $sudo rm -rf "$moto_venv"
    echo "setup-system: could not install moto from PyPI (missing: $what). The upload tests need" >&2
    echo "  moto's S3 server: pip install 'moto[server]>=5' boto3 (or pipx install 'moto[server]')," >&2
    echo "  with moto_server on PATH, or set MOTO_SERVER to its path." >&2
    exit 1
  fi
  $sudo ln -sf "$moto_venv/bin/moto_server" /usr/local/bin/moto_server
fi
