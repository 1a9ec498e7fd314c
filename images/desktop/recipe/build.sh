#!/usr/bin/env bash
# Builds Atrium's desktop workspace image from Debian packages alone (no container registry):
# debootstrap a minbase root file system of this machine's Debian release, add the security
# suite and upgrade, install TigerVNC's Xvnc, JWM, xterm, websockify and noVNC's web files,
# make the session user (kasm-user, uid 1000), then `docker import` it. Run as root:
#
#   build.sh [--tag atrium/workspace-desktop:latest] [--suite bookworm] [--mirror URL]
#            [--security-mirror URL] [--with-browser] [--label KEY=VALUE]... [--cache-dir DIR]
#
# `atrium image build-desktop` runs this with the files beside it and labels the image with a
# hash of them, so an unchanged recipe is not built twice.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
tag=atrium/workspace-desktop:latest
suite=
mirror=http://deb.debian.org/debian
security_mirror=http://deb.debian.org/debian-security
with_browser=0
labels=()
cache_dir=

log() { printf '%s\n' "$*"; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

while (($#)); do
  case $1 in
    --tag) tag=$2; shift 2 ;;
    --suite) suite=$2; shift 2 ;;
    --mirror) mirror=$2; shift 2 ;;
    --security-mirror) security_mirror=$2; shift 2 ;;
    --with-browser) with_browser=1; shift ;;
    --label) labels+=("$2"); shift 2 ;;
    --cache-dir) cache_dir=$2; shift 2 ;;
    -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

((EUID == 0)) || die "run as root: debootstrap and chroot need it"
PATH=$PATH:/usr/sbin:/sbin
command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
command -v docker >/dev/null || die "the docker CLI is not on PATH"
docker version --format '{{.Server.Version}}' >/dev/null || die "Docker does not answer"
if [[ -z $suite ]]; then
  # shellcheck disable=SC1091
  suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [[ -n $suite ]] || die "/etc/os-release names no VERSION_CODENAME: pass --suite"
fi

# The session's programs. Named one by one: debootstrap does not resolve virtual packages, and
# apt-get runs with --no-install-recommends, so nothing comes in that is not asked for.
packages=(
  tigervnc-standalone-server # Xvnc: the X server and VNC server in one
  jwm                        # the window manager (openbox would bring imlib2 and, through
                             # it, HEIF, AV1, JPEG XL and Ghostscript: +120 MiB against +30)
  xterm                      # the terminal (it provides x-terminal-emulator, which jwm needs),
                             # started by JWM's StartupCommand
  python3                    # for websockify (unpacked below, without numpy: see there)
  openssl                    # the self-signed certificate, made at each start
  fonts-dejavu-core          # the fonts of the terminal, titles and menus
)
((with_browser == 0)) || packages+=(firefox-esr fonts-liberation)

work=$(mktemp -d /var/tmp/atrium-desktop.XXXXXX)
rootfs=$work/rootfs
mounted=()
cleanup() {
  local m
  for m in "${mounted[@]}"; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

started=$SECONDS
step() { log "[$((SECONDS - started))s] $*"; }

step "debootstrap --variant=minbase $suite from $mirror"
cache_args=()
if [[ -n $cache_dir ]]; then
  mkdir -p "$cache_dir/debootstrap" "$cache_dir/apt"
  cache_args=(--cache-dir="$cache_dir/debootstrap")
fi
debootstrap --variant=minbase "${cache_args[@]}" "$suite" "$rootfs" "$mirror" \
  >"$work/debootstrap.log" 2>&1 || { tail -30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
grep -E '^I: Base system' "$work/debootstrap.log" || true

step "sources: $suite, $suite-updates, $suite-security"
cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security_mirror $suite-security main
EOF
# No documentation, manual pages or translations from here on; copyright files stay.
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/01-atrium-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
# Mesa's DRI drivers and the LLVM and Z3 they link (~160 MiB): Xvnc links libGL, which
# brings them, but renders in software without them; GLX clients get no direct rendering.
path-exclude /usr/lib/*/dri/*
path-exclude /usr/lib/*/libLLVM-*
path-exclude /usr/lib/*/libz3.so*
EOF
cat >"$rootfs/etc/apt/apt.conf.d/01-atrium" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
EOF
# Package scripts must not start daemons in the chroot.
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
mount -t proc proc "$rootfs/proc" && mounted+=("$rootfs/proc")
if [[ -n $cache_dir ]]; then
  mount --bind "$cache_dir/apt" "$rootfs/var/cache/apt/archives" && mounted+=("$rootfs/var/cache/apt/archives")
fi
in_root() { chroot "$rootfs" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "$@"; }

step "apt-get update and upgrade (security updates)"
in_root apt-get update -qq
in_root apt-get -y -qq -o Dpkg::Use-Pty=0 upgrade >"$work/upgrade.log" 2>&1 ||
  { tail -30 "$work/upgrade.log" >&2; die "apt-get upgrade failed"; }
grep -c "^Setting up" "$work/upgrade.log" | sed "s/^/packages upgraded: /"

step "installing ${packages[*]}"
in_root apt-get install -y -qq -o Dpkg::Use-Pty=0 "${packages[@]}" >"$work/apt.log" 2>&1 ||
  { tail -30 "$work/apt.log" >&2; die "apt-get install failed"; }
grep -c '^Setting up' "$work/apt.log" | sed 's/^/packages set up: /'

step "noVNC's web files and websockify, unpacked from their packages"
# Installing novnc would bring nodejs; python3-websockify brings numpy, which websockify only
# uses, when present, to unmask client frames faster (VNC's are a few bytes), and importing it
# takes ~0.4 s of every start: ~55 MB and half the start-up time for nothing.
in_root sh -c 'cd /tmp && apt-get download -qq -o APT::Sandbox::User=root novnc python3-websockify'
for package in novnc python3-websockify; do
  mkdir -p "$work/$package" "$rootfs/usr/share/doc/$package"
  dpkg -x "$rootfs"/tmp/"$package"_*.deb "$work/$package"
  cp "$work/$package/usr/share/doc/$package/copyright" "$rootfs/usr/share/doc/$package/"
done
rm -f "$rootfs"/tmp/*.deb
cp -a "$work/novnc/usr/share/novnc" "$rootfs/usr/share/novnc"
mkdir -p "$rootfs/usr/lib/python3/dist-packages"
cp -a "$work/python3-websockify/usr/lib/python3/dist-packages/websockify" \
  "$rootfs/usr/lib/python3/dist-packages/"
in_root python3 -c 'import websockify.websocketproxy' || die "websockify does not import"
install -m 0644 "$here/index.html" "$rootfs/usr/share/novnc/index.html"

step "the session user kasm-user (uid 1000, home /home/kasm-user) and the start-up files"
in_root groupadd --gid 1000 kasm-user
in_root useradd --uid 1000 --gid 1000 --create-home --home-dir /home/kasm-user \
  --shell /bin/bash kasm-user
install -m 0755 "$here/startup.sh" "$rootfs/usr/local/bin/atrium-desktop"
install -D -m 0644 "$here/websockify_auth.py" "$rootfs/usr/local/lib/atrium/atrium_websockify_auth.py"
browser_item=
((with_browser == 0)) || browser_item='<Program label="Web browser">firefox-esr</Program>'
sed "s|<!-- browser -->|$browser_item|" "$here/jwmrc" >"$rootfs/etc/jwm/system.jwmrc"
in_root jwm -p || die "jwm rejects its configuration"
# Byte-code now: the session user cannot write it next to the sources.
in_root python3 -m compileall -q /usr/lib/python3/dist-packages/websockify /usr/local/lib/atrium
cat "$here/xterm.ad" >>"$rootfs/etc/X11/app-defaults/XTerm"
# X's socket directory: root's and sticky, as the server expects, made here because the
# session runs as kasm-user.
install -d -m 1777 "$rootfs/tmp/.X11-unix"

step "cleaning up"
for m in "${mounted[@]}"; do umount -l "$m"; done
mounted=()
rm -f "$rootfs/usr/sbin/policy-rc.d"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
  "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/debconf/*-old \
  "$rootfs"/var/lib/dpkg/*-old "$rootfs"/var/log/* "$rootfs"/usr/share/man/* \
  "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/lintian/*
find "$rootfs/usr/share/doc" -type f ! -name copyright -delete
find "$rootfs/usr/share/doc" -depth -type d -empty -delete
mkdir -p "$rootfs/var/log/apt"
du -sh "$rootfs" | sed 's/\t.*//; s/^/root file system: /'

step "docker import as $tag"
changes=(
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  --change 'ENV HOME=/home/kasm-user'
  --change 'ENV LANG=C.UTF-8'
  --change 'ENV DISPLAY=:1'
  --change 'ENV VNC_RESOLUTION=1280x720'
  --change 'USER 1000:1000'
  --change 'WORKDIR /home/kasm-user'
  --change 'EXPOSE 6901'
  --change 'ENTRYPOINT ["/usr/local/bin/atrium-desktop"]'
  --change 'LABEL org.opencontainers.image.title="Atrium desktop workspace"'
)
for label in "${labels[@]}"; do changes+=(--change "LABEL $label"); done
tar -C "$rootfs" --numeric-owner -c . |
  docker import "${changes[@]}" --message "atrium desktop ($suite, browser: $with_browser)" - "$tag"
step "done: $tag"
