using System.Net.Sockets;
using Supervisor.Configuration;
using Supervisor.Control;
using Supervisor.Native;
using Supervisor.WorkerHost;
using Supervisor.Workers;

namespace Supervisor.Arbitration;

/// <summary>Starting workers, readiness, heartbeats, exits and respawns.</summary>
internal sealed partial class Arbiter
{
    /// <summary>Starts a worker for every slot that has none and whose (back-off) time has come.</summary>
    private void StartMissingWorkers()
    {
        var now = Now;
        foreach (var slot in _slots)
        {
            if (_workers.Any(w => w.Slot == slot.Index && !w.StopRequested))
            {
                continue;
            }
            slot.RespawnAt ??= now;
            if (slot.RespawnAt <= now)
            {
                slot.RespawnAt = null;
                StartWorker(slot, _servingGeneration, Options);
            }
        }
    }

    private Worker? StartWorker(WorkerSlot slot, int generation, SupervisorOptions options, Worker? replaces = null)
    {
        var identity = new WorkerIdentity(slot.Index, generation, ++_serial);
        // Gunicorn's jitter: each worker draws its own limit, so workers do not all recycle at once.
        var requestLimit = options.MaxRequests > 0 ? options.MaxRequests + Random.Shared.Next(0, options.MaxRequestsJitter + 1) : 0;
        WorkerProcess process;
        try
        {
            process = _launcher.Launch(options, identity, requestLimit, LogWorkerOutput);
        }
        catch (Exception exception) when (exception is System.ComponentModel.Win32Exception or IOException or UnauthorizedAccessException)
        {
            _log.Error("Could not start {Worker}: {Reason}", identity, exception.Message);
            if (!_booted)
            {
                _stop = StopReason.BootFailure($"Worker failed to boot: {identity} could not be started: {exception.Message}");
            }
            else
            {
                NoteSlotFailure(slot, readyAt: null);
            }
            return null;
        }
        var worker = new Worker(process, _dispatcher.Track(identity.Key, process.Pid, requestLimit), options, Now) { Replaces = replaces };
        _workers.Add(worker);
        PublishWorkers();
        _ = process.Exited.ContinueWith(exit => _events.Writer.TryWrite(new WorkerExited(process, exit.Result)), TaskScheduler.Default);
        _log.Information("Booting worker with pid: {WorkerPid} (worker {Slot}, generation {Generation})", process.Pid, identity.Slot, identity.Generation);
        return worker;
    }

    private void OnWorkerReported(WorkerReported report)
    {
        if (Find(report.WorkerKey) is not { } worker)
        {
            return;
        }
        worker.HasReported = true;
        worker.LastHeartbeat = Now;
        switch (report.Message)
        {
            case WorkerProtocol.Ready:
                MarkReady(worker);
                break;
            case WorkerProtocol.Limit when long.TryParse(report.Argument, out var limit):
                OnRequestLimitReached(worker.Key, limit); // Kernel mode: the worker counts its own requests.
                break;
            case WorkerProtocol.Served or WorkerProtocol.Heartbeat when long.TryParse(report.Argument, out var served):
                // A running total: the metric grows by what is new since the last report.
                var newlyServed = served - (worker.ServedReported ?? 0);
                if (newlyServed > 0)
                {
                    SupervisorMetrics.WorkerServedRequests.Add(newlyServed);
                }
                worker.ServedReported = served;
                break;
            case WorkerProtocol.Stopping when worker.InRotation && !worker.StopRequested:
                _log.Warning("Worker {Slot} (pid: {WorkerPid}) is stopping on its own; out of rotation", worker.Slot, worker.Pid);
                worker.InRotation = false;
                CommitRotation();
                break;
        }
    }

    private void OnWorkerLost(string workerKey, string reason)
    {
        if (Find(workerKey) is not { } worker || worker.StopRequested || worker.Process.HasExited)
        {
            return;
        }
        // The worker-host's connection only closes when its process is going away (or the hook broke),
        // and a socket refuses connections only when nothing listens on it: the request path stopped
        // routing to it at once; the rotation follows, and the worker is stopped if it still runs.
        if (worker.InRotation)
        {
            _log.Warning("Worker {Slot} (pid: {WorkerPid}) {Reason}; out of rotation", worker.Slot, worker.Pid, reason);
            worker.InRotation = false;
            CommitRotation();
        }
        // A worker still booting was in no rotation: its exit, which follows, is what is reported.
        worker.Process.Signal(Libc.SIGTERM);
    }

    private void MarkReady(Worker worker)
    {
        if (!worker.IsBooting)
        {
            return;
        }
        worker.ReadyAt = Now;
        _log.Information("Worker {Slot} ready (pid: {WorkerPid}, generation {Generation}) after {BootMs} ms",
            worker.Slot, worker.Pid, worker.Generation, (int)(Now - worker.StartedAt).TotalMilliseconds);

        if (_reload is not null && _reload.Candidates.Contains(worker))
        {
            CommitReloadWhenAllReady();
            return;
        }
        if (worker.Generation < _servingGeneration)
        {
            // Booted for a generation a reload has since replaced: it never serves.
            Retire(worker, $"booted for generation {worker.Generation}, replaced by {_servingGeneration} meanwhile");
            CommitRotation();
            return;
        }
        worker.InRotation = true;
        if (worker.Replaces is { } old)
        {
            old.ReplacementBooting = false;
            Retire(old, $"recycled: {old.RecycleReason}");
            _log.Information("Recycled worker {Slot}: pid {OldPid} replaced by pid {NewPid} ({Reason})", worker.Slot, old.Pid, worker.Pid, old.RecycleReason);
        }
        CommitRotation();

        if (!_booted && _slots.All(slot => _workers.Any(w => w.Slot == slot.Index && w.InRotation)))
        {
            _booted = true;
            _log.Information("All {Workers} workers ready", _slots.Count);
            _serviceManager.Ready(PoolStatus());
            _hooks.FirstGenerationReady();
        }
    }

    private void OnWorkerExited(WorkerProcess process, int exitCode)
    {
        if (Find(process) is not { } worker)
        {
            return;
        }
        _workers.Remove(worker);
        PublishWorkers();
        _dispatcher.Forget(worker.Key);
        if (worker.InRotation)
        {
            worker.InRotation = false;
            CommitRotation();
        }
        process.Dispose();

        if (worker.StopRequested)
        {
            _log.Information("Worker exiting (pid: {WorkerPid}): worker {Slot}, generation {Generation}, {Reason}; given {Requests} requests",
                worker.Pid, worker.Slot, worker.Generation, worker.StopReason, worker.ServedReported ?? worker.Load.Given);
            StartQueuedReload();
            return;
        }
        // .NET reports a death by signal N as exit code 128 + N.
        var how = exitCode is > 128 and < 160 ? $"was killed by signal {exitCode - 128}" : $"exited with code {exitCode}";
        _log.Error("Worker (pid:{WorkerPid}) {How} (worker {Slot}, generation {Generation})", worker.Pid, how, worker.Slot, worker.Generation);
        SupervisorMetrics.WorkerReplacements.Add(1, new KeyValuePair<string, object?>("reason", worker.TimedOut ? "timeout" : "exited"));
        if (worker.ReadyAt is null)
        {
            OnBootFailure(worker, $"{how} before it was ready");
            return;
        }
        if (_reload is not null && _reload.Candidates.Contains(worker))
        {
            AbortReload(worker, $"{how} before the new generation was complete");
            return;
        }
        if (SlotOf(worker) is { } slot)
        {
            NoteSlotFailure(slot, worker.ReadyAt);
            StartMissingWorkers();
        }
    }

    /// <summary>A worker exited, or was killed, before it became ready: what that means depends on why it was started.</summary>
    private void OnBootFailure(Worker worker, string what)
    {
        if (!_booted)
        {
            _stop = StopReason.BootFailure("Worker failed to boot: " + DescribeBootFailure(worker, what));
            return;
        }
        if (_reload is not null && _reload.Candidates.Contains(worker))
        {
            AbortReload(worker, what);
            return;
        }
        _log.Error("Worker failed to boot: {Description}", DescribeBootFailure(worker, what));
        if (SlotOf(worker) is not { } slot)
        {
            return;
        }
        NoteSlotFailure(slot, readyAt: null);
        if (worker.Replaces is { InRotation: true } old)
        {
            // The worker being recycled keeps serving; its recycle is tried again after the back-off.
            old.ReplacementBooting = false;
            old.RecycleRetryAt = slot.RespawnAt;
            slot.RespawnAt = null;
        }
    }

    /// <summary>Counts a failure for the slot and sets when its next worker may start.</summary>
    private void NoteSlotFailure(WorkerSlot slot, DateTimeOffset? readyAt)
    {
        var servedLongEnough = readyAt is { } ready && Now - ready >= RespawnBackoff.StableUptime;
        slot.ConsecutiveFailures = servedLongEnough ? 1 : slot.ConsecutiveFailures + 1;
        var delay = RespawnBackoff.Delay(slot.ConsecutiveFailures);
        if (delay > TimeSpan.Zero)
        {
            _log.Warning("Worker {Slot} failed {Failures} times in a row; next start in {Delay} s", slot.Index, slot.ConsecutiveFailures, delay.TotalSeconds);
        }
        slot.RespawnAt = Now + delay;
    }

    private void KillWorkersPastBootTimeout()
    {
        foreach (var worker in _workers.Where(w => w.IsBooting && Now - w.StartedAt > w.Options.BootTimeout).ToList())
        {
            var reason = $"was not ready within {worker.Options.BootTimeout.TotalSeconds} s (--boot-timeout)";
            _log.Error("Worker {Slot} (pid: {WorkerPid}) {Reason}; killing it", worker.Slot, worker.Pid, reason);
            worker.RequestStop("failed to boot in time"); // Its exit is this failure, already handled here.
            worker.Process.Signal(Libc.SIGKILL);
            OnBootFailure(worker, reason);
            if (_stop is not null)
            {
                return;
            }
        }
    }

    /// <summary>
    /// A worker whose heartbeat is silent for --timeout is frozen, deadlocked or stopped: out of rotation
    /// at once, then SIGKILL (a stopped process cannot act on SIGTERM); its exit brings a replacement.
    /// </summary>
    private void KillSilentWorkers()
    {
        foreach (var worker in _workers.Where(w => w.HasReported && !w.StopRequested && w.Options.Timeout > TimeSpan.Zero && Now - w.LastHeartbeat > w.Options.Timeout).ToList())
        {
            _log.Fatal("WORKER TIMEOUT (pid: {WorkerPid}) (worker {Slot}, generation {Generation}: no heartbeat for {Seconds:F1} s)",
                worker.Pid, worker.Slot, worker.Generation, (Now - worker.LastHeartbeat).TotalSeconds);
            if (worker.InRotation)
            {
                worker.InRotation = false;
                CommitRotation();
            }
            worker.TimedOut = true;
            worker.LastHeartbeat = Now; // Report it once; the exit follows.
            worker.Process.Signal(Libc.SIGKILL);
        }
    }

    // Trimmed and NativeAOT apps cannot load the worker-host: a worker is ready when its socket accepts.
    private void ProbeWorkersWithoutHook()
    {
        foreach (var worker in _workers.Where(w => w.IsBooting && !w.Options.App.StartupHooksSupported).ToList())
        {
            using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(_runDirectory.WorkerSocketPath(worker.Key)));
                MarkReady(worker);
            }
            catch (SocketException)
            {
                // Not listening yet.
            }
        }
    }
}
