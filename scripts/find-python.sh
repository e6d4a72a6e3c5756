#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter, or fail with a clear message.
# Looks at $PYTHON, python3.13, python3.12, python3 on PATH, then pyenv-installed versions.
set -u
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
# 3.12 first: it is the version the project is tested on.
for cand in "${PYTHON:-}" python3.12 python3.13 python3; do
  [ -n "$cand" ] || continue
  path=$(command -v "$cand" 2>/dev/null) || continue
  if ok "$path"; then echo "$path"; exit 0; fi
done
roots=("${PYENV_ROOT:-$HOME/.pyenv}")
command -v pyenv >/dev/null 2>&1 && roots+=("$(pyenv root)")
for root in "${roots[@]}"; do
  for path in $(ls -d "$root"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -V); do
    if ok "$path"; then echo "$path"; exit 0; fi
  done
done
echo "error: no Python >= 3.12 found (tried \$PYTHON, python3.12, python3.13, python3 and pyenv versions)." >&2
echo "       Mesa 3.4+ needs Python >= 3.12: install one (e.g. 'pyenv install 3.12') or set PYTHON=/path/to/python3.12." >&2
exit 1
