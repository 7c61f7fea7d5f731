namespace Supervisor.Control;

/// <summary>
/// What the admin endpoints tell of the pool, written by the arbiter's loop and read by any request
/// thread: whether the loop still turns (liveness) and whether requests can be served (readiness).
/// </summary>
internal sealed class PoolHealth(TimeProvider time)
{
    /// <summary>The loop turns every 250 ms; one silent this long is stuck, not busy.</summary>
    public static readonly TimeSpan LiveWithin = TimeSpan.FromSeconds(5);

    private long _lastTurn = time.GetTimestamp();
    private int _workersInRotation;
    private volatile bool _stopping;
    private IReadOnlyList<PublishedWorker> _workers = [];

    public void LoopTurned() => Interlocked.Exchange(ref _lastTurn, time.GetTimestamp());

    /// <summary>The workers requests go to now; a reload keeps the old ones in rotation until the new ones take over.</summary>
    public void InRotation(int workers) => Volatile.Write(ref _workersInRotation, workers);

    public void Stopping() => _stopping = true;

    /// <summary>Every worker process, after each change to the pool and at each tick, for the gauges.</summary>
    public void Workers(IReadOnlyList<PublishedWorker> workers) => Volatile.Write(ref _workers, workers);

    /// <summary>The worker processes as last published; their memory is read when asked for.</summary>
    public IReadOnlyList<PublishedWorker> WorkerProcesses => Volatile.Read(ref _workers);

    /// <summary>Null when live; else why not.</summary>
    public string? NotLive()
    {
        var silent = time.GetElapsedTime(Interlocked.Read(ref _lastTurn));
        return silent < LiveWithin ? null : $"the arbiter's loop has not turned for {silent.TotalSeconds:0} s";
    }

    /// <summary>Null when ready; else why not.</summary>
    public string? NotReady() =>
        _stopping ? "the supervisor is stopping"
        : Volatile.Read(ref _workersInRotation) == 0 ? "no worker is ready"
        : null;

    public int WorkersInRotation => Volatile.Read(ref _workersInRotation);
}

/// <summary>A worker process for the gauges: its slot, its state (as <c>supervisor status</c> names it), whether requests go to it, and how to read its resident memory.</summary>
internal sealed record PublishedWorker(int Slot, string State, bool InRotation, Func<long?> ResidentBytes);
