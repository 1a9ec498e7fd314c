# shellcheck shell=bash
# Third-party Python tools the tests drive, in a venv of their own (kept between runs):
#   schemathesis  fuzzes /api/v1 from its OpenAPI document   -> ATRIUM_SCHEMATHESIS (its `st`)
#   kasm          a Kasm Developer API client nobody here wrote -> ATRIUM_TEST_KASM_CLIENT (its python)
# Pinned versions; bump deliberately.
SCHEMATHESIS_VERSION=4.32.5
KASM_CLIENT_VERSION=1.18.1.0

python_tools() {
  local dir=${ATRIUM_PYTOOLS_DIR:-$PWD/target/pytools} stamp
  stamp="schemathesis==$SCHEMATHESIS_VERSION kasm==$KASM_CLIENT_VERSION"
  if [[ ! -x $dir/bin/python || $(cat "$dir/.stamp" 2>/dev/null) != "$stamp" ]]; then
    log "installing $stamp into $dir"
    rm -rf "$dir"
    python3 -m venv "$dir" || die "python3 -m venv $dir"
    # shellcheck disable=SC2086
    "$dir/bin/pip" install -q --disable-pip-version-check $stamp || die "pip install $stamp"
    echo "$stamp" >"$dir/.stamp"
  fi
  export ATRIUM_SCHEMATHESIS=$dir/bin/st ATRIUM_TEST_KASM_CLIENT=$dir/bin/python
}
