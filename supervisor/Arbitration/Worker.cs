using Supervisor.Configuration;
using Supervisor.Proxy;
using Supervisor.Workers;

namespace Supervisor.Arbitration;

/// <summary>
/// A worker process as the arbiter sees it: where it stands in the pool. Only the arbiter's loop reads
/// or changes these fields, so they need no locks.
/// </summary>
internal sealed class Worker(WorkerProcess process, WorkerLoad load, SupervisorOptions options, DateTimeOffset startedAt)
{
    public WorkerProcess Process { get; } = process;

    /// <summary>Its requests in flight, as the request path counts them.</summary>
    public WorkerLoad Load { get; } = load;

    /// <summary>The options of the generation it was started for: its timeouts stay those it booted with.</summary>
    public SupervisorOptions Options { get; } = options;

    public WorkerIdentity Identity => Process.Identity;

    public int Slot => Identity.Slot;

    public int Generation => Identity.Generation;

    public string Key => Identity.Key;

    public int Pid => Process.Pid;

    public DateTimeOffset StartedAt { get; } = startedAt;

    /// <summary>When it said it was ready; null while it boots.</summary>
    public DateTimeOffset? ReadyAt { get; set; }

    public bool IsBooting => ReadyAt is null && !StopRequested;

    /// <summary>True while it takes requests: a destination of the proxy, or (kernel mode) a worker told to accept.</summary>
    public bool InRotation { get; set; }

    /// <summary>The supervisor asked it to stop: its exit is expected, not a crash.</summary>
    public bool StopRequested => StopReason is not null;

    /// <summary>Why the supervisor stopped it (logged when it exits); null while it is wanted.</summary>
    public string? StopReason { get; private set; }

    public void RequestStop(string reason) => StopReason ??= reason;

    /// <summary>True once its worker-host said hello: from then on its heartbeat is watched.</summary>
    public bool HasReported { get; set; }

    public DateTimeOffset LastHeartbeat { get; set; } = startedAt;

    /// <summary>For a replacement booting in an overlapped recycle: the worker it will take over from.</summary>
    public Worker? Replaces { get; init; }

    /// <summary>Why this worker is due to be recycled; null while it is not.</summary>
    public string? RecycleReason { get; set; }

    /// <summary>True while its replacement boots: at most one recycle per worker at a time.</summary>
    public bool ReplacementBooting { get; set; }

    /// <summary>When to try again after a replacement failed to boot.</summary>
    public DateTimeOffset? RecycleRetryAt { get; set; }

    /// <summary>Killed for a silent heartbeat (WORKER TIMEOUT): its exit is counted as a timeout, not a crash.</summary>
    public bool TimedOut { get; set; }

    /// <summary>Kernel mode: the requests the worker said it served, with each heartbeat and as it stopped (the supervisor sees none of them).</summary>
    public long? ServedReported { get; set; }

    /// <summary>Kernel mode: it was told to accept client connections (it waits for that from its start).</summary>
    public bool ToldToAccept { get; set; }

    /// <summary>Consecutive memory samples above --max-memory.</summary>
    public int SamplesOverMemoryLimit { get; set; }

    public override string ToString() => $"worker {Slot} (pid: {Pid}, generation {Generation})";
}
