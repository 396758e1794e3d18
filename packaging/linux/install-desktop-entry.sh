#!/bin/sh
# Adds Soundscape Mapper to this user's application menu: a desktop entry that starts the soundscape
# program in this folder, and its icons. Run it again after moving the folder; '--remove' takes it out.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
entry="$data/applications/soundscape-mapper.desktop"

if [ "${1:-}" = "--remove" ]; then
  rm -f "$entry"
  find "$data/icons/hicolor" -name 'soundscape-mapper.*' -delete 2>/dev/null || true
  echo "removed $entry and the icons"
  exit 0
fi

[ -x "$here/soundscape" ] || { echo "error: $here/soundscape: not found; run this script from the unpacked bundle" >&2; exit 1; }
mkdir -p "$data/applications"
for icon in "$here"/share/icons/hicolor/*/apps/soundscape-mapper.*; do
  size_dir=$(basename "$(dirname "$(dirname "$icon")")")
  mkdir -p "$data/icons/hicolor/$size_dir/apps"
  cp "$icon" "$data/icons/hicolor/$size_dir/apps/"
done
# The entry's Exec names this folder's program (quoted: the folder may contain spaces).
sed "s|^Exec=.*|Exec=\"$here/soundscape\"|" "$here/share/applications/soundscape-mapper.desktop" > "$entry"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$data/applications" 2>/dev/null || true
command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$data/icons/hicolor" 2>/dev/null || true
echo "installed $entry (Exec: $here/soundscape)"
