"""Copying a data dir fast; standard library only.

Used by the template cache in the test process and by the watchdog, which
prepares the next instance's copy in the background (it runs without
site-packages, so this module imports nothing of ours).
"""

from __future__ import annotations

import os
import stat


def copy_tree(src: str, dst: str, uid: int = -1, gid: int = -1) -> None:
    """Copy the tree ``src`` to the new dir ``dst``, owned by ``uid``:``gid``
    (-1: unchanged).

    Contents and modes only (times and extended attributes do not matter to
    a daemon), with ``sendfile`` and an ``fchown`` per file, which is what
    makes it fast (see doc/source/design.rst, 'Memory-backed temp dirs').
    """
    chown = uid >= 0 or gid >= 0
    os.mkdir(dst, stat.S_IMODE(os.stat(src).st_mode))
    if chown:
        os.chown(dst, uid, gid)
    with os.scandir(src) as entries:
        for entry in entries:
            target = os.path.join(dst, entry.name)
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                copy_tree(entry.path, target, uid, gid)
            elif stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(entry.path), target)
                if chown:
                    os.lchown(target, uid, gid)
            elif stat.S_ISREG(st.st_mode):
                fd_in = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    fd_out = os.open(
                        target,
                        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                        stat.S_IMODE(st.st_mode),
                    )
                    try:
                        if chown:
                            os.fchown(fd_out, uid, gid)
                        offset = 0
                        while offset < st.st_size:
                            sent = os.sendfile(fd_out, fd_in, offset, st.st_size - offset)
                            if sent == 0:
                                break
                            offset += sent
                    finally:
                        os.close(fd_out)
                finally:
                    os.close(fd_in)
            # sockets, fifos, devices: a live daemon's leftovers, not data
