"""PortAudio's errors as a sentence a person can act on.

sounddevice raises ``PortAudioError("Error opening InputStream: Illegal combination of I/O devices
[PaErrorCode -9993]")``; the code says what went wrong far better than the text. Qt-free.
"""

from __future__ import annotations

import re

# PaErrorCode values from portaudio.h and what a user can do about each.
PA_ERRORS: dict[int, str] = {
    -9996: "the device is no longer there (unplugged, or the device list changed); press "
           "Audio > Refresh devices and choose it again",
    -9993: "this input and output cannot be used together (they belong to different sound systems); "
           "choose devices of the same host API (e.g. both ALSA or both PulseAudio) and try again",
    -9985: "the device is busy or unavailable (another program may hold it); close the other program "
           "or choose another device, then press Audio > Refresh devices",
    -9997: "the device does not support this sample rate; choose another device or set the device's "
           "default rate in the system's sound settings",
    -9998: "the device does not have that many channels; choose another input device",
    -9986: "the device's driver stopped responding; unplug and replug it, then press Audio > Refresh devices",
    -9999: "PortAudio failed in the host's sound system; press Audio > Refresh devices, or restart the app",
    -9987: "the device's buffer could not be set up (it may be in use at another setting); choose another device",
    -9981: "the input overflowed (the computer was too busy); close other programs and record again",
    -10000: "PortAudio is not initialised; press Audio > Refresh devices",
}

_CODE = re.compile(r"PaErrorCode\s*(-?\d+)")


def portaudio_code(err: BaseException) -> int | None:
    """The PaErrorCode of a sounddevice error (from its args or its text), or None."""
    for arg in getattr(err, "args", ())[1:2]:
        if isinstance(arg, int) and not isinstance(arg, bool):
            return arg
    match = _CODE.search(str(err))
    return int(match.group(1)) if match else None


def explain_audio_error(err: BaseException, device: str, action: str = "record") -> str:
    """'<device>: cannot record: <what went wrong>; <fix>' for a PortAudio (or other) error."""
    code = portaudio_code(err)
    text = PA_ERRORS.get(code) if code is not None else None
    if text is None:
        first = err.args[0] if err.args and isinstance(err.args[0], str) else str(err)
        raw = first.split(" [PaErrorCode")[0].strip() or type(err).__name__
        text = f"{raw}; choose another device or press Audio > Refresh devices"
    return f"{device}: cannot {action}: {text}"
