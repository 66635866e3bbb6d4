"""numba kernels of :class:`aiinfra_pipelines.scaling.slots.CompiledSlotPool` (imported only
when numba is installed). The heap is three arrays ordered by ``(free time, order)``; the
orders are unique, so the slot at the front is the same one ``heapq`` would pick."""

from __future__ import annotations

from numba import njit


@njit(cache=True)
def _sift_down(hf, hs, hr, n, pos, nf, ns, nr):
    # place (nf, ns, nr) at ``pos`` and move it down to where it belongs
    i = pos
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and (hf[c + 1] < hf[c] or (hf[c + 1] == hf[c] and hs[c + 1] < hs[c])):
            c += 1
        if hf[c] < nf or (hf[c] == nf and hs[c] < ns):
            hf[i] = hf[c]
            hs[i] = hs[c]
            hr[i] = hr[c]
            i = c
        else:
            break
    hf[i] = nf
    hs[i] = ns
    hr[i] = nr


@njit(cache=True)
def _pop(hf, hs, hr, n):
    n -= 1
    if n > 0:
        _sift_down(hf, hs, hr, n, 0, hf[n], hs[n], hr[n])
    return n


@njit(cache=True)
def push_slots(hf, hs, hr, n, t, seq, rid, count):
    """Push ``count`` slots of replica ``rid`` free at ``t`` (orders ``seq..``); the new size."""
    for j in range(count):
        i = n
        n += 1
        s = seq + j
        while i > 0:
            p = (i - 1) // 2
            if t < hf[p] or (t == hf[p] and s < hs[p]):
                hf[i] = hf[p]
                hs[i] = hs[p]
                hr[i] = hr[p]
                i = p
            else:
                break
        hf[i] = t
        hs[i] = s
        hr[i] = rid
    return n


@njit(cache=True)
def start_pass(arrivals, services, start, hf, hs, hr, n, ready, dead, seq, nxt, arrived, t, k, dt, done_at_tick):
    """``SlotPool.start_pass`` over the arrays. Returns ``(first request not started, heap
    size, dead slots, next order, 1 if done_at_tick must grow first else 0)``."""
    i = nxt
    cap = done_at_tick.shape[0]
    while i < arrived:
        if dead > 0:
            while n > 0 and not ready[hr[0]]:
                n = _pop(hf, hs, hr, n)
                dead -= 1
        if n == 0:
            break
        free = hf[0]
        arr = arrivals[i]
        s0 = arr if arr > free else free
        if s0 >= t:
            break
        end = s0 + services[i]
        kd = int(end // dt) + 1
        if kd < k:  # float rounding of a start exactly at the previous tick
            kd = k
        if kd >= cap:
            return i, n, dead, seq, 1
        start[i] = s0
        _sift_down(hf, hs, hr, n, 0, end, seq, hr[0])  # pop the slot, push it back busy
        seq += 1
        done_at_tick[kd] += 1
        i += 1
    return i, n, dead, seq, 0
