import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _one_thread_for_the_session():
    """The same one thread for module- and session-scoped fixtures (a tiny compare, a trained run), which pytest
    sets up before any function-scoped fixture: without it they ran with torch's default, one thread per core,
    and under ``pytest -n 2`` the workers' threads spun against each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    """Tiny models: one intra-op thread is as fast, and avoids OpenMP spinning against other processes."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class LimitExceeded(Exception):
    """A command under ``bounded`` ran past its limits (it was not refused quickly)."""


@pytest.fixture
def bounded():
    """``with bounded(seconds, memory_gib, max_new_processes):`` the block must finish within ``seconds`` (SIGALRM raises
    LimitExceeded between Python bytecodes) and may grow the address space by at most ``memory_gib``
    (RLIMIT_AS: a larger allocation fails at once instead of filling a shared machine's memory) and may
    start at most ``max_new_processes`` processes (e.g. DataLoader workers; more raise at once).
    For commands fed absurd sizes: today's code must fail fast and safely, not hang, swap or fork away."""
    import contextlib
    import multiprocessing.process
    import resource
    import signal

    @contextlib.contextmanager
    def limit(seconds: float = 60, memory_gib: float = 4, max_new_processes: int = 2):
        def expire(signum, frame):
            raise LimitExceeded(f"still running after {seconds} s: not refused before training")

        with open("/proc/self/status") as f:
            vm_kib = next(int(line.split()[1]) for line in f if line.startswith("VmSize:"))
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = vm_kib * 1024 + int(memory_gib * 2 ** 30)
        if hard != resource.RLIM_INFINITY:
            cap = min(cap, hard)
        start, started = multiprocessing.process.BaseProcess.start, []

        def counted_start(process):
            if len(started) >= max_new_processes:
                raise LimitExceeded(f"started more than {max_new_processes} processes: not refused")
            started.append(process)
            start(process)

        old_handler = signal.signal(signal.SIGALRM, expire)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
        signal.setitimer(signal.ITIMER_REAL, seconds)
        multiprocessing.process.BaseProcess.start = counted_start
        try:
            yield
        finally:
            multiprocessing.process.BaseProcess.start = start
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old_handler)
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
            for process in started:  # workers of a loader whose start was cut short are ours to end
                if process.is_alive():
                    process.terminate()
                    process.join(5)

    return limit


@pytest.fixture(scope="module")
def collect_garbage_at_the_end():
    """No automatic garbage collection in a module of in-process CLI runs; one explicit collection at its end.

    A command that fails with an exception leaves reference cycles (its traceback's frames, models,
    loaders). Collected automatically in the middle of pytest's own ast.parse (formatting a failure,
    rewriting an import), their finalisers trip CPython 3.11's "AST constructor recursion depth
    mismatch" SystemError: an INTERNALERROR that hides the whole report. The garbage of a module of
    tiny runs is a few hundred MB at most."""
    import gc

    enabled = gc.isenabled()
    gc.disable()
    yield
    if enabled:
        gc.enable()
    gc.collect()


@pytest.fixture
def interrupt_at(monkeypatch):
    """``interrupt_at(n)``: training in this process is stopped by a SIGINT once step n has finished (the trainer
    saves it and stops, ``xformer train`` exits 130); ``interrupt_at(None)`` trains on again."""
    import signal

    from xformer.train.trainer import Trainer

    step = Trainer._step

    def set_stop(n):
        def stopped_after_n(self, batches):
            out = step(self, batches)
            if self.step == n - 1:  # the step being taken is the n-th
                signal.raise_signal(signal.SIGINT)
            return out

        monkeypatch.setattr(Trainer, "_step", step if n is None else stopped_after_n)

    return set_stop


@pytest.fixture
def cli_error(capsys):
    """``cli_error(argv, *words)``: the CLI run with ``argv`` must exit with status 2 after exactly one line,
    ``xformer: error: ...`` (no traceback), holding each of ``words``; returns that line. What earlier steps of
    the test printed is dropped first (a save_pretrained's progress bar)."""
    from xformer.cli import main

    def run(argv, *words: str) -> str:
        capsys.readouterr()
        assert main([str(a) for a in argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("xformer: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
        for word in words:
            assert word in err, (word, err)
        return err.strip()

    return run
