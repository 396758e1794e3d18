"""Recording from the microphone and playing recordings through the speakers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from app.services.audio_errors import explain_audio_error
from app.services.audio_io import (
    AudioBackend,
    AudioDevice,
    Recorder,
    StreamFactory,
    decode_for_playback,
)
from app.services.live_monitor import LiveMonitor
from app.services.player import ClipPlayer
from app.state import RecordingSession
from engine.audio import FrontEndConfig

if TYPE_CHECKING:
    from app.controllers.app_controller import AppController

log = logging.getLogger(__name__)

PLAY_MAX_SECONDS = 600.0  # longer recordings play their first ten minutes


class AudioActions:
    """Record (device choice, start, stop, query) and play/stop recordings.

    ``open_stream`` is how a recording stream is opened; it is the backend's sounddevice stream, and
    tests may replace it with a fake stream that feeds the same callback. ``on_recorded(samples, rate)``
    gets each recording stopped with ``query=True``.
    """

    def __init__(self, app: AppController, backend: AudioBackend,
                 on_recorded: Callable[[np.ndarray, int], Any] | None = None) -> None:
        self.app = app
        self.on_recorded = on_recorded  # what a finished recording is handed to (the sound search)
        self.backend = backend
        self.open_stream: StreamFactory = backend.open_input_stream
        self.player = ClipPlayer(backend)
        self.player.set_gain(app.settings.playback_gain_db, app.settings.playback_normalise)
        self.last_recording: tuple[np.ndarray, int] | None = None  # the microphone query, for Play
        self.recorder: Recorder | None = None
        self.monitor: LiveMonitor | None = None
        self._play_task: Any = None
        self.refresh_devices()

    def refresh_devices(self, rescan: bool = False) -> None:
        """Read the device list into the state (and pick the remembered or default input).

        ``rescan`` restarts PortAudio first: it lists devices only when it starts, so a microphone
        plugged in later appears only after this (Audio > Refresh devices).
        """
        b = self.backend
        if rescan and b.sd is not None and not self.app.state.audio.recording:
            self.stop_playback()
            try:
                b.sd._terminate()  # sounddevice's documented way to make PortAudio list devices again
                b.sd._initialize()
            except Exception as err:
                log.warning("restarting PortAudio failed: %s", err)
                self.app.error(explain_audio_error(err, "Audio", "refresh the devices"))
        devices = b.input_devices()
        wanted = self.app.settings.input_device
        chosen = next((d for d in devices if d.name == wanted), None) or b.default_input()
        in_reason, out_reason = b.input_reason(), b.output_reason()
        reason = in_reason or out_reason
        self.app.state.audio.set_devices(not in_reason, not out_reason, reason, devices, chosen,
                                         b.default_output_name() or "")
        if rescan:
            self.app.state.tell("info", f"Audio devices refreshed: {len(devices)} input"
                                        f"{'s' if len(devices) != 1 else ''}")

    def choose_input(self, device: AudioDevice) -> None:
        self.app.state.audio.set_input_device(device)
        self.app.settings.input_device = device.name
        self.app.save_settings()

    # ------------------------------------------------------------------------------- recording

    def start_recording(self, max_seconds: float | None = None) -> RecordingSession | None:
        """Open the chosen input and start recording into a ring buffer; the live monitor follows it.

        Returns:
            The :class:`RecordingSession` (also in ``state.audio.session``), or None if it failed
            (the window shows why).
        """
        audio = self.app.state.audio
        if audio.recording:
            return audio.session
        if not audio.input_available or audio.input_device is None:
            self.app.error(f"Cannot record: {audio.reason or 'no input device'}")
            return None
        bundle = self.app.state.project.bundle
        cfg = bundle.front_end if bundle is not None else FrontEndConfig()
        device: AudioDevice = audio.input_device
        rate = self.backend.input_rate(device, cfg.sample_rate)
        seconds = float(max_seconds or self.app.settings.record_max_seconds)
        recorder = Recorder(self.open_stream, device, rate, seconds)
        try:
            recorder.start()
        except Exception as err:  # PortAudioError and friends: the device went away or is busy
            log.warning("recording from %s failed to start: %s", device.name, err)
            try:
                recorder.stop()
            except Exception:
                pass
            self.app.error(explain_audio_error(err, device.name, "record"))
            return None
        self.recorder = recorder
        self.monitor = LiveMonitor(recorder.ring, rate, cfg, recorder.max_samples)
        audio.set_session(RecordingSession(device.name, rate, seconds, cfg))
        log.info("recording from %s at %d Hz for at most %.1f s", device.name, rate, seconds)
        return audio.session

    def poll_recording(self) -> None:
        """Called by the GUI's timer: new frames and levels into the session; stop at the maximum length."""
        session, monitor = self.app.state.audio.session, self.monitor
        if session is None or monitor is None:
            return
        update = monitor.poll()
        session.update(update.frames, update.level, update.take, update.seconds)
        if update.full:
            self.stop_recording(query=True)

    def stop_recording(self, query: bool = True) -> tuple[np.ndarray, int] | None:
        """Stop recording; with ``query`` the clip is searched for (in the background).

        Returns:
            (samples, rate) or None when nothing was recording.
        """
        recorder, self.recorder = self.recorder, None
        monitor, self.monitor = self.monitor, None
        if recorder is None:
            return None
        try:
            samples = recorder.stop()
            session = self.app.state.audio.session
            if monitor is not None and session is not None:  # the last frames since the final tick
                update = monitor.poll()
                session.update(update.frames, update.level, update.take, update.seconds)
        finally:
            self.app.state.audio.set_session(None)
        if recorder.status_flags:
            log.info("recording had %d over/underflow callbacks", recorder.status_flags)
        self.last_recording = (samples, recorder.rate)
        if query and self.on_recorded is not None:
            self.on_recorded(samples, recorder.rate)
        return samples, recorder.rate

    # -------------------------------------------------------------------------------- playback

    def play(self, path: str, start_s: float = 0.0) -> None:
        """Play a recording (decoded in the background) from ``start_s``; the one playing stops first."""
        audio = self.app.state.audio
        if not audio.output_available:
            self.app.error(f"Cannot play: {audio.reason or 'no output device'}")
            return
        self.stop_playback()
        audio.set_playing(path)

        def decoded(result: tuple[np.ndarray, int]) -> None:
            if audio.playing != path:
                return  # stopped or replaced while decoding
            self._start(result[0], result[1], path, start_s)

        def failed(message: str) -> None:
            audio.set_playing(None)
            self.app.error(message)

        self._play_task = self.app.runner.submit("Decoding", lambda job: decode_for_playback(path, PLAY_MAX_SECONDS),
                                                 on_success=decoded,
                                                 on_error=failed, cancellable=False)

    def play_samples(self, samples: np.ndarray, rate: int, label: str, start_s: float = 0.0) -> None:
        """Play samples held in memory (the microphone query) under the name ``label``."""
        audio = self.app.state.audio
        if not audio.output_available:
            self.app.error(f"Cannot play: {audio.reason or 'no output device'}")
            return
        self.stop_playback()
        audio.set_playing(label)
        self._start(samples, rate, label, start_s)

    def _start(self, samples: np.ndarray, rate: int, label: str, start_s: float) -> None:
        audio = self.app.state.audio
        try:
            self.player.play(samples, rate, label, start_s)
        except Exception as err:  # PortAudioError: the output went away, or a bad device combination
            audio.set_playing(None)
            self.app.error(explain_audio_error(err, audio.output_name or "The output", "play"))
            return
        audio.set_position(self.player.position_seconds, self.player.duration_seconds)

    def seek(self, seconds: float) -> None:
        """Move the playhead of the clip playing (click-to-seek)."""
        if self.app.state.audio.playing is None:
            return
        self.player.seek(seconds)
        self.app.state.audio.set_position(self.player.position_seconds, self.player.duration_seconds)

    def set_gain(self, gain_db: float, normalise: bool) -> None:
        """Playback gain in dB and peak normalisation (remembered)."""
        self.player.set_gain(gain_db, normalise)
        self.app.settings.playback_gain_db, self.app.settings.playback_normalise = float(gain_db), bool(normalise)
        self.app.save_settings()

    def stop_playback(self) -> None:
        self.player.stop()
        if self.app.state.audio.playing is not None:
            self.app.state.audio.set_playing(None)

    def poll_playback(self) -> None:
        """Called by the GUI's timer: move the playhead (the frames the stream took); notice the end."""
        audio = self.app.state.audio
        if audio.playing is None or self.player.path is None:
            return
        audio.set_position(self.player.position_seconds, self.player.duration_seconds)
        if not self.player.active:
            self.player.stop()
            audio.set_playing(None)

    def shutdown(self) -> None:
        if self.recorder is not None:
            self.stop_recording(query=False)
        self.player.stop()
