#!/usr/bin/env bash
# Installs the system libraries the app and the tests need, when they are missing.
# Runs apt-get only as root on Debian/Ubuntu; otherwise it names what is missing and goes on.
set -u
packages=(
  libportaudio2            # PortAudio, for sounddevice (microphone and speakers)
  libsndfile1              # libsndfile for tools beside soundfile's bundled copy
  libegl1 libgl1 libfontconfig1 libdbus-1-3 libxkbcommon0   # Qt offscreen and xcb
  libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0
  libxcb-render-util0 libxcb-shape0 libxcb-randr0 libxcb-xinerama0 libxcb-xkb1
  xvfb xauth               # a virtual screen for real windows and screenshots
  pulseaudio pulseaudio-utils libasound2-plugins   # the real audio path in tests
)
command -v dpkg-query >/dev/null 2>&1 || { echo "system_deps: not a Debian system; install PortAudio and Qt's xcb libraries yourself"; exit 0; }
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "system_deps: missing ${missing[*]}; run 'sudo apt-get install ${missing[*]}' (continuing without them)"
  exit 0
fi
echo "system_deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
  || echo "system_deps: apt-get could not install ${missing[*]} (continuing; audio or windows may be unavailable)"
