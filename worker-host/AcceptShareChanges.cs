namespace Supervisor.WorkerHost;

/// <summary>
/// The <see cref="AcceptShareTable"/>'s changes as tasks, for accept loops that wait their turn
/// (<see cref="FairAccept"/>): one thread per worker sleeps on the table's futex while any loop waits,
/// so no thread-pool thread is held, and it sleeps on a monitor while none does.
/// </summary>
internal sealed class AcceptShareChanges(AcceptShareTable table, TimeProvider time) : IDisposable
{
    private readonly object _lock = new();
    private readonly List<Waiter> _waiters = [];
    private Thread? _thread;
    private bool _disposed;

    /// <summary>Completes once the table's change count is no longer <paramref name="seen"/>, or after <paramref name="timeout"/>.</summary>
    public Task WaitAsync(int seen, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var waiter = new Waiter(seen, time.GetTimestamp() + (long)(timeout.TotalSeconds * time.TimestampFrequency));
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _waiters.Add(waiter);
            _thread ??= StartThread();
            Monitor.Pulse(_lock);
        }
        return waiter.Done.Task.WaitAsync(cancellationToken); // A cancelled one is dropped at its deadline.
    }

    private Thread StartThread()
    {
        var thread = new Thread(Run) { IsBackground = true, Name = "fair-accept" };
        thread.Start();
        return thread;
    }

    private void Run()
    {
        while (true)
        {
            int seen;
            long sleepUntil;
            lock (_lock)
            {
                while (_waiters.Count == 0 && !_disposed)
                {
                    Monitor.Wait(_lock);
                }
                if (_disposed)
                {
                    return;
                }
                // Counted as a waiter before the count is read: a change after the read wakes the futex.
                table.AddWaiter();
                seen = table.Changes;
                var now = time.GetTimestamp();
                _waiters.RemoveAll(waiter => (waiter.Seen != seen || waiter.Deadline <= now) && waiter.Done.TrySetResult());
                sleepUntil = _waiters.Count == 0 ? now : _waiters.Min(waiter => waiter.Deadline);
            }
            try
            {
                var sleep = time.GetElapsedTime(time.GetTimestamp(), sleepUntil);
                if (sleep > TimeSpan.Zero)
                {
                    table.WaitForChange(seen, sleep);
                }
            }
            finally
            {
                table.RemoveWaiter();
            }
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _waiters.ForEach(waiter => waiter.Done.TrySetCanceled());
            _waiters.Clear();
            Monitor.Pulse(_lock);
        }
    }

    private sealed record Waiter(int Seen, long Deadline)
    {
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
