using Yarp.ReverseProxy.Model;

namespace Supervisor.Proxy;

/// <summary>
/// One worker as the request path sees it: how many requests it has in flight, how many it has been
/// given, and whether it still takes new ones. The in-flight count and the "closed" mark share one
/// integer, so a reservation and a close can never cross: once <see cref="Close"/> has returned, no
/// request is ever reserved on this worker again, even by a request that picked it from an old snapshot.
/// </summary>
internal sealed class WorkerLoad(string key, int pid, long requestLimit)
{
    private const int ClosedBit = 1 << 30;

    private int _state;
    private long _given;

    public string Key { get; } = key;

    public int Pid { get; } = pid;

    /// <summary>Its --max-requests limit (with jitter); 0 for none.</summary>
    public long RequestLimit { get; } = requestLimit;

    /// <summary>YARP's state for this worker, once it has been published as a destination.</summary>
    public DestinationState? Destination { get; set; }

    public int InFlight => Volatile.Read(ref _state) & ~ClosedBit;

    public bool IsClosed => (Volatile.Read(ref _state) & ClosedBit) != 0;

    /// <summary>Takes one of its <paramref name="capacity"/> places, unless it is closed or full.</summary>
    public bool TryReserve(int capacity)
    {
        while (true)
        {
            var state = Volatile.Read(ref _state);
            if ((state & ClosedBit) != 0 || state >= capacity)
            {
                return false;
            }
            if (Interlocked.CompareExchange(ref _state, state + 1, state) == state)
            {
                return true;
            }
        }
    }

    public void Release() => Interlocked.Decrement(ref _state);

    /// <summary>How many requests it has been given: logged when it exits, counted against its --max-requests.</summary>
    public long Given => Interlocked.Read(ref _given);

    /// <summary>Counts one request given to it; true for the one that reaches its --max-requests (never, without one).</summary>
    public bool CountGiven() => Interlocked.Increment(ref _given) == RequestLimit;

    /// <summary>Takes no new request from now on; those in flight go on.</summary>
    public void Close() => Interlocked.Or(ref _state, ClosedBit);

    public override string ToString() => $"{Key} (pid {Pid}, {InFlight} in flight)";
}
