"""The benchmark's one statistic beyond the median: a percentile of measured values."""


def percentile(values, p):
    """The value at percentile `p` (0–100) of `values`, the nearest rank."""
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]
