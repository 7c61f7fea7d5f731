using Supervisor.Configuration;
using Supervisor.Control;
using Supervisor.Native;
using Supervisor.WorkerHost;

namespace Supervisor.Arbitration;

/// <summary>
/// Overlapped recycling (--max-requests, --max-memory): the replacement boots and is ready before the
/// old worker leaves rotation; the old one then drains, gets SIGTERM, and SIGKILL after the graceful timeout.
/// </summary>
internal sealed partial class Arbiter
{
    // A worker is recycled for memory only after this many samples in a row above the limit (one a second),
    // so a brief peak (a large response, a GC about to run) does not cost a restart.
    private const int MemorySamplesBeforeRecycle = 3;

    private static readonly TimeSpan DrainPollInterval = TimeSpan.FromMilliseconds(20);

    private void OnRequestLimitReached(string workerKey, long limit)
    {
        if (Find(workerKey) is { } worker)
        {
            Recycle(worker, "max_requests", $"--max-requests reached: {limit} with jitter");
        }
    }

    private void SampleMemory()
    {
        var limit = Options.MaxMemoryBytes;
        if (limit == 0)
        {
            return;
        }
        foreach (var worker in _workers.Where(w => w.InRotation && w.RecycleReason is null).ToList())
        {
            var resident = worker.Process.ResidentBytes() ?? 0;
            worker.SamplesOverMemoryLimit = resident > limit ? worker.SamplesOverMemoryLimit + 1 : 0;
            if (worker.SamplesOverMemoryLimit >= MemorySamplesBeforeRecycle)
            {
                Recycle(worker, "max_memory", $"resident memory {resident / 1_048_576} MB above --max-memory {limit / 1_048_576} MB");
            }
        }
    }

    /// <param name="cause">The reason's kind, for the recycles metric: max_requests, max_memory.</param>
    private void Recycle(Worker worker, string cause, string reason)
    {
        // A reload replaces every worker anyway; a worker already being recycled has its replacement coming.
        if (!worker.InRotation || worker.RecycleReason is not null || _reload is not null)
        {
            return;
        }
        worker.RecycleReason = reason;
        SupervisorMetrics.WorkerReplacements.Add(1, new KeyValuePair<string, object?>("reason", cause));
        _log.Information("Recycling worker {Slot} (pid: {WorkerPid}, generation {Generation}): {Reason}", worker.Slot, worker.Pid, worker.Generation, reason);
        StartReplacement(worker);
    }

    private void RetryDueRecycles()
    {
        if (_reload is not null)
        {
            return;
        }
        foreach (var worker in _workers.Where(w => w.InRotation && w.RecycleRetryAt <= Now && !w.ReplacementBooting).ToList())
        {
            worker.RecycleRetryAt = null;
            StartReplacement(worker);
        }
    }

    private void StartReplacement(Worker old)
    {
        if (SlotOf(old) is not { } slot)
        {
            return;
        }
        old.ReplacementBooting = StartWorker(slot, _servingGeneration, Options, replaces: old) is not null;
        if (!old.ReplacementBooting)
        {
            old.RecycleRetryAt = slot.RespawnAt;
            slot.RespawnAt = null;
        }
    }

    /// <summary>Takes a worker out of rotation for good; the next <see cref="CommitRotation"/> closes it and drains it.</summary>
    private void Retire(Worker worker, string reason)
    {
        if (worker.StopRequested)
        {
            return;
        }
        worker.RequestStop(reason);
        worker.InRotation = false;
        _retiring.Add(worker);
    }

    /// <summary>Waits for the requests already given to a retired worker, then stops it: TERM, wait, KILL.</summary>
    private async Task DrainAndStopAsync(Worker worker)
    {
        var process = worker.Process;
        // Its own generation's options: this runs beside the arbiter's loop, which may swap the current ones.
        var timeout = worker.Options.GracefulTimeout;
        if (worker.Options.Balancer.WorkersServeClients())
        {
            await DrainAndStopKernelWorkerAsync(worker, timeout);
            return;
        }
        var drainStarted = _time.GetTimestamp();
        while (worker.Load.InFlight > 0 && !process.HasExited && _time.GetElapsedTime(drainStarted) < timeout)
        {
            await Task.Delay(DrainPollInterval, _time);
        }
        if (worker.Load.InFlight is var left and > 0)
        {
            _log.Warning("Worker {Slot} (pid: {WorkerPid}) still has {Requests} requests in flight after {Timeout} s; stopping it anyway",
                worker.Slot, worker.Pid, left, timeout.TotalSeconds);
        }
        process.Signal(Libc.SIGTERM);
        try
        {
            await process.Exited.WaitAsync(timeout, _time);
        }
        catch (TimeoutException)
        {
            _log.Warning("Worker (pid:{WorkerPid}) still running {Timeout} s after SIGTERM; sending SIGKILL", worker.Pid, timeout.TotalSeconds);
            process.Signal(Libc.SIGKILL);
        }
    }

    /// <summary>
    /// Kernel and handoff modes: only the worker knows its connections. Told to drain, it stops accepting, lets its
    /// clients leave over the keep-alive time, and stops gracefully; SIGKILL if it has not exited by then
    /// and the graceful timeout after.
    /// </summary>
    private async Task DrainAndStopKernelWorkerAsync(Worker worker, TimeSpan gracefulTimeout)
    {
        _hooks.SendToWorker(worker.Key, WorkerProtocol.Drain);
        var allowed = worker.Options.KeepAlive + TimeSpan.FromSeconds(1) + gracefulTimeout;
        try
        {
            await worker.Process.Exited.WaitAsync(allowed, _time);
        }
        catch (TimeoutException)
        {
            _log.Warning("Worker (pid:{WorkerPid}) still running {Timeout} s after it was told to drain; sending SIGKILL", worker.Pid, allowed.TotalSeconds);
            worker.Process.Signal(Libc.SIGKILL);
        }
    }
}
