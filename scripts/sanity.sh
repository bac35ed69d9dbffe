#!/usr/bin/env bash
# scripts/sanity.sh [PYTHON]: ansible-test sanity on this collection, without an
# ignore file, on a machine that reaches a Python package index and nothing else.
#
# ansible-test wants to run inside .../ansible_collections/<namespace>/<name>/,
# so the repository's files (tracked, plus new files git does not ignore: what
# ansible-test itself would list) are copied into such a tree in a temporary
# directory. collections/ is left out: it holds only the clone's link to itself
# (collections/ansible_collections/onprem/datastores -> ../../..), which lets a
# clone run the playbooks with onprem.datastores.* names; it is not collection
# content (galaxy.yml's build_ignore drops it too), and the temporary tree is the
# ansible_collections/onprem/datastores directory that link stands in for.
# The tree gets an empty git repository so that ansible-test lists its files with
# git, the way it does in a checkout: that is what finds a symlinked directory
# anywhere in the tree (without git it only sees those at the top).
#
# Offline: ansible-test bootstraps pip into each sanity virtualenv with a get-pip
# script it downloads from its own CI file server and caches as
# ~/.ansible/test/cache/get_pip_<version>.py. This script writes that file instead,
# a few lines that install pip from the pip wheel of the version ansible-test pins,
# downloaded once from the package index with the venv's pip. The requirements
# ansible-test installs into its sanity virtualenvs come from the package index
# too. HOME is pointed at .cache/sanity/home, so those virtualenvs (built on the
# first run, about half a minute) are kept there between runs, beside the wheel.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
python=${1:-$root/.venv/bin/python}
bindir=$(cd "$(dirname "$python")" && pwd)  # the venv's bin, made absolute (not the interpreter's target)
python=$bindir/$(basename "$python")
cache=${ONPREM_SANITY_CACHE:-$root/.cache/sanity}
home=$cache/home
log=$cache/last.log
# Tests that cannot apply here: pslint needs PowerShell (and there is no .ps1);
# shellcheck needs the shellcheck program, run when it is installed.
skip=(pslint)
command -v shellcheck >/dev/null 2>&1 || skip+=(shellcheck)
skip_args=()
for test in "${skip[@]}"; do skip_args+=(--skip-test "$test"); done

why() { printf 'sanity: %s\n' "$*" >&2; }

[ -x "$bindir/ansible-test" ] || { why "no ansible-test beside $python (make venv installs ansible-core)"; exit 1; }
shopt -s nullglob
ignores=("$root"/tests/sanity/ignore-*.txt)
shopt -u nullglob
if [ ${#ignores[@]} -gt 0 ]; then
  why "${ignores[*]#"$root"/}: this collection keeps no sanity ignore file; fix the findings instead"
  exit 1
fi

pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
# The pip version ansible-test pins for its virtualenvs (an internal of ansible-test: if it moves, say so).
if ! pip_version=$("$python" -c '
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(type("Python", (), {"version": "'"$pyver"'"})())["pip"])'); then
  why "cannot read which pip this ansible-test bootstraps (ansible_test._internal.python_requirements.get_venv_packages);"
  why "after an ansible-core upgrade, find where ansible-test now names its pip version and update this script"
  exit 1
fi

# The pip wheel, once, with the user's own pip configuration (HOME not yet changed).
wheels=$cache/wheels
wheel=$wheels/pip-$pip_version-py3-none-any.whl
if [ ! -f "$wheel" ]; then
  mkdir -p "$wheels"
  if ! "$python" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
      -d "$wheels" "pip==$pip_version"; then
    why "could not download pip $pip_version from the package index (pip's configuration decides which);"
    why "ansible-test needs it to bootstrap its sanity virtualenvs"
    exit 1
  fi
fi

# What ansible-test would download: run as `python get_pip.py [pip options] pip==<version>
# --no-setuptools --no-wheel`, it installs pip into the running (virtualenv's) Python.
mkdir -p "$home/.ansible/test/cache"
"$python" - "$wheels" "$wheel" "$home/.ansible/test/cache/get_pip_${pip_version//./_}.py" <<'EOF'
import sys

wheels, wheel, target = sys.argv[1:]
with open(target, "w", encoding="utf-8") as out:
    out.write(f"""# Written by scripts/sanity.sh: ansible-test's get-pip, made of the pip wheel from the package index.
import sys

sys.path.insert(0, {wheel!r})
from pip._internal.cli.main import main  # noqa: E402  (pip runs from its own wheel)

args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install", "--upgrade", "--force-reinstall", "--no-index", "--find-links", {wheels!r}] + args))
""")
EOF

# Pip configuration in the real home still applies with HOME moved.
if [ -z "${PIP_CONFIG_FILE:-}" ]; then
  for conf in "${XDG_CONFIG_HOME:-$HOME/.config}/pip/pip.conf" "$HOME/.pip/pip.conf"; do
    if [ -f "$conf" ]; then export PIP_CONFIG_FILE=$conf; break; fi
  done
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/onprem-sanity.XXXXXX")
trap 'rm -rf "$work"' EXIT
tree=$work/ansible_collections/onprem/datastores
mkdir -p "$tree"
# Copy what git lists (as ansible-test would list it), links as links, skipping collections/ and
# anything reached through a symlinked directory (the link itself is copied, and `symlinks` says no).
# plugins/filter/<name>.py are links to filter_plugins/<name>.py. ansible-test leaves symlinked files
# out of every test but `symlinks` (which allows links to files inside the tree), so as links the
# filters would never be checked as plugins: their documentation (ansible-doc, yamllint) and their
# imports. Under plugins/ a link to a file inside the repository is copied as that file.
git -C "$root" ls-files -z --cached --others --exclude-standard \
  | "$python" -c '
import os, shutil, sys

root, tree = sys.argv[1:]
real_root = os.path.realpath(root)
copied = 0
for path in sorted(set(sys.stdin.read().split("\0")) - {""}):
    src, dst = os.path.join(root, path), os.path.join(tree, path)
    if path.startswith("collections/") or not os.path.lexists(src):
        continue
    if os.path.realpath(os.path.dirname(src)) != os.path.join(real_root, os.path.dirname(path)).rstrip("/"):
        continue  # below a symlinked directory
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    real = os.path.realpath(src)
    if os.path.islink(src) and not (path.startswith("plugins/") and os.path.isfile(real)
                                    and real.startswith(real_root + os.sep)):
        os.symlink(os.readlink(src), dst)
    else:
        shutil.copy2(real, dst)
    copied += 1
print(copied)
' "$root" "$tree" >"$work/copied"
if [ ! -f "$tree/galaxy.yml" ]; then
  why "the copy of the repository in $tree has no galaxy.yml ($(cat "$work/copied") files copied): nothing to test"
  exit 1
fi
git -C "$tree" init -q

start=$(date +%s)
set +e
(cd "$tree" && HOME=$home "$bindir/ansible-test" sanity --requirements --python "$pyver" "${skip_args[@]}") 2>&1 \
  | tee "$log"
rc=${PIPESTATUS[0]}
set -e
secs=$(( $(date +%s) - start ))

if [ "$rc" -eq 0 ]; then
  echo "sanity: passed in ${secs}s ($(cat "$work/copied") files, python $pyver; skipped: ${skip[*]})"
  exit 0
fi
echo
why "failed after ${secs}s (exit $rc); full output: ${log#"$root"/}"
sed -e 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^(ERROR|FATAL): ' | head -n 60 >&2 || true
if grep -q 'Download failed\|pip==[0-9.]* --no-setuptools' "$log"; then
  why "bootstrapping pip into a sanity virtualenv failed: see the lines above (the get-pip file is $home/.ansible/test/cache/)"
elif grep -q 'Could not find a version\|No matching distribution\|-pip.py install' "$log"; then
  why "installing a sanity test's requirements failed: the package index did not answer (pip's configuration decides which)"
else
  why "fix each finding above in the repository (there is no ignore file on purpose), then run make lint again"
fi
exit "$rc"
