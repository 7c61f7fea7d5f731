using System.Net.Sockets;

namespace Supervisor.Proxy.Http2;

/// <summary>
/// One HTTP/2 cleartext connection to a worker's Unix socket: the socket and its two loops around a
/// <see cref="ClientSession"/>, which holds the protocol state. Every call into the session is made under
/// one lock; the streams it touched are signalled after the lock is released.
/// <para>
/// Writes: requests append frames to the session's output, and one flush at a time, queued to the thread
/// pool, sends whatever has gathered, so one write carries the HEADERS of many requests. Reads: one loop
/// hands what arrives to the session and wakes the streams it fed; responses continue inline.
/// </para>
/// <para>
/// Ends: the worker's GOAWAY retires the connection (no new stream; the open ones finish); a protocol
/// error sends GOAWAY and fails every stream; a lost socket fails every stream. In each case a stream
/// whose request never left the socket fails as not sent, so the forwarder can send it again.
/// </para>
/// </summary>
internal sealed class WorkerConnection : IStreamOwner
{
    // The worker's SETTINGS come at once from a live Kestrel; a worker silent this long is not taking
    // connections, and the request goes elsewhere.
    private static readonly TimeSpan SettingsTimeout = TimeSpan.FromSeconds(10);

    // After a protocol error, how long the GOAWAY may take to leave before the socket is closed anyway.
    private static readonly TimeSpan GoAwayLinger = TimeSpan.FromSeconds(1);

    private readonly Socket _socket;
    private readonly string _worker;
    private readonly Action<WorkerConnection> _onRetired;
    private readonly Lock _lock = new();
    private readonly ClientSession _session;
    private readonly TaskCompletionSource _settingsReceived = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _flushing;
    private bool _closed;
    private bool _disposeAfterFlush;
    private int _retired;
    private volatile int _activeStreams;
    private volatile bool _acceptsStreams = true;

    private WorkerConnection(Socket socket, string worker, Action<WorkerConnection> onRetired, bool singleUse)
    {
        _socket = socket;
        _worker = worker;
        _onRetired = onRetired;
        _session = new ClientSession(worker, singleUse);
    }

    /// <summary>Streams in flight (read without the lock: the pool only uses it to choose).</summary>
    public int ActiveStreams => _activeStreams;

    /// <summary>False while the connection is full or congested, and for good once it is retired.</summary>
    public bool AcceptsStreams => _acceptsStreams;

    /// <summary>Connects, sends the preface and waits for the worker's SETTINGS, so that its limits are known before the first request.</summary>
    /// <param name="singleUse">The connection takes one request and closes when it ends.</param>
    /// <exception cref="RequestNotSentException">The worker cannot be connected to, or does not answer.</exception>
    public static async Task<WorkerConnection> OpenAsync(string worker, string socketPath, Action<WorkerConnection> onRetired, bool singleUse = false)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath));
        }
        catch (SocketException exception)
        {
            socket.Dispose();
            // Refused or missing: nothing listens there any more. Busy (a full backlog): the worker lives.
            var unreachable = exception.SocketErrorCode is SocketError.ConnectionRefused or SocketError.AddressNotAvailable
                || exception.SocketErrorCode == SocketError.NotConnected || !File.Exists(socketPath);
            throw new RequestNotSentException($"cannot connect to worker {worker}: {exception.Message}", unreachable, exception);
        }
        var connection = new WorkerConnection(socket, worker, onRetired, singleUse);
        connection.ScheduleFlush();
        _ = connection.ReadLoopAsync();
        try
        {
            await connection._settingsReceived.Task.WaitAsync(SettingsTimeout);
        }
        catch (TimeoutException)
        {
            connection.OnConnectionError(new Http2ConnectionException(Http2Frame.ErrorCode.SettingsTimeout, $"no SETTINGS within {SettingsTimeout.TotalSeconds} s"));
            throw new RequestNotSentException($"worker {worker} sent no SETTINGS within {SettingsTimeout.TotalSeconds} s of a new connection");
        }
        catch (Exception exception) when (exception is not RequestNotSentException)
        {
            throw new RequestNotSentException($"worker {worker} closed a new connection before its SETTINGS: {exception.Message}", innerException: exception);
        }
        return connection;
    }

    /// <summary>Sends <paramref name="stream"/>'s request unless this connection cannot take it now.</summary>
    /// <param name="headerListSize">The request's header list size as SETTINGS_MAX_HEADER_LIST_SIZE counts it.</param>
    public StartResult TryStart(WorkerStream stream, ReadOnlySpan<byte> headerBlock, long headerListSize)
    {
        lock (_lock)
        {
            if (_closed || !_session.CanOpenStream)
            {
                return StartResult.Busy;
            }
            if (headerListSize > _session.PeerMaxHeaderListSize)
            {
                return StartResult.HeaderListTooLarge;
            }
            _session.Open(stream, headerBlock, this);
            PublishState();
        }
        ScheduleFlush();
        return StartResult.Started;
    }

    /// <summary>Ends a stream from this side with RST_STREAM <paramref name="errorCode"/>, unless it has already ended.</summary>
    public void Reset(WorkerStream stream, int errorCode, Exception failure)
    {
        WorkerStream[] touched;
        lock (_lock)
        {
            if (_closed)
            {
                return;
            }
            _session.Reset(stream, errorCode, failure);
            touched = _session.TakeTouched();
            PublishState();
        }
        Signal(touched);
        ScheduleFlush();
    }

    /// <summary>Gives back window for octets the forwarder has read from a stream.</summary>
    public void GrantStreamWindow(WorkerStream stream, int increment)
    {
        lock (_lock)
        {
            if (_closed)
            {
                return;
            }
            _session.GrantStreamWindow(stream, increment);
        }
        ScheduleFlush();
    }

    // The flush runs as a thread-pool work item, not on the request's own thread: a request's thread
    // that sent at once would send one request per write, and the worker would wake for each.
    // Queued, it sends whatever the other requests appended meanwhile. Measured (bench/README.md):
    // flushing inline cost the workers 20-33 µs per request instead of 13-15; waiting for the pool to
    // have nothing else queued before flushing lost 8 of 8 pairs to this.
    private void ScheduleFlush()
    {
        lock (_lock)
        {
            if (_flushing || !_session.Output.HasPending || (_closed && !_disposeAfterFlush))
            {
                return;
            }
            _flushing = true;
        }
        ThreadPool.UnsafeQueueUserWorkItem(static connection => _ = connection.FlushAsync(), this, preferLocal: false);
    }

    private async Task FlushAsync()
    {
        try
        {
            while (true)
            {
                byte[] buffer;
                int length;
                lock (_lock)
                {
                    if (!_session.Output.HasPending)
                    {
                        _flushing = false;
                        if (_disposeAfterFlush)
                        {
                            _socket.Dispose(); // The GOAWAY is out: the connection ends here.
                        }
                        return;
                    }
                    (buffer, length) = _session.Output.Take();
                }
                for (var sent = 0; sent < length;)
                {
                    var count = await _socket.SendAsync(buffer.AsMemory(sent, length - sent), SocketFlags.None);
                    _session.Output.OnSent(count);
                    sent += count;
                }
                lock (_lock)
                {
                    _session.Output.Return(buffer);
                }
            }
        }
        catch (Exception exception)
        {
            // Whatever failed, the writer stops here, so the connection must end with it.
            lock (_lock)
            {
                _flushing = false;
            }
            OnConnectionLost(new HttpRequestException($"worker {_worker} stopped reading its connection: {exception.Message}", exception));
        }
    }

    private async Task ReadLoopAsync()
    {
        // Room for a whole frame (SETTINGS_MAX_FRAME_SIZE is never raised) and then some.
        var buffer = new byte[64 * 1024];
        var end = 0;
        try
        {
            while (true)
            {
                var read = await _socket.ReceiveAsync(buffer.AsMemory(end), SocketFlags.None);
                if (read == 0)
                {
                    OnConnectionLost(new HttpRequestException($"worker {_worker} closed its connection"));
                    return;
                }
                end += read;
                WorkerStream[] touched;
                int consumed;
                bool settingsReceived, finished;
                lock (_lock)
                {
                    if (_closed)
                    {
                        return;
                    }
                    consumed = _session.Receive(buffer.AsSpan(0, end));
                    touched = _session.TakeTouched();
                    settingsReceived = _session.PeerSettingsReceived;
                    finished = _session.Exhausted && _session.ActiveStreams == 0;
                    PublishState();
                }
                // The responses parsed in one read continue only now, when the rest of what was read
                // (their body, most often) is already in their streams.
                Signal(touched);
                if (settingsReceived)
                {
                    _settingsReceived.TrySetResult();
                }
                ScheduleFlush();
                buffer.AsSpan(consumed, end - consumed).CopyTo(buffer);
                end -= consumed;
                if (finished)
                {
                    OnConnectionLost(new HttpRequestException($"worker {_worker} closed the connection (GOAWAY)"));
                    return;
                }
            }
        }
        catch (Http2ConnectionException exception)
        {
            OnConnectionError(exception);
        }
        catch (HpackException exception)
        {
            OnConnectionError(new Http2ConnectionException(Http2Frame.ErrorCode.CompressionError, exception.Message));
        }
        catch (Exception exception)
        {
            OnConnectionLost(new HttpRequestException($"worker {_worker}'s connection failed: {exception.Message}", exception));
        }
    }

    // Under _lock: what the pool reads without it.
    private void PublishState()
    {
        _activeStreams = _session.ActiveStreams;
        _acceptsStreams = !_closed && _session.CanOpenStream;
        if ((_closed || _session.Exhausted) && Interlocked.Exchange(ref _retired, 1) == 0)
        {
            // Off the pool's list at once: it will never take another stream.
            ThreadPool.UnsafeQueueUserWorkItem(static connection => connection._onRetired(connection), this, preferLocal: false);
        }
    }

    // The worker broke the protocol: tell it why (GOAWAY), fail every stream, and close once the GOAWAY is out.
    private void OnConnectionError(Http2ConnectionException error)
    {
        var reason = new HttpRequestException($"worker {_worker} broke HTTP/2: {error.Message} ({Http2Frame.ErrorCode.Name(error.ErrorCode)})", error);
        WorkerStream[] touched;
        lock (_lock)
        {
            if (_closed)
            {
                return;
            }
            _session.WriteGoAway(error.ErrorCode, error.Message);
            touched = End(reason);
            _disposeAfterFlush = true;
        }
        Signal(touched);
        ScheduleFlush();
        _ = Task.Delay(GoAwayLinger).ContinueWith(static (_, socket) => ((Socket)socket!).Dispose(), _socket, TaskScheduler.Default);
    }

    private void OnConnectionLost(Exception reason)
    {
        WorkerStream[] touched;
        lock (_lock)
        {
            if (_closed)
            {
                return;
            }
            touched = End(reason);
        }
        _socket.Dispose();
        Signal(touched);
    }

    // Under _lock.
    private WorkerStream[] End(Exception reason)
    {
        _closed = true;
        _session.FailAll(reason);
        PublishState();
        _settingsReceived.TrySetException(reason);
        return _session.TakeTouched();
    }

    private static void Signal(WorkerStream[] streams)
    {
        foreach (var stream in streams)
        {
            stream.Signal();
        }
    }
}

/// <summary>What <see cref="WorkerConnection.TryStart"/> did with a request.</summary>
internal enum StartResult
{
    Started,

    /// <summary>The connection is at the worker's stream limit, congested, or retired: try another.</summary>
    Busy,

    /// <summary>The request's headers are above the worker's SETTINGS_MAX_HEADER_LIST_SIZE: no connection to it will take them.</summary>
    HeaderListTooLarge,
}
