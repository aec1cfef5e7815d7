"""Reads what GNU time (`/usr/bin/time -v -o FILE`) wrote: the wall clock and peak RSS of one
command, for the bench scripts (benches/pipeline.sh, benches/figures.sh)."""


def wall_and_rss(path):
    """(wall-clock seconds, peak RSS in MB) of the command GNU time measured into `path`."""
    lines = open(path).read().splitlines()
    rss = [l for l in lines if "Maximum resident set size" in l][0].split(": ")[1]
    wall = [l for l in lines if "Elapsed (wall clock)" in l][0].split(": ")[1]
    s = 0.0
    for part in wall.split(":"):
        s = s * 60 + float(part)
    return s, int(rss) / 1024
