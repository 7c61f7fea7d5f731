using System.Collections.Concurrent;

namespace Supervisor.Proxy.Http2;

/// <summary>The front's HTTP/2 connections to every worker, pooled by worker key.</summary>
internal sealed class WorkerConnections(Func<string, string> socketPathOf)
{
    private readonly ConcurrentDictionary<string, WorkerConnectionPool> _pools = new(StringComparer.Ordinal);
    private readonly Func<string, string> _socketPathOf = socketPathOf;

    /// <summary>Sends a request, whose header block is given, to <paramref name="worker"/> on <paramref name="stream"/>.</summary>
    /// <param name="alone">On a connection of its own (<see cref="WorkerConnectionPool.StartAloneAsync"/>).</param>
    /// <exception cref="RequestNotSentException">The worker could not be reached; the request may go elsewhere.</exception>
    public ValueTask<StartResult> StartAsync(string worker, WorkerStream stream, ReadOnlyMemory<byte> headerBlock, long headerListSize, bool alone, CancellationToken cancellationToken)
    {
        var pool = _pools.GetOrAdd(worker, static (key, connections) => new WorkerConnectionPool(key, connections._socketPathOf(key), connections.Forget), this);
        return alone ? pool.StartAloneAsync(stream, headerBlock, headerListSize, cancellationToken) : pool.StartAsync(stream, headerBlock, headerListSize, cancellationToken);
    }

    // A recycled worker's pool empties when its connections close; forgetting it keeps the map to the living.
    private void Forget(WorkerConnectionPool pool) => _pools.TryRemove(KeyValuePair.Create(pool.Worker, pool));
}
