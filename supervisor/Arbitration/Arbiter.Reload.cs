using Supervisor.Cli;
using Supervisor.Configuration;
using Supervisor.Control;
using Supervisor.Native;

namespace Supervisor.Arbitration;

/// <summary>
/// SIGHUP: the configuration read again, and a new generation of workers from the app on disk. All of it
/// must be ready before any of it serves; then, in one update, it takes over with its configuration and
/// the old generation drains. If the configuration is bad, nothing starts; if any new worker fails to
/// boot, the reload is abandoned: the old generation and the old configuration never stop serving.
/// </summary>
/// <remarks>
/// Swapping the whole generation at once (rather than slot by slot) means two versions of the app never
/// serve side by side, and an abandoned reload has nothing to roll back. The cost is up to 2N processes
/// while the new generation boots.
/// </remarks>
internal sealed partial class Arbiter
{
    private int _servingGeneration = 1;
    private int _latestGeneration = 1;
    private ReloadState? _reload;
    private bool _reloadPending;

    // `supervisor reload --wait` callers answered by the queued reload, once it starts and ends.
    private readonly List<TaskCompletionSource<ReloadReply>> _reloadWaiters = [];

    /// <summary>SIGHUP or <c>supervisor reload</c>: logs reopened (as Gunicorn does on HUP), a reload started or queued.</summary>
    private void Reload(TaskCompletionSource<ReloadReply>? waiter)
    {
        _hooks.ReopenLogs();
        if (waiter is not null)
        {
            _reloadWaiters.Add(waiter);
        }
        RequestReload();
        ReportReloadState();
    }

    private void RequestReload()
    {
        var alreadyQueued = _reloadPending;
        _reloadPending = true; // A burst of SIGHUPs is one running reload and at most one more.
        if (!StartQueuedReload() && !alreadyQueued)
        {
            _log.Information("Reload queued: {Reason}", WhyReloadMustWait());
        }
    }

    /// <summary>Starts the queued reload, if there is one and nothing stands in its way.</summary>
    private bool StartQueuedReload()
    {
        if (!_reloadPending || WhyReloadMustWait() is not null)
        {
            return false;
        }
        _reloadPending = false;
        StartReload();
        return true;
    }

    // A reload boots N workers beside those running: it waits until that stays within 2N, which is
    // when the workers retired by the last reload or recycle have drained and exited.
    private string? WhyReloadMustWait() =>
        !_booted ? "the first workers are still booting"
        : _reload is not null ? $"generation {_reload.Generation} is still booting"
        : _workers.Count > _slots.Count ? $"{_workers.Count - _slots.Count} retiring or replacement workers must exit first, so that no more than {2 * _slots.Count} run at once"
        : null;

    private void StartReload()
    {
        // Those who waited for the queued reload wait for this one: it reads what is on disk from now.
        List<TaskCompletionSource<ReloadReply>> waiters = [.. _reloadWaiters];
        _reloadWaiters.Clear();
        LoadedConfiguration next;
        try
        {
            next = _hooks.ReloadConfiguration(_configuration);
        }
        catch (UsageException exception)
        {
            _log.Error("Reload failed: {Reason}. The running configuration and workers stay", exception.Message);
            CountReload("refused");
            AnswerReloadWaiters(waiters, ReloadReply.Refused, exception.Message);
            ReportReloadState();
            return;
        }
        foreach (var warning in next.Warnings)
        {
            _log.Warning("{Warning}", warning);
        }
        var generation = ++_latestGeneration;
        // TTIN/TTOU changes survive a reload unless the configuration itself changes the number.
        var workers = next.Options.Workers != Options.Workers ? next.Options.Workers : _slots.Count;
        var slots = Enumerable.Range(0, workers).Select(index => index < _slots.Count ? _slots[index] : new WorkerSlot(index)).ToList();
        _log.Information("Reloading: booting generation {Generation} ({Workers} workers) beside generation {Serving}", generation, workers, _servingGeneration);
        var candidates = new List<Worker>();
        _reload = new ReloadState(generation, candidates, slots, next, waiters);
        foreach (var slot in slots)
        {
            if (StartWorker(slot, generation, next.Options) is not { } candidate)
            {
                AbortReload(null, "could not be started");
                return;
            }
            candidates.Add(candidate);
        }
    }

    private void CommitReloadWhenAllReady()
    {
        var reload = _reload!;
        if (reload.Candidates.Any(candidate => candidate.ReadyAt is null))
        {
            return;
        }
        _servingGeneration = reload.Generation;
        _configuration = reload.Configuration;
        _slots.Clear();
        _slots.AddRange(reload.Slots);
        _hooks.ApplyConfiguration(reload.Configuration);
        foreach (var candidate in reload.Candidates)
        {
            candidate.InRotation = true;
        }
        foreach (var stale in _workers.Where(w => w.Generation < _servingGeneration && !w.StopRequested).ToList())
        {
            Retire(stale, $"replaced by generation {_servingGeneration}");
        }
        CommitRotation();
        _reload = null;
        CountReload("completed");
        var pids = string.Join(", ", reload.Candidates.Select(c => c.Pid));
        _log.Information("Reload complete: generation {Generation} serving (pids {Pids}); {Pending}",
            _servingGeneration, pids, _reloadPending ? "another reload queued" : "none pending");
        AnswerReloadWaiters(reload.Waiters, ReloadReply.Completed, $"generation {_servingGeneration} serving (pids {pids})");
        FinishReload();
    }

    private void AbortReload(Worker? failed, string what)
    {
        var reload = _reload!;
        var description = failed is null ? what : DescribeBootFailure(failed, what);
        CountReload("abandoned");
        _log.Error("Reload failed: generation {Generation} abandoned, generation {Serving} keeps serving. {Description}", reload.Generation, _servingGeneration, description);
        AnswerReloadWaiters(reload.Waiters, ReloadReply.Abandoned, $"generation {reload.Generation} abandoned, generation {_servingGeneration} keeps serving. {description}");
        foreach (var candidate in reload.Candidates.Where(c => !c.StopRequested))
        {
            candidate.RequestStop("its reload was abandoned");
            candidate.InRotation = false;
            candidate.Process.Signal(Libc.SIGKILL);
        }
        _reload = null;
        FinishReload();
    }

    private void AnswerReloadWaiters(List<TaskCompletionSource<ReloadReply>> waiters, string result, string message)
    {
        foreach (var waiter in waiters)
        {
            waiter.TrySetResult(new ReloadReply(result, _servingGeneration, message));
        }
        waiters.Clear();
    }

    private static void CountReload(string result) =>
        SupervisorMetrics.Reloads.Add(1, new KeyValuePair<string, object?>("result", result));

    private void FinishReload()
    {
        ApplyDeferredScaling();
        StartQueuedReload();
        ReportReloadState();
    }

    // systemd's view: reloading from a HUP until no reload runs or waits, whatever their outcome. Before
    // the first generation is ready, systemd is still waiting for READY=1 and hears nothing of reloads.
    private void ReportReloadState()
    {
        if (!_booted)
        {
            return;
        }
        if (_reload is null && !_reloadPending)
        {
            _serviceManager.Ready(PoolStatus());
        }
        else
        {
            _serviceManager.Reloading(PoolStatus());
        }
    }

    /// <summary>A reload under way: the generation it boots, in which slots, with which configuration, and who waits for its result.</summary>
    private sealed record ReloadState(int Generation, List<Worker> Candidates, List<WorkerSlot> Slots, LoadedConfiguration Configuration, List<TaskCompletionSource<ReloadReply>> Waiters);
}
