#!/usr/bin/env python3
"""free_port.py — a TCP port on 127.0.0.1 for a server a test starts.

The port is drawn below the kernel's ephemeral range
(/proc/sys/net/ipv4/ip_local_port_range): the kernel never hands such a
port to an outgoing connection, so a server that is killed and restarted on
its port (the chaos test restarts qb-api, PostgreSQL and Redis) gets it back.
A port from the ephemeral range can be taken meanwhile as the local port of
any client's connection, and the restart then fails to bind for as long as
that connection lives (the qb-api crash loop of CI at 4d23779).

Checked free by binding it now; two tests drawing the same port at once is
the remaining (small) risk. Usable as a module (free_port()) or a script
(prints the port)."""
import random
import socket


def ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(low=10000):
    high = ephemeral_low() - 1
    if high <= low:  # an unusual range: take what the kernel gives
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        return p
    for _ in range(500):
        p = random.randint(low, high)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port in %d-%d" % (low, high))


if __name__ == "__main__":
    print(free_port())
