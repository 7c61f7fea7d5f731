using Supervisor.WorkerHost;

namespace Supervisor.Kernel;

/// <summary>
/// --balancer kernel: the supervisor's side of the <see cref="AcceptShareTable"/>, in which the workers
/// share bursts of new connections (<see cref="FairAccept"/>). Each worker process gets an entry of its
/// own as it starts; the entry is zeroed and free again once that process has exited, never before, so
/// that each entry has one writer at a time. The table's descriptor is closed on exec except while a
/// worker starts, so neither the app's other processes nor a binary upgrade's new supervisor inherit it.
/// </summary>
internal sealed class AcceptShares : IDisposable
{
    private readonly AcceptShareTable _table;
    private readonly bool[] _taken = new bool[AcceptShareTable.Capacity];
    private readonly object _lock = new();
    private bool _disposed;

    private AcceptShares(AcceptShareTable table, int descriptor)
    {
        _table = table;
        Descriptor = descriptor;
    }

    /// <summary>The table's descriptor, which a worker inherits under the same number.</summary>
    public int Descriptor { get; }

    public static AcceptShares Create() => new(AcceptShareTable.Create(out var descriptor), descriptor);

    /// <summary>A free entry for a worker about to start; null when all are taken (that worker then accepts as it comes).</summary>
    public int? Take()
    {
        lock (_lock)
        {
            var index = _disposed ? -1 : Array.IndexOf(_taken, false);
            if (index < 0)
            {
                return null;
            }
            _taken[index] = true;
            _table.EntriesInUse = Math.Max(_table.EntriesInUse, index + 1);
            return index;
        }
    }

    /// <summary>The entry's worker has exited (or never started): zeroed, so no peer defers to it, and free.</summary>
    public void Release(int index)
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return; // A worker's exit reported after the supervisor's run ended: the memory is unmapped.
            }
            ref var entry = ref _table[index];
            Volatile.Write(ref entry.InRotation, 0);
            entry = default;
            _taken[index] = false;
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            _table.Dispose();
            Native.Libc.Close(Descriptor);
        }
    }
}
