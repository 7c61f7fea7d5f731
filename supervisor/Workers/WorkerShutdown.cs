using Serilog;
using Supervisor.Native;

namespace Supervisor.Workers;

/// <summary>Stops workers the way Gunicorn does: SIGTERM, wait up to the timeout, then SIGKILL.</summary>
internal static class WorkerShutdown
{
    // After SIGKILL the kernel reaps at once; this bound only guards against a wait that never ends.
    private static readonly TimeSpan KillWait = TimeSpan.FromSeconds(5);

    public static async Task StopAsync(IReadOnlyCollection<WorkerProcess> workers, TimeSpan timeout, ILogger log, CancellationToken hurry = default)
    {
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
        foreach (var worker in workers.Where(w => !w.HasExited))
        {
            log.Warning("Worker (pid:{WorkerPid}) still running after {Timeout} s; sending SIGKILL", worker.Pid, timeout.TotalSeconds);
            worker.Signal(Libc.SIGKILL);
        }
        if (!await Completes(allExited, KillWait, CancellationToken.None))
        {
            log.Error("Workers did not exit after SIGKILL: {Pids}", string.Join(", ", workers.Where(w => !w.HasExited).Select(w => w.Pid)));
        }
    }

    private static async Task<bool> Completes(Task task, TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            await task.WaitAsync(timeout, cancellationToken);
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
