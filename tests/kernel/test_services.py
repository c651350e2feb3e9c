"""Kernel verbs sent by a protocol client (comm `text`) run where their `Verb.thread` says."""

from __future__ import annotations

from tests.conftest import Kernel


def test_blocking_verbs_from_a_client_run_in_order_on_the_one_named_verb_worker(kernel: Kernel) -> None:
    kernel.ok(
        "import threading\n"
        "_svc = get_ipython().kernel.services\n"
        "_saved, _seen = _svc.fns['script'], []\n"
        "_svc.fns['script'] = lambda: (_seen.append(threading.current_thread().name), str(len(_seen)))[1]"
    )
    try:
        c = kernel.client()
        ids = [c.text("script") for _ in range(5)]
        replies = [c.reply(i) for i in ids]
        c.close()
        assert [(r["type"], r.get("output")) for r in replies] == [("ack", str(n)) for n in range(1, 6)], replies
        out = kernel.ok("print(_seen, sum(t.name == 'vt-verbs' for t in threading.enumerate()))")
    finally:
        kernel.ok("_svc.fns['script'] = _saved")
    assert out.strip() == "['vt-verbs', 'vt-verbs', 'vt-verbs', 'vt-verbs', 'vt-verbs'] 1", out
