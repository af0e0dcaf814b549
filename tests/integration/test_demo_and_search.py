"""`filefleet demo` and `filefleet search` as a new user runs them: subprocesses, real output."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import run_filefleet


def _without_aws() -> dict[str, str]:
    """This environment with no AWS_* variable: the demo must need no account and no endpoint."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    workdir = tmp_path_factory.mktemp("demo")
    result = run_filefleet("demo", "--workdir", str(workdir), env=_without_aws(), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return workdir, result.stdout


def _search(workdir: Path, *args: str) -> str:
    env = {
        **_without_aws(),
        "INDEX_SINK": "local",
        "LOCAL_INDEX_PATH": str(workdir / "index.sqlite3"),
        "EMBEDDER": "local",
        "EMBEDDING_DIMENSION": "256",
    }
    result = run_filefleet("search", *args, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_demo_runs_the_pipeline_and_explains_what_happened(demo: tuple[Path, str]) -> None:
    _, out = demo
    assert "messages: 22 received, 20 deleted, 2 dead-lettered, 0 retried" in out
    assert "bad/truncated.jpg" in out and "CorruptImage" in out
    assert "bad/bomb.png" in out and "ImageTooLarge" in out
    assert "application/pdf                   metadata only" in out  # the encrypted PDF
    search_section = out.split('search "invoice"')[1]
    assert search_section.splitlines()[1].split()[0] == "docs/invoice.pdf"
    like_section = out.split("search --like")[1]
    top_two = {line.strip().split("  ")[0] for line in like_section.splitlines()[1:3]}
    assert top_two == {"photos/harbour 2mp.jpg", "photos/copy of harbour.jpg"}


def test_search_finds_words_in_texts_and_look_alike_images(demo: tuple[Path, str]) -> None:
    workdir, _ = demo
    assert _search(workdir, "tripod").split()[0] == "docs/inventory.csv"
    like = _search(workdir, "--like", str(workdir / "samples/photos/small+square.jpg"), "-k", "1")
    assert like.split("  ")[0] == "photos/small+square.jpg"
    assert _search(workdir, "no-such-word-anywhere").strip() == "no match"


def test_the_demo_indexes_a_folder_of_your_own(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    (folder / "sub dir").mkdir(parents=True)
    (folder / "sub dir" / "hello world.txt").write_text("hello from my own folder")
    result = run_filefleet(
        "demo",
        str(folder),
        "--workdir",
        str(tmp_path / "work"),
        env=_without_aws(),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "text/plain                        processed             1" in result.stdout
    assert _search(tmp_path / "work", "folder").startswith("sub dir/hello world.txt  ")
