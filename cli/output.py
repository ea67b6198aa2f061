"""Writing a command's finished output to standard output or to an `-o FILE`.

A file given with `-o` appears whole or not at all: the data goes to a temporary file
beside it, which then replaces the target in one step (`os.replace`). A command that
fails, or is killed, while writing leaves no file, or the earlier file unchanged, never
an empty or truncated one. Callers produce all the data before calling, so a failure
while producing it writes nothing either.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

import click


def write_file(path: str, data: bytes) -> None:
    """Write `data` to the file `path` atomically, as the module docstring says.

    A new file gets the permissions a plain write would give it (0666 less the umask);
    an existing one keeps its own, and is refused when it is not writable, as a plain
    write would refuse it. A symbolic link is followed, so its target is replaced and
    the link kept. A path that is not a regular file (a pipe, `/dev/stdout`) has nothing
    to leave half-written and is written directly. Raises OSError."""
    try:
        mode: int | None = os.stat(path).st_mode  # through links: /dev/stdout is a pipe
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        with open(path, "wb") as handle:
            handle.write(data)
        return
    target = os.path.realpath(path)
    if mode is not None and not os.access(target, os.W_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
    directory, name = os.path.split(target)
    # os.urandom(4).hex() is secrets.token_hex(4), without importing secrets (hmac,
    # hashlib) at every command's start
    temporary = os.path.join(directory, f".{name}.{os.urandom(4).hex()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        if mode is not None:
            os.chmod(temporary, stat.S_IMODE(mode))
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_output(data: bytes, output: str | None) -> None:
    """Write `data` to the file `output` (atomically), or to standard output when it is
    None. Raises OSError for the file."""
    if output is None:
        click.echo(data, nl=False)
    else:
        write_file(output, data)
