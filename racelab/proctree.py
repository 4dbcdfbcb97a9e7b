"""Read the CPU time of whole process trees from ``/proc`` (Linux): what a served stack costs, with no agent in it.

A process's ``utime + stime`` is what it ran itself; its ``cutime + cstime``
is what its children ran, once it reaped them. Summed over every live process
of a tree, both count each process once, also one that exited between two
readings — provided its parent in the tree waited for it, as a PostgreSQL
postmaster, a gunicorn arbiter and ``subprocess`` do. A process that leaves
the tree (a double-forked daemon) is not counted.
"""
import os
from collections import defaultdict

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def processes():
    """Return ``{pid: (parent pid, CPU ticks of it and its reaped children)}`` of every live process."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:  # it exited while we looked
            continue
        # The name, field 2, may hold spaces and parentheses: the fields that follow start after the last ")".
        fields = stat[stat.rindex(")") + 2:].split()
        found[int(entry)] = int(fields[1]), sum(int(ticks) for ticks in fields[11:15])  # ppid; utime … cstime
    return found


def tree_pids(roots, table=None):
    """Return the pids of ``roots`` and of all their live descendants."""
    table = processes() if table is None else table
    children = defaultdict(list)
    for pid, (parent, _) in table.items():
        children[parent].append(pid)
    seen, todo = set(), [pid for pid in roots if pid in table]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(children[pid])
    return seen


def command_line(pid):
    """Return the arguments ``pid`` runs with, or ``[]`` when it is gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def cpu_seconds_by_child(root):
    """Return ``{pid: CPU seconds}`` of each child of ``root`` with its whole tree, and of ``root`` itself alone.

    As :func:`cpu_seconds`, only differences mean anything; a child that exited is counted in ``root``'s figure.
    """
    table = processes()
    if root not in table:
        return {}
    children = [pid for pid, (parent, _) in table.items() if parent == root]
    spent = {pid: sum(table[each][1] for each in tree_pids([pid], table)) / TICKS_PER_SECOND for pid in children}
    spent[root] = table[root][1] / TICKS_PER_SECOND
    return spent


def cpu_seconds(roots):
    """Return the CPU seconds the trees under ``roots`` (pids) have spent so far, user and system, each process once.

    Only differences between two readings mean anything: a reading includes
    what each process ran before it was measured. Ticks are ``1/SC_CLK_TCK`` s
    (10 ms on most kernels) per process, so a difference is exact to a few
    ticks times the number of processes.
    """
    table = processes()
    return sum(table[pid][1] for pid in tree_pids(roots, table)) / TICKS_PER_SECOND
