"""Peak resident memory of this process, for the records' memory columns."""

from __future__ import annotations

import resource
import sys

__all__ = ["peak_rss_mb", "reset_peak_rss"]


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB: since the last :func:`reset_peak_rss` where
    Linux allows resetting it (VmHWM), else since the process started."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    # ru_maxrss is in KiB on Linux and bytes on macOS
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def reset_peak_rss() -> None:
    """Start :func:`peak_rss_mb`'s count anew (Linux >= 4.0; elsewhere nothing happens)."""
    try:  # writing 5 to clear_refs resets the peak resident set size
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass
