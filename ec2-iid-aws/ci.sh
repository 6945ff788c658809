#!/usr/bin/env bash
# CI steps for the ec2-iid-aws adapter crate.
#
#   bash ec2-iid-aws/ci.sh              # check, set up moto, run the adapter's tests
#   bash ec2-iid-aws/ci.sh --setup-only # check and set up moto, run no tests
#
# Environment:
#   MOTO_VENV     where the moto virtualenv lives (default: <repo>/target/moto-venv)
#   MOTO_VERSION  the moto release to install (default: 5.2.5)
#   PYTHON        the interpreter that creates the virtualenv (default: python3)
#   CI=true       makes the moto tests fail (instead of skip) when moto_server cannot start
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

setup_only=false
case "${1:-}" in
  --setup-only) setup_only=true ;;
  "") ;;
  *) echo "usage: $0 [--setup-only]" >&2; exit 2 ;;
esac

# 1. The core crate stays free of the AWS SDK, HTTP stacks and async runtimes.
echo "== ec2-iid: no AWS SDK, HTTP or async runtime crate in its normal dependencies"
forbidden='^(aws-|hyper|h2|http|reqwest|rustls|tokio|async-|futures|smol|tower)'
if ! tree="$(cargo tree --locked -p ec2-iid -e normal --prefix none --format '{p}')"; then
  echo "cargo tree failed" >&2
  exit 1
fi
tree="$(printf '%s\n' "$tree" | sed 's/ (\*)$//' | sort -u)"
if bad="$(printf '%s\n' "$tree" | grep -E "$forbidden")"; then
  echo "ec2-iid must not depend on these crates:" >&2
  printf '%s\n' "$bad" >&2
  exit 1
fi
echo "ok: $(printf '%s\n' "$tree" | wc -l) crates, none of them AWS, HTTP or async"

# 2. moto in a virtualenv of its own.
venv="${MOTO_VENV:-$root/target/moto-venv}"
version="${MOTO_VERSION:-5.2.5}"
python="${PYTHON:-python3}"
echo "== moto $version in $venv"
if [ -x "$venv/bin/moto_server" ] \
  && [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null)" = "$version" ]; then
  echo "already installed"
else
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$version"
fi
export MOTO_SERVER="$venv/bin/moto_server"
echo "the moto tests find moto_server through MOTO_SERVER=$MOTO_SERVER"
echo "(without MOTO_SERVER they try <repo>/target/moto-venv/bin/moto_server, then PATH)"

if [ "$setup_only" = true ]; then
  exit 0
fi

# 3. The adapter's tests, moto included.
echo "== cargo test -p ec2-iid-aws"
cargo test -p ec2-iid-aws --locked
