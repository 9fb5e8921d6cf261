"""W&B: online only with credentials and a server that answers; offline otherwise."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading

import pytest

from gan_je.loggers import wandb_logger, wandb_server_reachable


@pytest.fixture
def credentials(wandb_offline, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    monkeypatch.delenv("WANDB_MODE")  # decide from the credentials and the server


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_credentials_without_a_server_fall_back_to_offline(credentials, monkeypatch, caplog):
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    assert not wandb_server_reachable(timeout=2)
    with caplog.at_level("WARNING"):
        logger = wandb_logger(project="gan_je")
    assert logger._offline and "logging offline" in caplog.text


def test_credentials_and_a_server_log_online(credentials, monkeypatch):
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever)  # answers 501 to every request
    thread.start()
    try:
        monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{server.server_port}")
        assert wandb_server_reachable(timeout=2)
        assert not wandb_logger(project="gan_je")._offline  # no run starts until it logs
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.mark.slow
def test_a_server_that_fails_does_not_fail_the_run(credentials, monkeypatch, caplog, tmp_path):
    with socket.socket() as server:  # accepts connections, then drops them
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
        stop = threading.Event()

        def drop_connections() -> None:
            server.settimeout(0.2)
            while not stop.is_set():
                with contextlib.suppress(OSError):
                    server.accept()[0].close()

        thread = threading.Thread(target=drop_connections)
        thread.start()
        # a server that fails once W&B starts (it answered when asked whether it is there)
        monkeypatch.setattr("gan_je.loggers.wandb_server_reachable", lambda timeout: True)
        try:
            logger = wandb_logger(project="gan_je", save_dir=str(tmp_path), init_timeout=5)
            assert not logger._offline
            with caplog.at_level("WARNING"):
                logger.log_metrics({"x": 1.0})  # starts the run
        finally:
            stop.set()
            thread.join()
    assert logger._offline and "did not start online" in caplog.text
    assert logger.experiment.settings.mode in ("offline", "dryrun")
