namespace Supervisor.Proxy.Http2;

/// <summary>
/// The HTTP/2 connections to one worker. A request goes on the connection with the fewest streams in
/// flight; new connections are opened only when every one is at the worker's stream limit (Kestrel's
/// 100), as HttpClient does, and as many at once as the requests waiting for one need, so a burst of a
/// thousand requests waits for one connection's opening, not ten in a row. Connections that will take
/// no more streams leave the pool at once.
/// </summary>
internal sealed class WorkerConnectionPool(string worker, string socketPath, Action<WorkerConnectionPool> onEmpty)
{
    // The dispatcher's --worker-connections bounds the streams per worker; this bounds the sockets if it is very large.
    private const int MaxConnections = 64;
    private const int MaxRefusingConnections = 3;

    // What a connection being opened is counted on to take, before its SETTINGS say: Kestrel's default.
    private const int StreamsPerNewConnection = 100;

    private readonly Lock _lock = new();
    private volatile WorkerConnection[] _connections = [];
    private int _opening;
    private int _waiting;
    // Completed whenever an opening ends: true if it added a connection, false if the worker closed it at
    // once; faulted with the reason if the worker could not be connected to.
    private TaskCompletionSource<bool> _opened = new(TaskCreationOptions.RunContinuationsAsynchronously);

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
        // one: then it waits for the next (MaxConnections bounds them). Connections that open but take no
        // stream at all (a worker on its way out) count against a few tries, so that this is never a spin.
        var refusing = 0;
        while (true)
        {
            if (LeastBusy() is { } connection && connection.TryStart(stream, headerBlock.Span, headerListSize) is not StartResult.Busy and var result)
            {
                return result;
            }
            if (!await WaitForNewConnectionAsync(cancellationToken) && ++refusing == MaxRefusingConnections)
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

    // Waits until a connection being opened is open (true), or was closed by the worker at once (false),
    // or could not be opened (this throws its reason). Starts another opening when those under way
    // cannot take every request waiting.
    private async Task<bool> WaitForNewConnectionAsync(CancellationToken cancellationToken)
    {
        Task<bool> opened;
        bool openAnother;
        lock (_lock)
        {
            _waiting++;
            // Taken before any opening starts: one that fails at once (a socket that refuses) completes
            // this very task, and a waiter that took it afterwards would wait for the next opening instead.
            opened = _opened.Task;
            openAnother = _opening * StreamsPerNewConnection < _waiting;
            if (openAnother && _connections.Length + _opening >= MaxConnections)
            {
                _waiting--;
                throw new HttpRequestException($"worker {worker} has {MaxConnections} HTTP/2 connections, each with as many streams as it allows");
            }
            if (openAnother)
            {
                _opening++;
            }
        }
        if (openAnother)
        {
            _ = OpenAsync();
        }
        try
        {
            return await opened.WaitAsync(cancellationToken);
        }
        finally
        {
            lock (_lock)
            {
                _waiting--;
            }
        }
    }

    private async Task OpenAsync()
    {
        WorkerConnection? connection = null;
        Exception? failure = null;
        try
        {
            // Not a request's token: the connection serves every request after it.
            connection = await WorkerConnection.OpenAsync(worker, socketPath, Retire);
        }
        catch (Exception exception)
        {
            failure = exception;
        }
        TaskCompletionSource<bool> done;
        var added = false;
        lock (_lock)
        {
            _opening--;
            if (connection is not null && (connection.AcceptsStreams || connection.ActiveStreams > 0))
            {
                _connections = [.. _connections, connection];
                added = true;
            }
            done = _opened;
            _opened = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        // Whoever waited tries again: on this connection, or (it failed) with its reason.
        if (failure is null)
        {
            done.TrySetResult(added);
        }
        else
        {
            done.TrySetException(failure);
        }
    }

    private void Retire(WorkerConnection connection)
    {
        bool empty;
        lock (_lock)
        {
            _connections = [.. _connections.Where(open => open != connection)];
            empty = _connections.Length == 0 && _opening == 0;
        }
        if (empty)
        {
            onEmpty(this); // Its worker is gone, most likely: recycled, reloaded or dead.
        }
    }
}
