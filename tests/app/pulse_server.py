"""A private PulseAudio server for tests: a null sink (22,050 Hz mono) whose monitor is the default
source, so what ``paplay`` plays into the sink can be recorded through PortAudio (ALSA's pulse plugin).

Everything lives in a temporary folder (runtime dir, HOME with an .asoundrc); the user's files and any
running sound server are not touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

ALSA_PULSE_PLUGIN_DIRS = ("/usr/lib/x86_64-linux-gnu/alsa-lib", "/usr/lib/aarch64-linux-gnu/alsa-lib",
                          "/usr/lib64/alsa-lib", "/usr/lib/alsa-lib")

DEFAULT_PA = """\
load-module module-native-protocol-unix auth-anonymous=1 socket={socket}
load-module module-null-sink sink_name=soundscape_test rate=22050 channels=1
set-default-sink soundscape_test
set-default-source soundscape_test.monitor
"""

# The sink runs at the front-end's rate, so a clip is resampled once (by PulseAudio, with soxr as the
# app's file path does) rather than twice with PulseAudio's fast default resampler.
RESAMPLER = "soxr-vhq"

ASOUNDRC = """\
pcm.!default { type pulse }
ctl.!default { type pulse }
"""


def missing_pieces() -> list[str]:
    """What this machine lacks for the real audio path (empty when it has everything)."""
    missing = [tool for tool in ("pulseaudio", "paplay", "pactl") if shutil.which(tool) is None]
    if not any(Path(d, "libasound_module_pcm_pulse.so").is_file() for d in ALSA_PULSE_PLUGIN_DIRS):
        missing.append("ALSA pulse plugin (libasound2-plugins)")
    return missing


class PulseServer:
    """Start with :meth:`start`; :attr:`env` is what a client process needs; :meth:`stop` ends it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.runtime = root / "runtime"
        self.home = root / "home"
        self.socket = self.runtime / "pulse.sock"
        self.proc: subprocess.Popen | None = None
        self.log = root / "pulseaudio.log"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(PULSE_SERVER=f"unix:{self.socket}", XDG_RUNTIME_DIR=str(self.runtime), HOME=str(self.home),
                   PULSE_RUNTIME_PATH=str(self.runtime / "pulse"))
        env.pop("ALSA_CONFIG_PATH", None)
        return env

    def start(self, timeout_s: float = 15.0) -> None:
        """Start the server and wait until it answers. Raises RuntimeError with its log if it does not."""
        self.runtime.mkdir(parents=True, exist_ok=True)
        self.runtime.chmod(0o700)
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / ".asoundrc").write_text(ASOUNDRC)
        config = self.root / "default.pa"
        config.write_text(DEFAULT_PA.format(socket=self.socket))
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["pulseaudio", "-n", "-F", str(config), "--daemonize=no", "--exit-idle-time=-1",
                 f"--resample-method={RESAMPLER}",
                 "--disallow-exit", "--use-pid-file=no", "--system=no", "--log-target=stderr"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            probe = subprocess.run(["pactl", "info"], env=self.env, capture_output=True, text=True)
            if probe.returncode == 0 and "soundscape_test.monitor" in probe.stdout:
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"pulseaudio did not start: {self.log.read_text(errors='replace')[-800:]}")

    def play(self, path: Path) -> None:
        """Play a file into the sink (returns when it has been played)."""
        subprocess.run(["paplay", str(path)], env=self.env, check=True, timeout=120)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
