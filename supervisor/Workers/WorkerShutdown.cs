using Serilog;
using Supervisor.Native;

namespace Supervisor.Workers;

/// <summary>Stops workers the way Gunicorn does: SIGTERM, wait up to the timeout, then SIGKILL.</summary>
internal static class WorkerShutdown
{
    // After SIGKILL the kernel reaps at once; this bound only guards against a wait that never ends.
    private static readonly TimeSpan KillWait = TimeSpan.FromSeconds(5);

    /// <summary>
    /// SIGTERM to every worker, then SIGKILL to those still running after <paramref name="timeout"/>. When
    /// <paramref name="hurry"/> is cancelled (a quick stop, asked for before or during the wait), what is
    /// left of the wait is cut to <paramref name="hurriedTimeout"/>: a quick stop still gives the workers
    /// that long, never nothing.
    /// </summary>
    public static async Task StopAsync(IReadOnlyCollection<WorkerProcess> workers, TimeSpan timeout, ILogger log, TimeSpan hurriedTimeout, CancellationToken hurry)
    {
        var started = TimeProvider.System.GetTimestamp();
        var exitsLogged = new List<Task>();
        foreach (var worker in workers)
        {
            worker.Signal(Libc.SIGTERM);
            exitsLogged.Add(worker.Exited.ContinueWith(_ => log.Information("Worker exiting (pid: {WorkerPid}): worker {Slot}, generation {Generation}, supervisor stopping", worker.Pid, worker.Identity.Slot, worker.Identity.Generation), TaskScheduler.Default));
        }
        var allExited = Task.WhenAll(exitsLogged);
        if (await Completes(allExited, timeout, hurry))
        {
            return;
        }
        if (hurry.IsCancellationRequested)
        {
            var left = timeout - TimeProvider.System.GetElapsedTime(started);
            if (await Completes(allExited, left < hurriedTimeout ? left : hurriedTimeout, CancellationToken.None))
            {
                return;
            }
        }
        var waited = TimeProvider.System.GetElapsedTime(started);
        foreach (var worker in workers.Where(w => !w.HasExited))
        {
            log.Warning("Worker (pid:{WorkerPid}) still running after {Waited:0.#} s; sending SIGKILL", worker.Pid, waited.TotalSeconds);
            worker.Signal(Libc.SIGKILL);
        }
        if (!await Completes(allExited, KillWait, CancellationToken.None))
        {
            log.Error("Workers did not exit after SIGKILL: {Pids}", string.Join(", ", workers.Where(w => !w.HasExited).Select(w => w.Pid)));
        }
    }

    /// <summary>
    /// --balancer kernel and handoff, once a binary upgrade has handed over: every worker is told to
    /// drain, as at a recycle, so each HTTP/1.1 client moves to the new supervisor after an answer that
    /// says Connection: close. SIGTERM now would close the idle keep-alive connections at once (Kestrel's
    /// graceful stop), under requests their clients may be sending; a client cannot send one with a body
    /// again. Returns when the workers have exited, or <paramref name="clientsLeaveWithin"/> has passed
    /// (each worker then stops itself gracefully), or a quick stop is asked for; <see cref="StopAsync"/>
    /// does the rest.
    /// </summary>
    public static async Task DrainAsync(IReadOnlyCollection<WorkerProcess> workers, Action<WorkerProcess> tellToDrain, TimeSpan clientsLeaveWithin, CancellationToken hurry)
    {
        foreach (var worker in workers.Where(worker => !worker.HasExited))
        {
            tellToDrain(worker);
        }
        await Completes(Task.WhenAll(workers.Select(worker => worker.Exited)), clientsLeaveWithin, hurry);
    }

    private static async Task<bool> Completes(Task task, TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            await task.WaitAsync(timeout > TimeSpan.Zero ? timeout : TimeSpan.Zero, cancellationToken);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
