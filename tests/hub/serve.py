"""The team stack for the browser test (ui-tests/playwright.hub.config.js): hub on 8010, gateway on
8011, the fake provider (and its /_fake/ controls) on 8013, ada's server started and a notebook
waiting in her home. The fake answers only once everything else is up. Runs until SIGTERM/SIGINT,
then stops everything it started.

    python -m tests.hub.serve
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

from ..fake_upstream import FakeUpstream
from .stack import Stack

HUB_PORT, GATEWAY_PORT, FAKE_PORT = 8010, 8011, 8013

NOTEBOOK = {
    "cells": [{"cell_type": "code", "execution_count": None, "id": "ask", "metadata": {}, "outputs": [],
               "source": "Explain streaming."}],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
    "nbformat": 4, "nbformat_minor": 5,
}


def main() -> None:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    work = Path(tempfile.mkdtemp(prefix="cellmage-hub-ui-"))
    stack = Stack(work, fake=FakeUpstream(port=FAKE_PORT), hub_port=HUB_PORT, gateway_port=GATEWAY_PORT)
    stack.password = "ada-and-bob"  # the browser test logs in with it
    try:
        stack.start(fake_last=True)
        (work / "home" / "ada" / "hub.ipynb").write_text(json.dumps(NOTEBOOK))
        stack.start_servers("ada")
        stack.fake.start()
        print(f"ready: hub http://127.0.0.1:{HUB_PORT}/ (logs in {work})", flush=True)
        parent = os.getppid()
        while not stop.wait(1) and os.getppid() == parent:
            pass  # until told to stop, or orphaned (whoever started us is gone)
    finally:
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
