# shellcheck shell=bash
# What the desktop image's test (integration-tests/tests/desktop_image.rs) needs on the host:
# debootstrap, to build the image from Debian packages (`atrium image build-desktop`). Sourced
# after services.sh, whose log and apt_install it uses. Building also needs root; without it
# the test fails and says so.

# Installs debootstrap when Docker tests are on and it is missing.
desktop_tools() {
  [[ ${ATRIUM_TEST_DOCKER:-} == 1 ]] || return 0
  if command -v debootstrap >/dev/null || [[ -x /usr/sbin/debootstrap ]]; then return 0; fi
  apt_install debootstrap
  [[ -x /usr/sbin/debootstrap ]] || die "debootstrap: not installed after apt-get install"
}
