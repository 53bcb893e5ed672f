"""N threads racing to create one task or one exec id: exactly one wins, the winner is unharmed.

The losers used to share the winner's FIFO paths and remove them when their own
Create/Exec failed, so the winner's shim found no FIFOs ("failed to start io pipe
copy"). Run on the FIFO path (where the paths are shared) and with the handoff.
"""

from __future__ import annotations

import threading

import pytest

from pycontainerd import errors, oci, stdio

RACERS = 6


def race(n: int, action):
    barrier = threading.Barrier(n)
    outcomes: list[object] = [None] * n

    def go(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = action(i)
        except BaseException as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        assert not t.is_alive()
    return outcomes


def _spec(client, rootfs, cid, args):
    return oci.build(args=args, rootfs=rootfs, namespace=client.namespace, container_id=cid)


@pytest.mark.parametrize("transport", ["fifo", "handoff"])
def test_racing_new_task_one_winner(client, rootfs, transport):
    spec = _spec(client, rootfs, "race", ["sh", "-c", "echo winner; exit 4"])
    container = client.new_container("race", spec)

    def new_task(i: int):
        wired = stdio.capture()
        return container.new_task(stdio=stdio.handoff(wired) if transport == "handoff" else wired)

    outcomes = race(RACERS, new_task)
    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    losers = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(o, errors.ConflictError) for o in losers), losers
    (task,) = winners
    exited = task.wait()
    task.start()
    assert exited.result(60).code == 4
    assert task.io.stdout_data == b"winner\n"
    task.delete()
    container.delete()


@pytest.mark.parametrize("transport", ["fifo", "handoff"])
def test_racing_exec_same_id_one_winner(client, rootfs, transport):
    container = client.new_container("host", _spec(client, rootfs, "host", ["sleep", "600"]))
    task = container.new_task()
    task.start()

    def exec_(i: int):
        wired = stdio.capture()
        return task.exec("e", oci.process(["sh", "-c", "echo exec-winner"]),
                         stdio=stdio.handoff(wired) if transport == "handoff" else wired)

    outcomes = race(RACERS, exec_)
    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    losers = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(o, errors.ConflictError) for o in losers), losers
    (proc,) = winners
    exited = proc.wait()
    proc.start()
    assert exited.result(60).code == 0
    assert proc.io.stdout_data == b"exec-winner\n"
    proc.delete()
    task.kill(9)
    task.wait().result(60)
    task.delete()
    container.delete()
