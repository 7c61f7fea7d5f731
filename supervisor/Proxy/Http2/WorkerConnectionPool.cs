namespace Supervisor.Proxy.Http2;

/// <summary>
/// The HTTP/2 connections to one worker. A request goes on the connection with the fewest streams in
/// flight; a new connection is opened only when every one is at the worker's stream limit (Kestrel's
/// 100), as HttpClient does. Connections that will take no more streams leave the pool at once.
/// </summary>
internal sealed class WorkerConnectionPool(string worker, string socketPath, Action<WorkerConnectionPool> onEmpty)
{
    // The dispatcher's --worker-connections bounds the streams per worker; this bounds the sockets if it is very large.
    private const int MaxConnections = 64;
    private const int MaxRefusingConnections = 3;

    private readonly Lock _lock = new();
    private volatile WorkerConnection[] _connections = [];
    private Task<WorkerConnection>? _opening;

    public string Worker => worker;

    /// <summary>
    /// Sends the request on a connection of its own, which ends with it: for a request sent again after
    /// its connection was lost, so that if it was the one that broke the connection, it breaks only its own.
    /// </summary>
    /// <exception cref="RequestNotSentException">The worker could not be connected to.</exception>
    public async ValueTask<StartResult> StartAloneAsync(WorkerStream stream, ReadOnlyMemory<byte> headerBlock, long headerListSize, CancellationToken cancellationToken)
    {
        var connection = await WorkerConnection.OpenAsync(worker, socketPath, static _ => { }, singleUse: true).WaitAsync(cancellationToken);
        return connection.TryStart(stream, headerBlock.Span, headerListSize) switch
        {
            StartResult.Busy => throw new RequestNotSentException($"worker {worker} closed a new connection before taking the request"),
            var result => result,
        };
    }

    /// <summary>Sends the request on a connection to this worker, opening one if every one is full.</summary>
    /// <exception cref="RequestNotSentException">The worker could not be connected to, or kept closing new connections.</exception>
    public async ValueTask<StartResult> StartAsync(WorkerStream stream, ReadOnlyMemory<byte> headerBlock, long headerListSize, CancellationToken cancellationToken)
    {
        // A new connection may be full already, its streams taken by the requests that waited with this
        // one: then another is opened (MaxConnections bounds that). One that takes no stream at all (a
        // worker on its way out) counts against a few tries, so that this is never a spin.
        var refusing = 0;
        while (true)
        {
            if (LeastBusy() is { } connection && connection.TryStart(stream, headerBlock.Span, headerListSize) is not StartResult.Busy and var result)
            {
                return result;
            }
            var opened = await OpenOneAsync(cancellationToken);
            var onOpened = opened.TryStart(stream, headerBlock.Span, headerListSize);
            if (onOpened != StartResult.Busy)
            {
                return onOpened;
            }
            if (!opened.AcceptsStreams && opened.ActiveStreams == 0 && ++refusing == MaxRefusingConnections)
            {
                throw new RequestNotSentException($"worker {worker} closed {MaxRefusingConnections} new connections before taking the request");
            }
        }
    }

    private WorkerConnection? LeastBusy()
    {
        WorkerConnection? best = null;
        foreach (var connection in _connections)
        {
            if (connection.AcceptsStreams && (best is null || connection.ActiveStreams < best.ActiveStreams))
            {
                best = connection;
            }
        }
        return best;
    }

    // Requests that find every connection full share one connection attempt.
    private Task<WorkerConnection> OpenOneAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_opening is { } pending)
            {
                return pending.WaitAsync(cancellationToken);
            }
            if (_connections.Length >= MaxConnections)
            {
                throw new HttpRequestException($"worker {worker} has {MaxConnections} HTTP/2 connections, each with as many streams as it allows");
            }
            var opening = OpenAsync();
            _opening = opening.IsCompleted ? null : opening;
            return opening.WaitAsync(cancellationToken);
        }
    }

    private async Task<WorkerConnection> OpenAsync()
    {
        try
        {
            // Not the request's token: the connection serves every request after it.
            var connection = await WorkerConnection.OpenAsync(worker, socketPath, Retire);
            lock (_lock)
            {
                if (connection.AcceptsStreams || connection.ActiveStreams > 0)
                {
                    _connections = [.. _connections, connection];
                }
            }
            return connection;
        }
        finally
        {
            lock (_lock)
            {
                _opening = null;
            }
        }
    }

    private void Retire(WorkerConnection connection)
    {
        bool empty;
        lock (_lock)
        {
            _connections = [.. _connections.Where(open => open != connection)];
            empty = _connections.Length == 0 && _opening is null;
        }
        if (empty)
        {
            onEmpty(this); // Its worker is gone, most likely: recycled, reloaded or dead.
        }
    }
}
