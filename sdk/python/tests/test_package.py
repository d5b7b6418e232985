"""The core imports only httpx: the framework guards load only when imported."""

import subprocess
import sys


def test_core_does_not_import_the_frameworks() -> None:
    code = (
        "import sys, charter; "
        "loaded = [m for m in ('langchain', 'langchain_core', 'langgraph', 'agents', 'openai') if m in sys.modules]; "
        "print(loaded); sys.exit(1 if loaded else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_typed_marker_ships() -> None:
    from importlib.resources import files

    assert files("charter").joinpath("py.typed").is_file()
