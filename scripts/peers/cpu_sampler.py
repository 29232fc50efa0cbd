#!/usr/bin/env python3
"""Sample how much CPU *other* processes use while a timing session runs.

Every INTERVAL seconds, prints `unix_time cores_used_by_others` where "others" are all
processes that are not ROOT_PID or its descendants (so the timed programs do not count).
Stops when ROOT_PID exits.

    python3 cpu_sampler.py ROOT_PID [INTERVAL] > samples.txt
"""

import os
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


def snapshot():
    procs = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                text = f.read()
        except OSError:
            continue
        # comm may contain spaces: split after the closing parenthesis.
        rest = text[text.rindex(")") + 2 :].split()
        ppid = int(rest[1])
        cpu = int(rest[11]) + int(rest[12])  # utime + stime
        procs[int(name)] = (ppid, cpu)
    return procs


def descendants(procs, root):
    children = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    out, stack = set(), [root]
    while stack:
        p = stack.pop()
        if p in out:
            continue
        out.add(p)
        stack.extend(children.get(p, []))
    return out


def main():
    root = int(sys.argv[1])
    interval = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5
    prev, prev_t = snapshot(), time.time()
    me = os.getpid()
    while os.path.exists(f"/proc/{root}"):
        time.sleep(interval)
        cur, t = snapshot(), time.time()
        mine = descendants(cur, root) | {me}
        other = 0
        for pid, (_, cpu) in cur.items():
            if pid in mine:
                continue
            other += max(0, cpu - prev[pid][1]) if pid in prev else cpu  # new: all of it
        print(f"{t:.2f} {other / HZ / (t - prev_t):.2f}", flush=True)
        prev, prev_t = cur, t


if __name__ == "__main__":
    main()
