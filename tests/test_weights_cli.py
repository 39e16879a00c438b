"""``python -m sr.weights``: list / where / verify / fetch on a temporary weights directory (no internet)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sr import weights as W
from sr.weights.cli import main

PAYLOAD = b"fake weights " * 100


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def registry(monkeypatch):
    """A small registry in place of configs/weights.yaml."""
    entries = {}

    def add(name, **spec):
        entries[name] = W.WeightsEntry(name=name, **spec)

    add(
        "good",
        file="a/good.pth",
        sha256=hashlib.sha256(PAYLOAD).hexdigest(),
        size=len(PAYLOAD),
        licence="MIT",
        url="http://127.0.0.1:9/good.pth",
    )
    add("nosha", file="b/nosha.pth")
    add("absent", file="c/absent.pth", url="https://example.org/absent.pth")
    add("drive", file="d/drive.pth", url="https://drive.google.com/drive/folders/ABCdef_123")
    monkeypatch.setattr(W, "registry", lambda: entries)
    return add


@pytest.fixture
def wdir(tmp_path) -> Path:
    d = tmp_path / "weights"
    (d / "a").mkdir(parents=True)
    (d / "a" / "good.pth").write_bytes(PAYLOAD)
    (d / "b").mkdir()
    (d / "b" / "nosha.pth").write_bytes(b"x")
    return d


def test_list_shows_entries_and_presence(registry, wdir, capsys):
    assert main(["--weights-dir", str(wdir), "list"]) == 0
    out = capsys.readouterr().out
    assert "* good" in out and "  absent" in out
    assert "licence: MIT" in out and "source:  https://example.org/absent.pth" in out
    assert hashlib.sha256(PAYLOAD).hexdigest() in out


def test_where(registry, wdir, capsys):
    assert main(["--weights-dir", str(wdir), "where", "good"]) == 0
    assert capsys.readouterr().out.strip() == str(wdir / "a" / "good.pth")
    assert main(["--weights-dir", str(wdir), "where", "absent"]) == 1
    assert main(["--weights-dir", str(wdir), "where", "nonexistent"]) == 2
    assert "unknown weights 'nonexistent'" in capsys.readouterr().err


def test_verify(registry, wdir, capsys):
    assert main(["--weights-dir", str(wdir), "verify", "good", "nosha"]) == 0
    out = capsys.readouterr().out
    assert "ok          good" in out and "unverified  nosha" in out
    assert main(["--weights-dir", str(wdir), "verify", "absent"]) == 1
    assert "missing" in capsys.readouterr().out
    (wdir / "a" / "good.pth").write_bytes(PAYLOAD[:-1] + b"?")  # same size, other content
    assert main(["--weights-dir", str(wdir), "verify"]) == 1
    assert "mismatch    good" in capsys.readouterr().out


def test_fetch_offline_fails_in_one_clear_line(registry, tmp_path, capsys):
    port = _free_port()  # nothing listens there: connection refused
    registry("local", file="e/local.pth", url=f"http://127.0.0.1:{port}/local.pth")
    assert main(["--weights-dir", str(tmp_path / "w"), "fetch", "local", "--timeout", "5"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "offline or the host is unreachable" in err and str(tmp_path / "w" / "e" / "local.pth") in err
    assert not list((tmp_path / "w").rglob("*.pth"))


def test_fetch_google_drive_prints_manual_steps(registry, tmp_path, capsys):
    assert main(["--weights-dir", str(tmp_path), "fetch", "drive"]) == 1
    err = capsys.readouterr().err
    assert "Google Drive" in err and str(tmp_path / "d" / "drive.pth") in err and "verify drive" in err


@pytest.fixture
def http_root(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    handler_class = type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler_class, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_fetch_downloads_checks_sha256_and_is_atomic(registry, tmp_path, http_root, capsys):
    root, base = http_root
    (root / "f.pth").write_bytes(PAYLOAD)
    registry("served", file="s/f.pth", url=f"{base}/f.pth", sha256=hashlib.sha256(PAYLOAD).hexdigest())
    registry("corrupt", file="s/g.pth", url=f"{base}/f.pth", sha256="0" * 64)
    wdir = tmp_path / "w"
    assert main(["--weights-dir", str(wdir), "fetch", "served"]) == 0
    assert (wdir / "s" / "f.pth").read_bytes() == PAYLOAD
    assert "(ok)" in capsys.readouterr().out
    assert main(["--weights-dir", str(wdir), "fetch", "corrupt"]) == 1
    assert "sha256" in capsys.readouterr().err
    assert sorted(p.name for p in (wdir / "s").iterdir() if not p.name.startswith(".f.pth.sha256")) == ["f.pth"]


def test_module_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "sr.weights", "where", "realesrgan_x4plus"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 1  # not present in the test's weights directory
    assert result.stdout.strip().endswith("realesrgan/RealESRGAN_x4plus.pth")


def test_every_real_entry_names_its_source_and_where_it_was_checked(capsys):
    """A downloadable file has a URL checked against its repository; a file this project makes names the command;
    a committed demo file names its path in the repository and the command that trained it."""
    reg = W.registry()
    for name, ent in reg.items():
        assert ent.source != "none known", name
        if ent.url:
            assert ent.checked and ent.checked.startswith("20"), name
        else:
            assert ent.made_by and ent.made_by.startswith("python -m "), name
        if ent.file.startswith(W.BUNDLED_PREFIX):
            assert W.path_of(name).is_file() and str(W.path_of(name).relative_to(W.PROJECT_ROOT)) in ent.source
    assert "1PhRvk1Dlp3CCrPkrxRfNbNZ3fNgviDVZ" in reg["difiisr"].url  # the file the DifIISR README links
    assert reg["difiisr_demo"].source == (
        "committed as sr/weights/demo/difiisr_demo.safetensors, made by `python -m sr.train --config difiisr_demo`"
    )
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "none known" not in out
    assert "source:  https://drive.google.com/file/d/1PhRvk1Dlp3CCrPkrxRfNbNZ3fNgviDVZ" in out
