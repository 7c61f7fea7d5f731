using Supervisor.Control;

namespace Supervisor.Arbitration;

/// <summary><c>supervisor status</c>: every worker process the arbiter knows, and where it stands.</summary>
internal sealed partial class Arbiter
{
    private PoolStatusReply DescribePool() => new(
        Environment.ProcessId,
        Cli.VersionInfo.Version,
        _startedAt,
        Now,
        _slots.Count,
        _servingGeneration,
        _reload is { } reload ? $"generation {reload.Generation} booting{(_reloadPending ? "; another queued" : "")}"
            : _reloadPending ? $"queued: {WhyReloadMustWait()}"
            : "none",
        _dispatcher.InFlight,
        _dispatcher.Queued,
        [.. _workers.OrderBy(w => w.Slot).ThenBy(w => w.StartedAt).Select(DescribeWorker)]);

    /// <summary>Every state <see cref="StateOf"/> names, for gauges that report each one, 0 included.</summary>
    public static readonly IReadOnlyList<string> WorkerStates = ["booting", "ready", "serving", "recycling", "stopping"];

    private WorkerStatus DescribeWorker(Worker worker)
    {
        var (state, detail) = StateOf(worker);
        return new WorkerStatus(worker.Slot, worker.Pid, worker.Generation, state, worker.StartedAt,
            worker.ServedReported ?? worker.Load.Given, worker.Load.InFlight, worker.Process.ResidentBytes(), detail);
    }

    private static (string State, string? Detail) StateOf(Worker worker) => worker switch
    {
        { StopRequested: true } => ("stopping", worker.StopReason),
        { ReadyAt: null } => ("booting", worker.Replaces is { } old ? $"to replace pid {old.Pid}" : null),
        { InRotation: true, ReplacementBooting: true } => ("recycling", worker.RecycleReason),
        { InRotation: true } => ("serving", null),
        _ => ("ready", $"serves when all of generation {worker.Generation} are ready"),
    };
}
