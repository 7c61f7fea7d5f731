using System.Globalization;
using Microsoft.AspNetCore.Connections;

namespace Supervisor.WorkerHost;

/// <summary>
/// --balancer kernel: keeps new connections from going mostly to one worker. The kernel gives a
/// connection waiting on the shared socket to whichever worker's accept runs first, and a worker whose
/// accept loop is running takes a whole queued burst before a sleeping peer wakes (measured: 40
/// connections opened at once went 1 and 39, 2 and 38, 3 and 37 between two workers). So a worker holding
/// more than its allowance (<see cref="Allowance"/>) more connections than a peer in rotation does not accept:
/// <code>
///   accept    when no peer in rotation holds fewer by more than this worker's allowance for it
///   wait      otherwise, asleep until a worker's connections change (a futex in the shared table), or
///             1 ms while a connection is waiting (10 ms while none is), then look again
///   stall     a peer waited for has accepted nothing while connections waited for StallLimit (hung, cold,
///             or starved of CPU): the allowance for it doubles, and the clock starts again; it falls
///             back to Allowance once that peer accepts again
/// </code>
/// The worker with the fewest never waits, so some worker always accepts. No two workers' counts differ by
/// more than the allowance + 1 per listening socket, and the allowance grows only by doubling once per
/// stall: a peer slow for a moment (a cold worker's first requests hold its thread pool; measured 60 ms
/// in a Debug build on a loaded machine) costs the burst a few connections, not the rest of it, and a
/// frozen one costs new clients about log2(connections) stall limits once, not until --timeout kills it.
/// Each stall is logged. The cost: a new connection may wait for a peer that is slow to accept it, where
/// the kernel would have given it to whichever worker was free; and each accept and close adds to a
/// shared counter, with a futex wake while some worker waits. The counts live in the
/// <see cref="AcceptShareTable"/> the supervisor made; each worker writes only its own entry.
/// </summary>
internal sealed class FairAccept : IDisposable
{
    /// <summary>How many more connections than a peer a worker may hold and still take a waiting one, while that peer keeps accepting.</summary>
    internal const int Allowance = 1;

    /// <summary>How long connections may wait for peers with fewer before this worker's allowance for them doubles.</summary>
    internal static readonly TimeSpan StallLimit = TimeSpan.FromMilliseconds(50);

    // Far above any connection count, so that doubling never overflows.
    private const int AllowanceCeiling = 1 << 24;

    // How often a waiting worker looks at the socket's queue: while a connection waits, to time the peers
    // it waits for; while none does, to see one come that those peers leave waiting.
    private static readonly TimeSpan WaitingPollInterval = TimeSpan.FromMilliseconds(1);
    private static readonly TimeSpan IdlePollInterval = TimeSpan.FromMilliseconds(10);

    private readonly AcceptShareTable _table;
    private readonly int _self;
    private readonly TimeProvider _time;
    private readonly AcceptShareChanges _changes;
    private readonly object _lock = new();
    // Peers that stalled, with what they had accepted then and the allowance for them since: each falls
    // back to Allowance once its accepted count moves.
    private readonly Dictionary<int, Stalled> _stalled = [];

    internal FairAccept(AcceptShareTable table, int self, TimeProvider time)
    {
        _table = table;
        _self = self;
        _time = time;
        _changes = new AcceptShareChanges(table, time);
    }

    /// <summary>From <c>DESCRIPTOR:ENTRY</c>, as the supervisor writes it; null when absent or not usable (the worker then accepts as it comes).</summary>
    internal static FairAccept? FromEnvironment()
    {
        var text = Environment.GetEnvironmentVariable(WorkerProtocol.AcceptShareVariable);
        var parts = text?.Split(':');
        if (parts is not [var descriptorText, var entryText]
            || !int.TryParse(descriptorText, NumberStyles.None, CultureInfo.InvariantCulture, out var descriptor)
            || !int.TryParse(entryText, NumberStyles.None, CultureInfo.InvariantCulture, out var entry)
            || entry >= AcceptShareTable.Capacity)
        {
            return null;
        }
        return AcceptShareTable.Attach(descriptor) is { } table ? new FairAccept(table, entry, TimeProvider.System) : null;
    }

    /// <summary>The worker takes connections from now on: peers with more leave waiting ones to it.</summary>
    public void EnterRotation()
    {
        Volatile.Write(ref _table[_self].Pid, Environment.ProcessId);
        Volatile.Write(ref _table[_self].InRotation, 1);
    }

    /// <summary>The worker takes no more connections: no peer waits for it.</summary>
    public void LeaveRotation() => Volatile.Write(ref _table[_self].InRotation, 0);

    /// <summary>Counts a connection this worker accepted as its own until it closes.</summary>
    public void Count(ConnectionContext connection)
    {
        ref var entry = ref _table[_self];
        Interlocked.Increment(ref entry.Open);
        Interlocked.Increment(ref entry.Accepted);
        _table.Changed();
        connection.ConnectionClosed.Register(static state =>
        {
            var fair = (FairAccept)state!;
            Interlocked.Decrement(ref fair._table[fair._self].Open);
            fair._table.Changed();
        }, this);
    }

    /// <summary>Completes when this worker should accept: see the class's rules.</summary>
    /// <param name="connectionWaiting">Whether a connection is queued on the socket this worker is about to accept on.</param>
    public async ValueTask WaitForTurnAsync(Func<bool> connectionWaiting, CancellationToken cancellationToken)
    {
        Dictionary<int, long>? watched = null; // The peers waited for while a connection waits, with what they had accepted.
        var watchedSince = 0L;
        while (true)
        {
            var seen = _table.Changes; // Before the look, so that a change after it ends the wait at once.
            if (PeersWithFewer() is not { } fewer)
            {
                return;
            }
            var waiting = connectionWaiting();
            if (!waiting)
            {
                watched = null; // The stall clock runs only while a connection waits.
            }
            else if (watched is null || Moved(watched, fewer))
            {
                (watched, watchedSince) = (fewer, _time.GetTimestamp());
            }
            else if (_time.GetElapsedTime(watchedSince) is var stalledFor && stalledFor >= StallLimit)
            {
                Stall(fewer, stalledFor);
                watched = null; // The next stall is timed from now.
                continue;
            }
            await _changes.WaitAsync(seen, waiting ? WaitingPollInterval : IdlePollInterval, cancellationToken);
        }
    }

    /// <summary>Peers in rotation holding fewer connections than this worker by more than its allowance for them, with what each has accepted; null if none.</summary>
    private Dictionary<int, long>? PeersWithFewer()
    {
        var mine = Volatile.Read(ref _table[_self].Open);
        Dictionary<int, long>? fewer = null;
        var entries = Math.Min(_table.EntriesInUse, AcceptShareTable.Capacity);
        lock (_lock)
        {
            for (var index = 0; index < entries; index++)
            {
                ref var peer = ref _table[index];
                if (index == _self || Volatile.Read(ref peer.InRotation) == 0)
                {
                    continue;
                }
                var accepted = Volatile.Read(ref peer.Accepted);
                var allowance = Allowance;
                if (_stalled.TryGetValue(index, out var stalled))
                {
                    if (accepted == stalled.AcceptedThen)
                    {
                        allowance = stalled.Allowance;
                    }
                    else
                    {
                        _stalled.Remove(index); // It takes connections again.
                    }
                }
                if (mine - Volatile.Read(ref peer.Open) > allowance)
                {
                    (fewer ??= [])[index] = accepted;
                }
            }
        }
        return fewer;
    }

    // A peer deferred to has accepted since, or the set of them changed: the stall clock starts again.
    private static bool Moved(Dictionary<int, long> watched, Dictionary<int, long> now) =>
        watched.Count != now.Count || now.Any(peer => !watched.TryGetValue(peer.Key, out var accepted) || accepted != peer.Value);

    private void Stall(Dictionary<int, long> peers, TimeSpan waited)
    {
        lock (_lock)
        {
            foreach (var (index, accepted) in peers)
            {
                // A peer that accepted since it last stalled starts again from the base allowance.
                var allowance = _stalled.TryGetValue(index, out var stalled) && stalled.AcceptedThen == accepted ? stalled.Allowance : Allowance;
                var doubled = Math.Min(allowance * 2, AllowanceCeiling);
                _stalled[index] = new Stalled(accepted, doubled);
                HookLog.Note($"fair accept: the worker with pid {Volatile.Read(ref _table[index].Pid)} accepted nothing for {waited.TotalMilliseconds:F0} ms "
                    + $"while connections waited; this one may now hold {doubled} more than it until it accepts again");
            }
        }
    }

    private readonly record struct Stalled(long AcceptedThen, int Allowance);

    public void Dispose()
    {
        _changes.Dispose();
        _table.Dispose();
    }
}
