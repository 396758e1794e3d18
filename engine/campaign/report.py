"""The scan summary in words, for the command line and the app (torch-free)."""

from __future__ import annotations

from typing import Any

BAR = "▁▂▃▄▅▆▇█"


def hour_sparkline(per_hour: list[int]) -> str:
    """24 characters, one per local hour, taller where more files start."""
    top = max(per_hour) if per_hour and max(per_hour) else 1
    return "".join(" " if n == 0 else BAR[min(len(BAR) - 1, int((len(BAR) - 1) * n / top + 0.5))] for n in per_hour)


def describe_summary(summary: dict[str, Any], out: str | None = None, max_sites: int = 12) -> str:
    """A few lines for a person: what was found, what was skipped and why, and the warnings."""
    lines = [f"{summary['usable']} usable file(s) of {summary['files']} at {summary['sites']} site(s) from "
             f"{summary.get('recorders', '?')} recorder(s): {summary['hours']:.2f} h of audio"
             + (f", {summary['first_utc']} to {summary['last_utc']} (UTC)" if summary.get("first_utc") else "")]
    hours = sorted(summary["hours_per_site"].items())
    if hours:
        shown = ", ".join(f"{site} {h:.2f} h" for site, h in hours[:max_sites])
        lines.append(f"hours per site: {shown}{' ...' if len(hours) > max_sites else ''}")
    if summary["usable"]:
        lines.append(f"files per local hour 00-23: |{hour_sparkline(summary['per_hour_of_day'])}|")
        dates = summary["per_date"]
        lines.append(f"dates: {len(dates)} ({min(dates)} to {max(dates)})")
    details = summary.get("recorder_details") or {}
    batteries = {r: d["battery_v"][0] for r, d in details.items() if "battery_v" in d}
    temperatures = [t for d in details.values() if "temperature_c" in d for t in d["temperature_c"]]
    if batteries:
        lowest = min(batteries, key=batteries.get)
        lines.append(f"AudioMoth comments: {len(batteries)} device(s), lowest battery {batteries[lowest]:g} V "
                     f"({lowest})" + (f", temperature {min(temperatures):g} to {max(temperatures):g} C"
                                      if temperatures else ""))
    if summary["skipped"]:
        reasons = ", ".join(f"{reason} {n}" for reason, n in summary["skipped_by_reason"].items())
        lines.append(f"skipped {summary['skipped']}: {reasons}" + (f" (each listed in {out}/skipped.csv)" if out else ""))
    if summary["outside_imagery"]:
        names = summary["outside_imagery"]
        lines.append(f"outside every image: {len(names)} site(s): {', '.join(names[:max_sites])}"
                     f"{' ...' if len(names) > max_sites else ''}")
    lines += [f"warning: {w}" for w in summary.get("warnings", [])]
    if out:
        lines.append(f"campaign written to {out}")
    return "\n".join(lines)
