"""The progress line a run logs after each commit: shards done, time elapsed and, from the pace so far, time left."""

from __future__ import annotations


def commit_progress(done: int, total: int, elapsed: float) -> str:
    """One progress line after a commit: shards done, elapsed time and, from the pace so far, the time left
    (a long run's operator wants to know when it ends, not only that it moves)."""
    line = f"committed {done}/{total} shards ({done / total:.0%}), {_duration(elapsed)} elapsed"
    if done < total:
        line += f", about {_duration(elapsed / done * (total - done))} left"
    return line


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
