namespace Supervisor.Arbitration;

/// <summary>One of the N places in the pool: it outlives the worker processes that fill it in turn.</summary>
internal sealed class WorkerSlot(int index)
{
    public int Index { get; } = index;

    /// <summary>Failures in a row (exits before ready, or soon after): drives <see cref="RespawnBackoff"/>.</summary>
    public int ConsecutiveFailures { get; set; }

    /// <summary>When the slot's next worker is due; null while none is waiting to be started.</summary>
    public DateTimeOffset? RespawnAt { get; set; }
}
