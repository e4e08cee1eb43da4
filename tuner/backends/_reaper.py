"""The local backend's trial starter: one small process per backend, the trials' parent.

Run as ``python -I -S _reaper.py`` by :class:`tuner.backends.local.LocalBackend` (the
standard library only: it starts in a few milliseconds). It starts each trial's command
(``posix_spawn``: no copy of a big interpreter, no shell) in a new session, waits for
them, and appends each one's ``exit <status>`` to its trial's ``pid`` file — what a
``/bin/sh`` wrapper around every trial did before, one exec per trial fewer.

It lives in a session of its own and outlives the controller: when the controller is
killed (``kill -9``), this process goes on reaping the trials it started and recording
their exit statuses, then exits once its input is closed and its last trial has ended. A
restarted controller adopts the trials from their ``pid`` files as before.

The trial's folder is created here, and its ``pid`` file before the command starts (so a
restarted controller never launches a trial twice); once it has started, ``<pid> <start
time>`` (the command, which leads its own session and process group; its start time from
``/proc``, which tells it from a later process with the same PID) and ``reaper <pid>
<start time>`` (this process) are appended, and ``exit <status>`` (128 + N for a command
killed by signal N, as a shell reports it) when this process has reaped it. A stale
``launch_error`` of an earlier attempt is removed first.

Frames both ways: a 4-byte big-endian length, then :mod:`marshal` data.
In: ``(ident, path, argv, env, cwd, trial_dir, log_path)``, where ``env`` is what the
trial's environment sets over this process's (the controller's, when it started this
one); out: ``("pid", ident, pid, start time)`` or ``("error", ident, message)`` for each
request, and ``("exit", ident, status)`` whenever a trial has ended and its status is in
its ``pid`` file (by the request's ``ident``, not its PID: a PID may be reused as soon as
it has been reaped). The controller does not wait for the answer to a request: it goes
on with its loop, and takes the answers with the exits.
"""

# Only modules cheap to import (C modules): this process's start delays an experiment's
# first trial. ``threading``, ``contextlib`` and ``signal`` (its enum) cost ~9 ms of it.
import _thread
import errno
import marshal
import os
import struct
import sys

# signal's C module (no stubs in typeshed): the same numbers.
from _signal import SIGPIPE, SIGXFSZ  # type: ignore[import-not-found]

_HEADER = struct.Struct(">I")
_PID_NAME = "pid"
# This process's environment, read once (os.environ decodes every name and value at each
# read): the trials' base, which nothing here changes.
_ENVIRON = dict(os.environ)
_LAUNCH_ERROR_NAME = "launch_error"


def _start_time(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return "-"
    fields = data[data.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else "-"


def _append(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _spawn(path, argv, overrides, cwd, log_path, trial_dir, pid_path, me):
    env = {**_ENVIRON, **overrides}
    os.makedirs(trial_dir, exist_ok=True)
    try:
        os.unlink(os.path.join(trial_dir, _LAUNCH_ERROR_NAME))
    except FileNotFoundError:
        pass
    # Before the command starts: a restarted controller must find the file.
    os.close(os.open(pid_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
    os.chdir(cwd)  # posix_spawn has no chdir of its own; the child inherits this one
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, log, 1),
        (os.POSIX_SPAWN_DUP2, log, 2),
    ]
    options = {
        "file_actions": actions,
        "setsid": True,
        "setsigmask": (),
        # As subprocess's restore_signals: Python ignores these, a command must not.
        "setsigdef": (SIGPIPE, SIGXFSZ),
    }
    try:
        try:
            pid = os.posix_spawn(path, argv, env, **options)
        except OSError as exc:
            if exc.errno != errno.ENOEXEC:
                raise
            # No #! line: a shell script, run as a shell runs one.
            pid = os.posix_spawn("/bin/sh", ["sh", path, *argv[1:]], env, **options)
    finally:
        os.close(log)
    # Our unreaped child: its PID cannot be another process's yet.
    start = _start_time(pid)
    _append(pid_path, f"{pid} {start}\n{me}")
    return pid, start


class _Reaper:
    """Two threads. The main one reads the requests and starts the trials; the other
    (``reap``) waits for their exits in a blocking ``waitid``.

    Why a thread blocked in a wait call, not a ``SIGCHLD`` handler waking a ``select``
    loop: the kernel wakes a parent blocked in a wait call *synchronously*, onto the CPU
    its exiting child is leaving. A signal's wake-up puts the woken process on the CPU it
    ran on last; on a machine whose every CPU runs a trial it then waits there for a time
    slice (up to a scheduler tick, 4 ms at 250 Hz) while the CPU the ended trial freed
    stays idle (seen with ``perf sched``; it was most of the idle time of 100 one-line
    ``python -c`` trials on two CPUs).

    ``lock`` orders a start's records (its ``pid`` file lines, its answer) before its
    exit's: the exit is taken (``WNOWAIT``: not reaped yet, so ``/proc`` still has the
    child) and only handled once the start that made it is complete. ``wake`` (held while
    there is nothing new) lets the waiting thread sleep while no trial runs; ``done`` is
    released when it has ended.
    """

    def __init__(self):
        self.children = {}  # pid -> (ident, its pid file)
        self.out_open = True
        self.reading = True  # the controller's input is open
        self.me = f"reaper {os.getpid()} {_start_time(os.getpid())}\n"
        self.lock = _thread.allocate_lock()
        self.wake = _thread.allocate_lock()  # released (by the main thread only): news
        self.wake.acquire()
        self.done = _thread.allocate_lock()  # released when the waiting thread ends
        self.done.acquire()

    def send(self, message):
        if not self.out_open:
            return
        data = marshal.dumps(message)
        try:
            os.write(1, _HEADER.pack(len(data)) + data)
        except OSError:  # the controller is gone: go on reaping
            self.out_open = False

    def handle(self, request):
        ident, path, argv, overrides, cwd, trial_dir, log_path = request
        pid_path = os.path.join(trial_dir, _PID_NAME)
        with self.lock:
            try:
                pid, start = _spawn(
                    path, argv, overrides, cwd, log_path, trial_dir, pid_path, self.me
                )
            except OSError as exc:
                try:
                    os.unlink(pid_path)  # it never started
                except OSError:
                    pass
                self.send(("error", ident, f"cannot start: {exc}"))
                return
            self.children[pid] = (ident, pid_path)
            self.send(("pid", ident, pid, start))
        self.tell()

    def tell(self):
        """Wake the waiting thread if it sleeps for want of news (the main thread only)."""
        if self.wake.locked():
            self.wake.release()

    def reap(self):
        """The waiting thread: record each trial's exit, until the input is closed and no
        trial is left."""
        try:
            self.reap_all()
        except BaseException:
            _die()
        self.done.release()

    def reap_all(self):
        while True:
            while True:
                with self.lock:
                    if self.children:
                        break
                    if not self.reading:
                        return
                self.wake.acquire()  # until the main thread tells of a start or the end
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
            except ChildProcessError:  # not ours after all (cannot happen): forget them
                with self.lock:
                    self.children.clear()
                continue
            if info is None:
                continue
            with self.lock:
                try:
                    pid, status = os.waitpid(info.si_pid, 0)
                except ChildProcessError:
                    # A child whose exec failed, reaped by posix_spawn itself (which then
                    # raised, or ran the file through /bin/sh) while we waited for the lock.
                    continue
                child = self.children.pop(pid, None)
                if child is None:
                    continue
                ident, pid_path = child
                code = os.waitstatus_to_exitcode(status)
                code = 128 - code if code < 0 else code
                try:
                    _append(pid_path, f"exit {code}\n")
                except OSError:  # a removed trial folder: nobody reads it
                    pass
                self.send(("exit", ident, code))

    def run(self):
        _thread.start_new_thread(self.reap, ())
        inbox = b""
        try:
            while chunk := os.read(0, 65536):
                inbox += chunk
                while len(inbox) >= _HEADER.size:
                    (size,) = _HEADER.unpack_from(inbox)
                    if len(inbox) < _HEADER.size + size:
                        break
                    request = marshal.loads(inbox[_HEADER.size : _HEADER.size + size])
                    inbox = inbox[_HEADER.size + size :]
                    self.handle(request)
        except BaseException:
            _die()
        with self.lock:
            self.reading = False
        self.tell()
        self.done.acquire()  # the trials started here are still reaped and recorded


def _die():
    """A thread of this process failed: exit now, as a reaper killed would. The controller
    sees it gone; its trials' exit statuses are lost (never made up), and no new trial
    starts where the other thread can no longer wait for it or hear of it."""
    sys.excepthook(*sys.exc_info())
    os._exit(70)


if __name__ == "__main__":
    _Reaper().run()
    # Nothing is buffered (every write is an os.write): skip the interpreter's clean-up,
    # which the controller's close would otherwise wait for.
    os._exit(0)
