using System.Buffers;

namespace Supervisor.Proxy.Http2;

/// <summary>
/// One request on a <see cref="WorkerConnection"/>: its response headers, the body as it arrives, the
/// trailers. The connection's read loop feeds it; the front reads the body from it, and each octet
/// read is given back to the worker as stream window, so a slow client holds at most
/// <see cref="WorkerConnection.StreamWindow"/> octets here and the worker waits for the rest.
/// </summary>
internal sealed class WorkerStream
{
    // Continuations run inline: the front resumes on the read loop's thread, once what was read is
    // parsed, without a hop through the thread pool (measured: bench/experiments/h2-direct).
    private readonly TaskCompletionSource _headers = new();
    private readonly Queue<(byte[] Buffer, int Offset, int Length)> _data = new();
    private (byte[] Buffer, int Offset, int Length) _head; // The segment being read, taken from _data.
    private readonly Lock _lock = new();
    private WorkerConnection? _connection;
    private TaskCompletionSource<bool>? _reader;
    private int _unacknowledged;
    private bool _ended;
    private Exception? _failure;

    public int Id { get; private set; }

    /// <summary>Completes when the response's status and headers are here; fails if the stream failed first.</summary>
    public Task HeadersArrived => _headers.Task;

    /// <summary>The response's status, once <see cref="HeadersArrived"/>.</summary>
    public int Status { get; private set; }

    /// <summary>The response's header fields, pseudo-headers included, once <see cref="HeadersArrived"/>.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Headers { get; private set; } = [];

    /// <summary>The trailers, once the body has been read to its end.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Trailers { get; private set; } = [];

    /// <summary>Called by the connection, under its lock, when the stream is given its id.</summary>
    public void Attach(WorkerConnection connection, int id)
    {
        _connection = connection;
        Id = id;
    }

    /// <summary>A header block for this stream: the response's (1xx are skipped), or its trailers.</summary>
    /// <returns>True when the response headers arrived and the proxy may be told.</returns>
    public bool OnHeaders(List<KeyValuePair<string, string>> fields, bool endStream)
    {
        if (Status == 0)
        {
            var status = fields.Find(field => field.Key == ":status").Value;
            if (!int.TryParse(status, out var code) || code is < 100 or > 999)
            {
                throw new IOException($"a response without a valid :status ('{status}')");
            }
            if (code < 200)
            {
                return false; // 100 Continue, 103 Early Hints: informational, not forwarded.
            }
            Status = code;
            Headers = [.. fields];
        }
        else if (!endStream)
        {
            throw new IOException("a second header block that does not end the stream");
        }
        else
        {
            Trailers = [.. fields];
        }
        if (endStream)
        {
            End(null);
        }
        return true;
    }

    /// <summary>Tells the front its response has come (after the read loop has parsed what it read).</summary>
    public void Publish() => _headers.TrySetResult();

    public void OnData(ReadOnlySpan<byte> payload, bool endStream)
    {
        if (payload.Length > 0)
        {
            var copy = ArrayPool<byte>.Shared.Rent(payload.Length);
            payload.CopyTo(copy);
            lock (_lock)
            {
                if (_ended)
                {
                    ArrayPool<byte>.Shared.Return(copy);
                    return;
                }
                _data.Enqueue((copy, 0, payload.Length));
            }
        }
        if (endStream)
        {
            End(null);
        }
        else
        {
            WakeReader();
        }
    }

    /// <summary>Ends the stream with an error: before the headers the proxy answers 502, after them the body read fails.</summary>
    public void Fail(Exception failure)
    {
        End(failure);
        if (failure is OperationCanceledException canceled)
        {
            _headers.TrySetCanceled(canceled.CancellationToken);
        }
        else
        {
            _headers.TrySetException(failure);
        }
    }

    /// <summary>The proxy gave up (timeout, client gone): the worker is told to stop with RST_STREAM.</summary>
    public void Cancel(CancellationToken token)
    {
        _connection?.Reset(this, Http2Frame.ErrorCode.Cancel);
        Fail(new OperationCanceledException("the request was canceled before the worker finished its response", token));
    }

    public async ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        while (true)
        {
            TaskCompletionSource<bool> reader;
            lock (_lock)
            {
                if (_head.Buffer is not null || _data.Count > 0)
                {
                    return Take(destination.Span);
                }
                if (_ended)
                {
                    return _failure is null ? 0 : throw new IOException(_failure.Message, _failure);
                }
                reader = _reader = new TaskCompletionSource<bool>();
            }
            using (cancellationToken.UnsafeRegister(static state => ((WorkerStream)state!).Cancel(default), this))
            {
                await reader.Task.ConfigureAwait(false);
            }
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    /// <summary>The proxy is done with the body: a stream not yet ended is reset, and its buffers are returned.</summary>
    public void Abandon()
    {
        bool ended;
        lock (_lock)
        {
            ended = _ended;
        }
        if (!ended)
        {
            _connection?.Reset(this, Http2Frame.ErrorCode.Cancel);
            End(new IOException("the response body was abandoned"));
        }
        lock (_lock)
        {
            if (_head.Buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(_head.Buffer);
                _head = default;
            }
            while (_data.TryDequeue(out var segment))
            {
                ArrayPool<byte>.Shared.Return(segment.Buffer);
            }
        }
    }

    // Under _lock.
    private int Take(Span<byte> destination)
    {
        var copied = 0;
        while (copied < destination.Length && (_head.Buffer is not null || _data.TryDequeue(out _head)))
        {
            var count = Math.Min(_head.Length, destination.Length - copied);
            _head.Buffer.AsSpan(_head.Offset, count).CopyTo(destination[copied..]);
            copied += count;
            if (count < _head.Length)
            {
                _head = (_head.Buffer, _head.Offset + count, _head.Length - count);
            }
            else
            {
                ArrayPool<byte>.Shared.Return(_head.Buffer);
                _head = default;
            }
        }
        _unacknowledged += copied;
        if (!_ended && _unacknowledged >= WorkerConnection.StreamWindow / 2)
        {
            _connection?.GrantStreamWindow(Id, _unacknowledged);
            _unacknowledged = 0;
        }
        return copied;
    }

    private void End(Exception? failure)
    {
        lock (_lock)
        {
            if (_ended)
            {
                return;
            }
            _ended = true;
            _failure = failure;
        }
        WakeReader();
    }

    private void WakeReader()
    {
        TaskCompletionSource<bool>? reader;
        lock (_lock)
        {
            reader = _reader;
            _reader = null;
        }
        reader?.TrySetResult(true);
    }
}
