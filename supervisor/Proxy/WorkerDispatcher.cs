using Yarp.ReverseProxy.Model;

namespace Supervisor.Proxy;

/// <summary>
/// Chooses the worker for each request: the least busy of those in rotation, ties broken at random,
/// never one that is closed (stopping) or already has <c>--worker-connections</c> requests. When every
/// worker is full, or none is ready yet, requests wait in a first-come queue of at most <c>--max-queue</c>;
/// past that they are refused with 503. The arbiter publishes the rotation; the request path only reads it.
/// </summary>
internal sealed class WorkerDispatcher(WorkerDestinations destinations, Action<WorkerLoad> onRequestLimitReached, Action<string, string> onUnreachable)
{
    private readonly Dictionary<string, WorkerLoad> _known = new(StringComparer.Ordinal);
    private readonly Queue<TaskCompletionSource> _waiters = new();
    private readonly Lock _lock = new();
    private volatile WorkerLoad[] _rotation = [];
    private volatile int _capacity = int.MaxValue;
    private volatile int _queueLimit = int.MaxValue;
    private int _waiting;
    private volatile bool _closed;
    private long _refused;
    private long _stalledClients;

    /// <summary>Sets --worker-connections and --max-queue (live: a reload may change them).</summary>
    public void Configure(int workerConnections, int queueLimit)
    {
        _capacity = workerConnections;
        _queueLimit = queueLimit;
        WakeAll(); // More room per worker may free waiters.
    }

    /// <summary>Starts tracking a worker as soon as it is started, so that it has a load once it is published.</summary>
    public WorkerLoad Track(string key, int pid, long requestLimit)
    {
        var load = new WorkerLoad(key, pid, requestLimit);
        lock (_lock)
        {
            _known[key] = load;
        }
        return load;
    }

    /// <summary>Stops tracking a worker that has exited.</summary>
    public void Forget(string key)
    {
        lock (_lock)
        {
            _known.Remove(key);
        }
    }

    /// <summary>
    /// Makes <paramref name="keys"/> the workers in rotation, in one step: YARP learns the destinations
    /// first, then the request path sees the new set. A worker left out should be <see cref="WorkerLoad.Close">closed</see>
    /// by the caller, which then waits for its <see cref="WorkerLoad.InFlight"/> to reach zero.
    /// </summary>
    public void Publish(IReadOnlyCollection<string> keys)
    {
        var states = destinations.Publish(keys);
        WorkerLoad[] rotation;
        lock (_lock)
        {
            rotation = [.. keys.Where(_known.ContainsKey).Select(key => _known[key])];
        }
        foreach (var load in rotation)
        {
            load.Destination = states.GetValueOrDefault(load.Key);
        }
        _rotation = rotation;
        WakeAll();
    }

    /// <summary>Requests at the workers now, those draining from retired workers included (for /metrics).</summary>
    public int InFlight
    {
        get
        {
            lock (_lock)
            {
                return _known.Values.Sum(load => load.InFlight);
            }
        }
    }

    /// <summary>Requests waiting for a worker (for /metrics).</summary>
    public int Queued
    {
        get
        {
            lock (_lock)
            {
                return _waiters.Count;
            }
        }
    }

    /// <summary>Requests refused with 503 since the last call: the queue was full, or no worker became ready in time.</summary>
    public long TakeRefusedCount() => Interlocked.Exchange(ref _refused, 0);

    // Summed up in the error log each tick, and counted for /metrics.
    private void CountRefused()
    {
        Interlocked.Increment(ref _refused);
        Control.SupervisorMetrics.RefusedRequests.Add(1);
    }

    /// <summary>Counts a client disconnected for taking nothing of its response for --send-timeout.</summary>
    public void CountStalledClient() => Interlocked.Increment(ref _stalledClients);

    /// <summary>Clients disconnected at --send-timeout since the last call.</summary>
    public long TakeStalledClientCount() => Interlocked.Exchange(ref _stalledClients, 0);

    /// <summary>
    /// Takes a worker out of the request path at once, from any thread: its socket refused a connection
    /// or its control connection closed, so it is dead or dying. The arbiter learns the same from the
    /// exit and publishes the rotation without it; until then no request picks it. True if it was open.
    /// </summary>
    public bool MarkUnreachable(string key, string reason)
    {
        WorkerLoad? load;
        lock (_lock)
        {
            load = _known.GetValueOrDefault(key);
        }
        if (load is null || load.IsClosed)
        {
            return false;
        }
        load.Close();
        onUnreachable(key, reason);
        return true;
    }

    /// <summary>
    /// Finds a worker for one request, waiting for a place if every worker is full (or none is ready).
    /// <paramref name="affinity"/> is the key of the worker the request belongs to, if any (a sticky-session
    /// cookie's, or the one holding the SignalR connection the request names);
    /// <paramref name="avoid"/> one that just failed to take this request, chosen only if no other can.
    /// </summary>
    public async ValueTask<Dispatch> AcquireAsync(string? affinity, TimeSpan noWorkerWait, CancellationToken aborted, string? avoid = null)
    {
        if (Volatile.Read(ref _waiting) == 0 && TryReserve(affinity, avoid) is { } quick)
        {
            return new Dispatch(DispatchOutcome.Acquired, quick);
        }
        var noWorkerDeadline = DateTime.UtcNow + noWorkerWait;
        Interlocked.Increment(ref _waiting);
        try
        {
            while (true)
            {
                TaskCompletionSource waiter;
                lock (_lock)
                {
                    // Tried again under the lock, after announcing this waiter: a release that slips in
                    // between sees it waiting and wakes it, so no wake-up is lost.
                    if (TryReserve(affinity, avoid) is { } lease)
                    {
                        return new Dispatch(DispatchOutcome.Acquired, lease);
                    }
                    if (_closed)
                    {
                        return new Dispatch(DispatchOutcome.Stopping, null);
                    }
                    if (_waiters.Count >= _queueLimit)
                    {
                        CountRefused();
                        return new Dispatch(DispatchOutcome.QueueFull, null);
                    }
                    waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    _waiters.Enqueue(waiter);
                }
                var noWorker = _rotation.Length == 0;
                var wait = noWorker ? noWorkerDeadline - DateTime.UtcNow : Timeout.InfiniteTimeSpan;
                try
                {
                    if (noWorker && wait <= TimeSpan.Zero)
                    {
                        throw new TimeoutException();
                    }
                    await waiter.Task.WaitAsync(wait, aborted);
                }
                catch (Exception exception) when (exception is TimeoutException or OperationCanceledException)
                {
                    lock (_lock)
                    {
                        RemoveWaiter(waiter);
                        if (waiter.Task.IsCompletedSuccessfully && _waiters.TryDequeue(out var next))
                        {
                            next.TrySetResult(); // It was woken just as it gave up: pass the turn on.
                        }
                    }
                    if (exception is OperationCanceledException)
                    {
                        return new Dispatch(DispatchOutcome.ClientGone, null);
                    }
                    CountRefused();
                    return new Dispatch(DispatchOutcome.NoWorker, null);
                }
            }
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }
    }

    /// <summary>
    /// The supervisor is stopping without waiting for its queue (a quick stop, workers that failed to
    /// boot): every request waiting for a worker, and every one that would wait, gets
    /// <see cref="DispatchOutcome.Stopping"/> and so an answer, rather than a cut connection.
    /// </summary>
    public void Close()
    {
        lock (_lock)
        {
            _closed = true;
            while (_waiters.TryDequeue(out var waiter))
            {
                waiter.TrySetResult();
            }
        }
    }

    /// <summary>Called when a lease ends: a place is free, so the longest waiter may try again.</summary>
    internal void OnReleased()
    {
        if (Volatile.Read(ref _waiting) == 0)
        {
            return;
        }
        lock (_lock)
        {
            if (_waiters.TryDequeue(out var next))
            {
                next.TrySetResult();
            }
        }
    }

    private WorkerLease? TryReserve(string? affinity, string? avoid)
    {
        var capacity = _capacity;
        if (affinity is not null && FindOpen(affinity) is { } sticky)
        {
            // A request bound to a worker waits for it rather than lose the in-process state it needs.
            return sticky.TryReserve(capacity) ? Lease(sticky) : null;
        }
        var rotation = _rotation;
        for (var attempt = 0; attempt < rotation.Length; attempt++)
        {
            var chosen = LeastBusy(rotation, capacity, avoid) ?? LeastBusy(rotation, capacity, avoid: null);
            if (chosen is null)
            {
                return null;
            }
            if (chosen.TryReserve(capacity))
            {
                return Lease(chosen);
            }
        }
        return null;
    }

    // Ties go to a random one of the least busy: strict turns would alias with clients' own request
    // patterns (a client alternating two requests would only ever see every other worker).
    private static WorkerLoad? LeastBusy(WorkerLoad[] rotation, int capacity, string? avoid)
    {
        if (rotation.Length == 0)
        {
            return null;
        }
        var start = Random.Shared.Next(rotation.Length);
        WorkerLoad? best = null;
        var bestInFlight = int.MaxValue;
        for (var i = 0; i < rotation.Length; i++)
        {
            var candidate = rotation[(start + i) % rotation.Length];
            var inFlight = candidate.InFlight;
            if (inFlight < bestInFlight && inFlight < capacity && !candidate.IsClosed && candidate.Key != avoid)
            {
                best = candidate;
                bestInFlight = inFlight;
            }
        }
        return best;
    }

    private WorkerLease Lease(WorkerLoad worker)
    {
        if (worker.CountGiven())
        {
            onRequestLimitReached(worker);
        }
        return new WorkerLease(worker, this);
    }

    private WorkerLoad? FindOpen(string key)
    {
        foreach (var load in _rotation)
        {
            if (load.Key == key)
            {
                return load.IsClosed ? null : load;
            }
        }
        return null;
    }

    private void WakeAll()
    {
        lock (_lock)
        {
            while (_waiters.TryDequeue(out var waiter))
            {
                waiter.TrySetResult();
            }
        }
    }

    private void RemoveWaiter(TaskCompletionSource waiter)
    {
        var remaining = _waiters.Where(w => w != waiter).ToList();
        _waiters.Clear();
        foreach (var w in remaining)
        {
            _waiters.Enqueue(w);
        }
    }
}

/// <summary>What <see cref="WorkerDispatcher.AcquireAsync"/> found.</summary>
internal enum DispatchOutcome
{
    Acquired,

    /// <summary>Every worker was full and the queue too: 503.</summary>
    QueueFull,

    /// <summary>No worker became ready within the wait: 503.</summary>
    NoWorker,

    /// <summary>The client went away while waiting.</summary>
    ClientGone,

    /// <summary>The supervisor stopped before a worker could take the request: 503.</summary>
    Stopping,
}

internal readonly record struct Dispatch(DispatchOutcome Outcome, WorkerLease? Lease);
