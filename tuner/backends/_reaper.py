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
In: ``(ident, path, argv, env, cwd, trial_dir, log_path, after)``, where ``env`` is what
the trial's environment sets over this process's (the controller's, when it started this
one) and ``after`` is None (start it now) or the idents of running trials: it starts as
soon as one of those has ended and its status is written (the next trial of a full set
of slots, see ``LocalBackend.launch_next``), or at ``("now", ident)``; ``("cancel",
ident)`` withdraws a request that waits so. Out: ``("pid", ident, pid, start time)`` or
``("error", ident, message)`` for each request that starts, ``("cancelled", ident)`` for
one withdrawn, and ``("exit", ident, status)`` whenever a trial has ended and its status
is in its ``pid`` file (by the request's ``ident``, not its PID: a PID may be reused as
soon as it has been reaped). The controller does not wait for the answer to a request:
it goes on with its loop, and takes the answers with the exits. Requests still waiting
when the input closes (the controller is gone) never start: a restarted controller finds
them Created, without a ``pid`` file, and starts them itself.
"""

# Only modules cheap to import (C modules): this process's start delays an experiment's
# first trial. ``signal`` (for its enum: ~7 ms under -I -S) and ``contextlib`` (~4.6 ms,
# partly the same modules) were most of that start.
import errno
import marshal
import os
import select
import struct

# signal's C module (no stubs in typeshed): the same functions, numbers for names.
from _signal import (  # type: ignore[import-not-found]
    SIGCHLD,
    SIGPIPE,
    SIGXFSZ,
    set_wakeup_fd,
)
from _signal import signal as handle_signal

_HEADER = struct.Struct(">I")
_PID_NAME = "pid"
# This process's environment, read once (os.environ decodes every name and value at each
# read): the trials' base, which nothing here changes.
_ENVIRON = dict(os.environ)
_LAUNCH_ERROR_NAME = "launch_error"
# A running trial's ``pid`` file stays open here (its exit status is appended through it)
# while fewer trials than this run; more get it reopened by name at their exit.
_HELD_FDS = 256


def _start_time(pid):
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return "-"
    try:
        data = os.read(fd, 4096)
    except OSError:
        return "-"
    finally:
        os.close(fd)
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
    try:
        os.mkdir(trial_dir)  # a new folder (the common case) holds no stale launch_error
    except FileExistsError:
        try:
            os.unlink(os.path.join(trial_dir, _LAUNCH_ERROR_NAME))
        except FileNotFoundError:
            pass
    except FileNotFoundError:
        os.makedirs(trial_dir, exist_ok=True)
    # Before the command starts: a restarted controller must find the file.
    # Kept open (O_APPEND) for the start line and the exit status: one open of it per trial.
    pid_fd = os.open(pid_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    try:
        pid, start = _spawn_into(path, argv, env, cwd, log_path, pid_fd, me)
    except BaseException:
        os.close(pid_fd)
        raise
    return pid, start, pid_fd


def _spawn_into(path, argv, env, cwd, log_path, pid_fd, me):
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
    os.write(pid_fd, f"{pid} {start}\n{me}".encode())
    return pid, start


class _Reaper:
    def __init__(self):
        self.children = {}  # pid -> (ident, its pid file: an fd open for appending, or its path)
        self.waiting = {}  # ident -> (request, idents of the trials whose end starts it)
        self.out_open = True
        self.me = f"reaper {os.getpid()} {_start_time(os.getpid())}\n"

    def send(self, message):
        if not self.out_open:
            return
        data = marshal.dumps(message)
        try:
            os.write(1, _HEADER.pack(len(data)) + data)
        except OSError:  # the controller is gone: go on reaping
            self.out_open = False

    def handle(self, request):
        if isinstance(request[0], str):  # ("now" | "cancel", ident) for a waiting request
            kind, ident = request
            entry = self.waiting.pop(ident, None)
            if entry is None:  # started already (its answer is sent): nothing to do
                return
            if kind == "now":
                self.start(entry[0])
            else:
                self.send(("cancelled", ident))
            return
        # (A controller of an earlier version, upgraded under it, sends no ``after``.)
        if len(request) > 7 and request[7] is not None:
            after = frozenset(request[7])
            if after <= {ident for ident, _ in self.children.values()}:
                self.waiting[request[0]] = (request, after)
                return
            # One of them has ended already (before this request came): its slot is free.
        self.start(request)

    def start(self, request):
        ident, path, argv, overrides, cwd, trial_dir, log_path = request[:7]
        pid_path = os.path.join(trial_dir, _PID_NAME)
        try:
            pid, start, pid_fd = _spawn(
                path, argv, overrides, cwd, log_path, trial_dir, pid_path, self.me
            )
        except OSError as exc:
            try:
                os.unlink(pid_path)  # it never started
            except OSError:
                pass
            self.send(("error", ident, f"cannot start: {exc}"))
            return
        if len(self.children) >= _HELD_FDS:  # many trials at once: stay far from the fd limit
            os.close(pid_fd)
            pid_fd = pid_path
        self.children[pid] = (ident, pid_fd)
        self.send(("pid", ident, pid, start))

    def reap(self):
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                for _, pid_fd in self.children.values():
                    if not isinstance(pid_fd, str):
                        os.close(pid_fd)
                self.children.clear()
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:
                continue
            ident, pid_fd = child
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code
            try:
                if isinstance(pid_fd, str):
                    _append(pid_fd, f"exit {code}\n")
                else:
                    os.write(pid_fd, f"exit {code}\n".encode())
            except OSError:  # a removed trial folder: nobody reads it
                pass
            finally:
                if not isinstance(pid_fd, str):
                    os.close(pid_fd)
            self.send(("exit", ident, code))
            # Its slot is free: a request waiting for it starts now.
            for waiting, (request, after) in self.waiting.items():
                if ident in after:
                    del self.waiting[waiting]
                    self.start(request)
                    break

    def run(self):
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        set_wakeup_fd(wake_w)
        handle_signal(SIGCHLD, lambda *_: None)
        inbox = b""
        reading = True
        while reading or self.children:
            watched = [wake_r, 0] if reading else [wake_r]
            try:
                ready, _, _ = select.select(watched, [], [])
            except InterruptedError:
                ready = []
            if wake_r in ready:
                try:
                    os.read(wake_r, 4096)
                except BlockingIOError:
                    pass
            if 0 in ready:
                chunk = os.read(0, 65536)
                if not chunk:
                    reading = False
                    self.waiting.clear()  # no controller to start them for
                inbox += chunk
                while len(inbox) >= _HEADER.size:
                    (size,) = _HEADER.unpack_from(inbox)
                    if len(inbox) < _HEADER.size + size:
                        break
                    request = marshal.loads(inbox[_HEADER.size : _HEADER.size + size])
                    inbox = inbox[_HEADER.size + size :]
                    self.handle(request)
            self.reap()


if __name__ == "__main__":
    _Reaper().run()
    # Nothing is buffered (every write is an os.write): skip the interpreter's clean-up,
    # which the controller's close would otherwise wait for.
    os._exit(0)
