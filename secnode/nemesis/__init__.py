"""`sec nemesis`: fault injection over a real 4-validator network, and the checks that must hold.

Modules, in the order a run uses them:

* `proxy`: the link layer; every P2P connection passes a forwarder the nemesis can cut.
* `cluster`: the network's homes and node processes (the only owner of those processes).
* `faults`: the seeded schedule of kill -9, SIGSTOP, partitions, clock skew and a Byzantine node.
* `load`: client threads submitting transfers and orders; what was acknowledged as committed.
* `checker`: forks, lost acknowledgements and tracebacks, over JSON-RPC and the logs.
* `report`: counters, the summary line and the exit status.
* `runner`: the cycle loop and `main` (`sec nemesis --cycles N --seed S --out DIR`).

TEST-ONLY: nothing here runs inside a node; the one node-side fault
(`secnode.runtime.byzantine`) is off unless its environment variable is set.
"""
