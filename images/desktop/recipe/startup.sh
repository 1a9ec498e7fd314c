#!/bin/bash
# The desktop image's entrypoint (/usr/local/bin/atrium-desktop), run as kasm-user (uid 1000)
# with no capabilities: Kasm's protocol on 6901 in front of a VNC desktop.
#
#   Xvnc        the display ($DISPLAY, default :1) and its VNC server, on localhost only, with no
#               VNC password: only websockify, in this container, reaches it
#   jwm         the window manager; its StartupCommand opens the terminal once it manages the screen
#   websockify  HTTPS on $ATRIUM_WORKSPACE_PORT (6901) with a self-signed certificate made now;
#               noVNC's page and the WebSocket (/websockify) both need basic auth kasm_user:$VNC_PW
#               (checked by /usr/local/lib/atrium/atrium_websockify_auth.py)
#
# If any of the three ends, the others are stopped and the container exits; SIGTERM stops all.
set -euo pipefail

if [[ -z ${VNC_PW:-} ]]; then
  echo "atrium-desktop: VNC_PW is empty or unset: it is kasm_user's password, set it with -e VNC_PW=..." >&2
  exit 2
fi
display=${DISPLAY:-:1}
number=${display#:}
number=${number%%.*}
rfb_port=$((5900 + number))
port=${ATRIUM_WORKSPACE_PORT:-6901}
resolution=${VNC_RESOLUTION:-1280x720}
export DISPLAY=$display HOME=${HOME:-/home/kasm-user} USER=kasm-user

log() { printf 'atrium-desktop: %s\n' "$*" >&2; }

run=$(mktemp -d /tmp/atrium-desktop.XXXXXX)
# Certificate and key for this container only: a fresh one at every start, readable by nobody else.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
  -subj "/CN=$(hostname)" -addext "subjectAltName=DNS:$(hostname),DNS:localhost,IP:127.0.0.1" \
  -keyout "$run/key.pem" -out "$run/cert.pem" 2>"$run/openssl.log" ||
  { cat "$run/openssl.log" >&2; exit 1; }
chmod 0600 "$run/key.pem"

pids=()
stop() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true
}
trap 'log "stopping"; stop; exit 0' TERM INT

Xvnc "$display" -localhost -rfbport "$rfb_port" -SecurityTypes None -nolisten tcp \
  -geometry "$resolution" -depth 24 -AlwaysShared -desktop "Atrium desktop" \
  >"$run/Xvnc.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  [[ -S /tmp/.X11-unix/X$number ]] && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$run/Xvnc.log" >&2; log "Xvnc exited"; exit 1; }
  sleep 0.05
done
[[ -S /tmp/.X11-unix/X$number ]] || { cat "$run/Xvnc.log" >&2; log "Xvnc did not open $display"; stop; exit 1; }

jwm >"$run/jwm.log" 2>&1 &
pids+=($!)

# The password reaches the auth plugin through the environment, not the command line.
# (websockify is unpacked without numpy, on purpose: see build.sh; hence the -W.)
PYTHONPATH=/usr/local/lib/atrium python3 -W "ignore:no 'numpy' module" -m websockify \
  --web /usr/share/novnc \
  --cert "$run/cert.pem" --key "$run/key.pem" --ssl-only \
  --web-auth --auth-plugin atrium_websockify_auth.KasmBasicAuth --auth-source kasm_user \
  "$port" "localhost:$rfb_port" &
pids+=($!)
log "display $display ($resolution), https on $port"

status=0
wait -n || status=$?
log "a process ended (exit $status); stopping the others"
stop
exit "$status"
