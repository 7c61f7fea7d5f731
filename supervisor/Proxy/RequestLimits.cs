using System.Collections.Concurrent;
using System.Threading.Channels;
using Supervisor.Arbitration;

namespace Supervisor.Proxy;

/// <summary>
/// Counts the requests forwarded to each worker under --max-requests, and tells the arbiter once when
/// a worker's own limit (max-requests plus its jitter) is reached. Called on the request path: one
/// dictionary lookup and one interlocked increment.
/// </summary>
internal sealed class RequestLimits(ChannelWriter<ArbiterEvent> events)
{
    private readonly ConcurrentDictionary<string, Counter> _counters = new(StringComparer.Ordinal);

    public void Track(string workerKey, long limit) => _counters[workerKey] = new Counter(limit);

    public void Forget(string workerKey) => _counters.TryRemove(workerKey, out _);

    public void OnRequestForwarded(string workerKey)
    {
        if (_counters.TryGetValue(workerKey, out var counter) && Interlocked.Increment(ref counter.Count) == counter.Limit)
        {
            events.TryWrite(new WorkerRequestLimitReached(workerKey, counter.Limit));
        }
    }

    private sealed class Counter(long limit)
    {
        public readonly long Limit = limit;
        public long Count;
    }
}
