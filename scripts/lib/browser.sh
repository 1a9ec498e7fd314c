# shellcheck shell=bash
# Headless Chromium and its WebDriver for the browser tests (integration-tests/tests/browser),
# from Debian's packages. Sourced, not executed; needs scripts/lib/services.sh (apt_install).
#   ATRIUM_TEST_CHROMIUM       the chromium program
#   ATRIUM_TEST_CHROMEDRIVER   the chromedriver program (same version as chromium)

browser_tools() {
  local chromium chromedriver
  chromium=$(command -v chromium || true)
  chromedriver=$(command -v chromedriver || true)
  if [[ -z $chromium || -z $chromedriver ]]; then
    apt_install chromium chromium-driver
    chromium=$(command -v chromium) || die "chromium: not on PATH after install"
    chromedriver=$(command -v chromedriver) || die "chromedriver: not on PATH after install"
  fi
  export ATRIUM_TEST_CHROMIUM=$chromium ATRIUM_TEST_CHROMEDRIVER=$chromedriver
}
