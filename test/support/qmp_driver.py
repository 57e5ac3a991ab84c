#!/usr/bin/env python3
"""Drives QEMU's own python QMP client (qemu.qmp, from QEMU's source tree; see
scripts/setup-qemu-qmp.sh) against a QMP server, for test/support/python-qmp.ts.

Usage: qmp_driver.py SOCKET_PATH   (or HOST:PORT)

It connects with qemu.qmp.QMPClient (which reads the greeting and negotiates capabilities),
prints one JSON line {"ready": true, "greeting": {...}}, then answers one JSON line on stdout for
each JSON line on stdin:
  {"op": "execute", "cmd": NAME, "args": {...} | null}
      -> {"ok": true, "return": ...} | {"ok": false, "error": {"class": ..., "desc": ...}}
  {"op": "events"}                    -> {"ok": true, "events": [...]}   (drains pending events)
  {"op": "wait_event", "name": NAME, "timeout": SECONDS}
      -> {"ok": true, "event": {...}} | {"ok": false, "timeout": true}
                    (events of other names that come first are dropped)
  {"op": "legacy"}  a second connection through the legacy synchronous client
                    (qemu.qmp.legacy.QEMUMonitorProtocol): connect, negotiate, query-version
      -> {"ok": true, "greeting": {...}, "return": ...}
  {"op": "close"}                     -> {"ok": true}, then exits
Events are those the client's own EventListener collected, in arrival order.
"""

import asyncio
import json
import sys

from qemu.qmp import EventListener, ExecuteError, QMPClient
from qemu.qmp.legacy import QEMUMonitorProtocol


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def address(arg):
    if ":" in arg and not arg.startswith("/"):
        host, port = arg.rsplit(":", 1)
        return (host, int(port))
    return arg


def event_dict(msg):
    return {key: msg[key] for key in msg}


async def legacy(addr):
    def run():
        # The legacy client drives an event loop of its own: give this thread one.
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            qmp = QEMUMonitorProtocol(addr)
            try:
                greeting = qmp.connect(negotiate=True)
                version = qmp.command("query-version")
                return {"ok": True, "greeting": greeting, "return": version}
            finally:
                qmp.close()
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    # Not on this thread: this thread's loop is busy running the async client.
    return await asyncio.get_running_loop().run_in_executor(None, run)


async def main():
    addr = address(sys.argv[1])
    qmp = QMPClient("test-driver")
    listener = EventListener()
    qmp.register_listener(listener)
    await qmp.connect(addr)
    emit({"ready": True, "greeting": qmp.greeting._asdict()})

    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        req = json.loads(line)
        op = req.get("op")
        if op == "execute":
            try:
                ret = await qmp.execute(req["cmd"], req.get("args") or None)
                emit({"ok": True, "return": ret})
            except ExecuteError as err:
                emit({"ok": False, "error": {"class": err.error_class, "desc": err.error.error.desc}})
        elif op == "events":
            emit({"ok": True, "events": [event_dict(e) for e in listener.clear()]})
        elif op == "wait_event":
            deadline = loop.time() + float(req.get("timeout", 5))
            found = None
            while found is None:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    ev = await asyncio.wait_for(listener.get(), left)
                except asyncio.TimeoutError:
                    break
                if ev["event"] == req["name"]:
                    found = ev
            emit({"ok": True, "event": event_dict(found)} if found else {"ok": False, "timeout": True})
        elif op == "legacy":
            emit(await legacy(addr))
        elif op == "close":
            break
        else:
            emit({"ok": False, "error": {"class": "driver", "desc": "unknown op %r" % (op,)}})
    await qmp.disconnect()
    emit({"ok": True})


if __name__ == "__main__":
    asyncio.run(main())
