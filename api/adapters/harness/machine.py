"""What an agent CLI needs from the machine it runs on: its executable, a home, that machine's env.

The same functions serve both places a CLI turn can run: the server (for `local` compute) and
a `cerver relay` process (for `relay` compute, on the relay's machine). So a CLI is found where
the command runs, its home is a folder of that machine, and the environment's machine part —
HOME and the XDG folders in that home, a PATH that reaches the CLI and Node, that machine's
proxy settings — is that machine's. The provider part (keys, base URLs) is the server's and is
added by the harness; none of it is ever written to a file here. Only the standard library: the
relay imports this module.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")  # and their lower-case spellings
_PART = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")


def find_executable(name: str, explicit: str | None = None) -> tuple[str | None, str]:
    """`explicit` if executable, else `name` on this machine's PATH: (path, "") or (None, why not)."""
    if explicit:
        if os.path.isfile(explicit) and os.access(explicit, os.X_OK):
            return os.path.abspath(explicit), ""
        return None, f"{explicit} is not an executable file"
    found = shutil.which(name)
    return (found, "") if found is not None else (None, f"`{name}` is not on PATH")


def home_folder(root: Path, tenant_id: str, session_id: str, harness: str) -> Path:
    """A session's home for one CLI: `<root>/<tenant>/<session>/<harness>`; ValueError for unfit ids."""
    parts = (tenant_id, session_id, harness)
    if not all(isinstance(p, str) and _PART.match(p) and p not in (".", "..") for p in parts):
        raise ValueError(f"cannot keep a CLI home for {'/'.join(map(str, parts))!r}")
    return root.joinpath(*parts)


def prepare_home(home: Path, files: Mapping[str, str], session_glob: str | None = None) -> bool:
    """Create the home (and its tmp), write `files` (relative paths) into it; whether `session_glob` matches.

    The glob is how a harness asks whether the CLI session it would resume still has its files here.
    """
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    for relative, text in files.items():
        target = _under(home, relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    if not session_glob:
        return False
    _under(home, session_glob)
    return any(home.glob(session_glob))


def machine_env(binary: str, home: str) -> dict[str, str]:
    """HOME, XDG folders and TMPDIR in the CLI's home; the CLI's and Node's folders first on PATH; proxies."""
    path = [os.path.dirname(binary)]
    node = shutil.which("node")  # the npm CLIs are Node scripts (`#!/usr/bin/env node`)
    if node:
        path.append(os.path.dirname(node))
    path += (os.environ.get("PATH") or "/usr/local/bin:/usr/bin:/bin").split(os.pathsep)
    env = {
        "HOME": home,
        "XDG_CONFIG_HOME": f"{home}/.config",
        "XDG_DATA_HOME": f"{home}/.local/share",
        "XDG_CACHE_HOME": f"{home}/.cache",
        "XDG_STATE_HOME": f"{home}/.local/state",
        "TMPDIR": f"{home}/tmp",
        "PATH": os.pathsep.join(dict.fromkeys(p for p in path if p)),
        "TERM": "dumb",
        "NO_COLOR": "1",
    }
    for name in PROXIES:
        for spelling in (name, name.lower()):
            if os.environ.get(spelling):
                env[spelling] = os.environ[spelling]
    return env


def _under(home: Path, relative: str) -> Path:
    """`home/relative`, refusing absolute paths and `..` (a harness names files inside its home only)."""
    parts = Path(relative).parts
    if not relative or Path(relative).is_absolute() or ".." in parts or "\x00" in relative:
        raise ValueError(f"{relative!r} is not a path inside the CLI home")
    return home / relative
