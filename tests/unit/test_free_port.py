"""`free_port`: ports for the embedded stack's servers that nothing else will take in the meantime."""

from __future__ import annotations

import socket

from switchboard import stack


def test_ports_are_free_distinct_and_below_the_range_outgoing_connections_take():
    low, _ = stack._outgoing_ports()
    ports = [stack.free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(stack._LOWEST <= p < low for p in ports), "an outgoing connection could take such a port"
    for port in ports[:5]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_something_listens_on_is_not_handed_out(monkeypatch):
    # The taken port drawn first, twice, then the ports above it.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        monkeypatch.setattr(stack, "_LOWEST", busy)
        monkeypatch.setattr(stack, "_outgoing_ports", lambda: (busy + 1000, busy + 2000))
        draws = iter([busy, busy, *range(busy + 1, busy + 100)])
        monkeypatch.setattr(stack._PICK, "randrange", lambda _a, _b: next(draws))
        monkeypatch.setattr(stack, "_HANDED_OUT", set())
        assert busy < stack.free_port() < busy + 100
