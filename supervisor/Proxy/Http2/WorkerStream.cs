using System.Buffers;
using System.Globalization;

namespace Supervisor.Proxy.Http2;

/// <summary>Where one request's response stands (RFC 9113 8.1, from the client's side of a stream).</summary>
internal enum ResponseState
{
    /// <summary>Not yet on a connection.</summary>
    Created,

    /// <summary>The request is sent (queued on its connection); informational (1xx) heads may come, then the final head.</summary>
    AwaitingHead,

    /// <summary>The final head has come: DATA, then trailers or END_STREAM.</summary>
    ReceivingBody,

    /// <summary>END_STREAM came with a well-formed response. Terminal.</summary>
    Completed,

    /// <summary>Reset by either side, malformed, or lost with its connection. Terminal.</summary>
    Failed,
}

/// <summary>
/// One request on a <see cref="WorkerConnection"/> and its response: the head, the body as it arrives,
/// the trailers. The connection's <see cref="ClientSession"/> feeds it; the forwarder reads from it.
/// <para>
/// Protocol state changes only under the connection's lock, through the <c>On…</c> methods, each of
/// which checks that its event may happen in the current <see cref="State"/> and throws a
/// <see cref="Http2StreamException"/> (the response is malformed: RST_STREAM PROTOCOL_ERROR) when it may
/// not. Waking the forwarder happens afterwards, outside that lock, in <see cref="Signal"/>. Every stream
/// ends in <see cref="ResponseState.Completed"/> or <see cref="ResponseState.Failed"/>, and leaves its
/// connection's table as it does.
/// </para>
/// <para>
/// Flow control: each octet the forwarder reads is given back to the worker as stream window, so a
/// response holds at most its window here and the worker waits for the rest. The window starts at
/// <see cref="ClientSession.InitialStreamWindow"/>. Once the forwarder says the client keeps up
/// (<see cref="ClientKeepsUp"/>), it doubles whenever the forwarder has read all there was, up to
/// <see cref="ClientSession.MaxStreamWindow"/>: a client that never reads holds the least, one that keeps
/// up is not slowed by the window (as TCP's receive window autotuning, and HttpClient's dynamic HTTP/2 window).
/// </para>
/// </summary>
internal sealed class WorkerStream(bool isHeadRequest)
{
    /// <summary>The most informational (1xx) heads a response may have before it is taken as malformed.</summary>
    private const int MaxInformationalHeads = 8;

    // Continuations run inline: the forwarder resumes on the read loop's thread, once the read is
    // parsed, without a hop through the thread pool (measured: bench/experiments/h2-direct).
    private readonly TaskCompletionSource _head = new();
    private readonly Queue<(byte[] Buffer, int Offset, int Length)> _data = new();
    private readonly Lock _lock = new();
    private (byte[] Buffer, int Offset, int Length) _segment; // Being read, taken from _data.
    private IStreamOwner? _owner;
    private TaskCompletionSource<bool>? _reader;
    private int _unacknowledged;
    private int _window = ClientSession.InitialStreamWindow;
    private volatile bool _clientKeepsUp;
    private int _informationalHeads;
    private long _declaredLength = -1;
    private long _receivedLength;
    private bool _bodyEnded;
    private Exception? _failure;

    public int Id { get; private set; }

    /// <summary>Where the response stands; changed only under the connection's lock.</summary>
    public ResponseState State { get; private set; }

    /// <summary>
    /// Where the end of this request's HEADERS lies in its connection's output, counted from the
    /// connection's start: the request may have reached the worker only once output up to here is sent.
    /// </summary>
    public long RequestEnd { get; private set; }

    /// <summary>Octets the worker may still send on this stream before the client gives more window.</summary>
    public int ReceiveWindow { get; set; }

    /// <summary>The worker's window for this client on this stream: unused (no request has a body here), but kept valid.</summary>
    public long SendWindow { get; set; }

    /// <summary>Completes when the final head is here; fails (502) or is canceled (504, client gone) if the stream ends first.</summary>
    public Task HeadArrived => _head.Task;

    public int Status { get; private set; }

    /// <summary>The response's fields, without the :status pseudo-header, once <see cref="HeadArrived"/>.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Headers { get; private set; } = [];

    /// <summary>The trailers, once the body has been read to its end.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Trailers { get; private set; } = [];

    /// <summary>True when the body is here whole or some of it is waiting to be read.</summary>
    public bool HasBodyToRead
    {
        get
        {
            lock (_lock)
            {
                return _segment.Buffer is not null || _data.Count > 0 || _bodyEnded;
            }
        }
    }

    /// <summary>Why the stream failed, once <see cref="State"/> is <see cref="ResponseState.Failed"/>.</summary>
    public Exception? Failure => _failure;

    /// <summary>The connection gave it its id (under the connection's lock).</summary>
    public void OnOpened(IStreamOwner owner, int id, long requestEnd, int window)
    {
        Expect(ResponseState.Created, "opened twice");
        _owner = owner;
        Id = id;
        RequestEnd = requestEnd;
        ReceiveWindow = window;
        State = ResponseState.AwaitingHead;
    }

    /// <summary>A header block for this stream, decoded: a head (informational or final), or trailers.</summary>
    /// <param name="tooLarge">The block held more than the header list limit; some fields are missing.</param>
    /// <exception cref="Http2StreamException">The block may not come now, or is malformed.</exception>
    public void OnHeaderBlock(List<KeyValuePair<string, string>> fields, bool endStream, bool tooLarge)
    {
        if (tooLarge)
        {
            throw new Http2StreamException(Http2Frame.ErrorCode.ProtocolError, $"response headers larger than {ClientSession.MaxResponseHeaderListSize} octets");
        }
        switch (State)
        {
            case ResponseState.AwaitingHead:
                OnHead(fields, endStream);
                break;
            case ResponseState.ReceivingBody when endStream:
                ResponseFields.CheckTrailers(fields);
                Trailers = [.. fields];
                EndBody();
                break;
            case ResponseState.ReceivingBody:
                throw Malformed("a second header block that does not end the stream");
            default:
                throw Malformed($"a header block on a stream that is {State}");
        }
    }

    /// <summary>A DATA frame's payload for this stream (its padding already taken off and counted).</summary>
    /// <exception cref="Http2StreamException">DATA may not come now, or runs past the declared content-length.</exception>
    public void OnData(ReadOnlySpan<byte> payload, bool endStream)
    {
        if (State != ResponseState.ReceivingBody)
        {
            throw Malformed(State == ResponseState.AwaitingHead ? "DATA before the response's headers" : $"DATA on a stream that is {State}");
        }
        _receivedLength += payload.Length;
        if (payload.Length > 0 && !ExpectsBody)
        {
            throw Malformed($"a body in a response that has none (status {Status}{(isHeadRequest ? ", HEAD" : "")})");
        }
        if (_declaredLength >= 0 && _receivedLength > _declaredLength)
        {
            throw Malformed($"more body than its content-length of {_declaredLength}");
        }
        if (payload.Length > 0)
        {
            var copy = ArrayPool<byte>.Shared.Rent(payload.Length);
            payload.CopyTo(copy);
            lock (_lock)
            {
                _data.Enqueue((copy, 0, payload.Length));
            }
        }
        if (endStream)
        {
            EndBody();
        }
    }

    /// <summary>The stream failed: reset by the worker or by this side, or lost with its connection. Terminal.</summary>
    public void OnFailed(Exception failure)
    {
        if (State is ResponseState.Completed or ResponseState.Failed)
        {
            return;
        }
        State = ResponseState.Failed;
        lock (_lock)
        {
            _failure = failure;
            _bodyEnded = true;
        }
    }

    /// <summary>Wakes whoever waits on this stream, after the connection's lock is released; idempotent.</summary>
    public void Signal()
    {
        var failure = _failure;
        if (failure is not null)
        {
            if (failure is OperationCanceledException canceled)
            {
                _head.TrySetCanceled(canceled.CancellationToken);
            }
            else
            {
                _head.TrySetException(failure);
            }
        }
        else if (Status != 0)
        {
            _head.TrySetResult();
        }
        TaskCompletionSource<bool>? reader;
        lock (_lock)
        {
            reader = _reader;
            _reader = null;
        }
        reader?.TrySetResult(true);
    }

    /// <summary>The forwarder gives up (timeout, client gone): the worker is told to stop with RST_STREAM CANCEL.</summary>
    public void Cancel(CancellationToken token) =>
        _owner?.Reset(this, Http2Frame.ErrorCode.Cancel, new OperationCanceledException("the request was canceled before the worker finished its response", token));

    /// <summary>Reads body octets; 0 at the end of the body; throws <see cref="IOException"/> if the stream failed.</summary>
    public async ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        while (true)
        {
            TaskCompletionSource<bool>? reader = null;
            int copied = 0, grant = 0;
            lock (_lock)
            {
                if (_segment.Buffer is not null || _data.Count > 0)
                {
                    (copied, grant) = Take(destination.Span);
                }
                else if (_bodyEnded)
                {
                    return _failure is null ? 0 : throw new IOException(_failure.Message, _failure);
                }
                else
                {
                    reader = _reader = new TaskCompletionSource<bool>();
                }
            }
            if (reader is null)
            {
                if (grant > 0)
                {
                    // Outside the stream's lock: wherever both are taken, the connection's comes first.
                    _owner?.GrantStreamWindow(this, grant);
                }
                return copied;
            }
            using (cancellationToken.UnsafeRegister(static (state, token) => ((WorkerStream)state!).Cancel(token), this))
            {
                await reader.Task.ConfigureAwait(false);
            }
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    /// <summary>
    /// The forwarder's word on the client: true once it has taken enough without waiting that it is not
    /// stalled (Kestrel's buffer and the kernel's absorb the first octets whatever the client does), false
    /// once a write to it has had to wait. The window grows only while true.
    /// </summary>
    public bool ClientKeepsUp
    {
        set => _clientKeepsUp = value;
    }

    /// <summary>The forwarder is done with the stream: one not yet ended is reset (CANCEL), and its buffers are returned.</summary>
    public void Abandon()
    {
        if (_owner is { } owner && State is ResponseState.AwaitingHead or ResponseState.ReceivingBody)
        {
            owner.Reset(this, Http2Frame.ErrorCode.Cancel, new IOException("the response was abandoned by the proxy"));
        }
        lock (_lock)
        {
            if (_segment.Buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(_segment.Buffer);
                _segment = default;
            }
            while (_data.TryDequeue(out var segment))
            {
                ArrayPool<byte>.Shared.Return(segment.Buffer);
            }
        }
    }

    private bool ExpectsBody => !isHeadRequest && Status is not (StatusCodes.Status204NoContent or StatusCodes.Status304NotModified);

    private void OnHead(List<KeyValuePair<string, string>> fields, bool endStream)
    {
        var status = ResponseFields.CheckHead(fields);
        if (status < 200)
        {
            // 100 Continue, 103 Early Hints: informational, not forwarded. 101 has no place in HTTP/2.
            if (status == StatusCodes.Status101SwitchingProtocols || endStream)
            {
                throw Malformed(endStream ? $"a {status} head that ends the stream" : "a 101 response, which HTTP/2 forbids");
            }
            if (++_informationalHeads > MaxInformationalHeads)
            {
                throw Malformed($"more than {MaxInformationalHeads} informational heads");
            }
            return;
        }
        Status = status;
        Headers = [.. fields.Where(field => field.Key[0] != ':')];
        _declaredLength = ResponseFields.ContentLength(fields);
        State = ResponseState.ReceivingBody;
        if (endStream)
        {
            EndBody();
        }
    }

    private void EndBody()
    {
        if (ExpectsBody && _declaredLength >= 0 && _receivedLength != _declaredLength)
        {
            throw Malformed($"a body of {_receivedLength} octets where its content-length says {_declaredLength}");
        }
        State = ResponseState.Completed;
        lock (_lock)
        {
            _bodyEnded = true;
        }
    }

    // Under _lock: copies what is queued; returns the octets copied and the window to give back for them.
    private (int Copied, int Grant) Take(Span<byte> destination)
    {
        var copied = 0;
        while (copied < destination.Length && (_segment.Buffer is not null || _data.TryDequeue(out _segment)))
        {
            var count = Math.Min(_segment.Length, destination.Length - copied);
            _segment.Buffer.AsSpan(_segment.Offset, count).CopyTo(destination[copied..]);
            copied += count;
            if (count < _segment.Length)
            {
                _segment = (_segment.Buffer, _segment.Offset + count, _segment.Length - count);
            }
            else
            {
                ArrayPool<byte>.Shared.Return(_segment.Buffer);
                _segment = default;
            }
        }
        _unacknowledged += copied;
        if (_bodyEnded || _unacknowledged < _window / 2)
        {
            return (copied, 0);
        }
        var grant = _unacknowledged;
        _unacknowledged = 0;
        var caughtUp = _segment.Buffer is null && _data.Count == 0;
        if (caughtUp && _clientKeepsUp && _window < ClientSession.MaxStreamWindow)
        {
            var growth = Math.Min(_window, ClientSession.MaxStreamWindow - _window);
            _window += growth;
            grant += growth;
        }
        return (copied, grant);
    }

    private void Expect(ResponseState state, string what)
    {
        if (State != state)
        {
            throw new InvalidOperationException($"stream {Id} {what}: it is {State}");
        }
    }

    private static Http2StreamException Malformed(string what) => new(Http2Frame.ErrorCode.ProtocolError, what);
}

/// <summary>
/// The worker broke HTTP/2 in a way that spoils one stream only (RFC 9113 5.4.2): that stream is reset
/// with <see cref="ErrorCode"/> and its request answered 502; the connection and its other streams go on.
/// </summary>
internal sealed class Http2StreamException(int errorCode, string message) : Exception(message)
{
    public int ErrorCode { get; } = errorCode;
}

/// <summary>The checks a response's fields must pass to be forwarded (RFC 9113 8.2 and 8.3.2).</summary>
internal static class ResponseFields
{
    // Connection-specific fields make an HTTP/2 message malformed (RFC 9113 8.2.2).
    private static readonly HashSet<string> ConnectionSpecific = new(StringComparer.Ordinal)
    {
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
    };

    /// <summary>Checks a head and returns its status.</summary>
    public static int CheckHead(List<KeyValuePair<string, string>> fields)
    {
        var status = -1;
        var regularSeen = false;
        foreach (var (name, value) in fields)
        {
            if (name.StartsWith(':'))
            {
                if (regularSeen || name != ":status" || status >= 0)
                {
                    throw Malformed(regularSeen ? $"the pseudo-header {name} after a regular field" : $"the pseudo-header {name} in a response");
                }
                status = value.Length == 3 && value.All(char.IsAsciiDigit) && value[0] != '0'
                    ? int.Parse(value, CultureInfo.InvariantCulture)
                    : throw Malformed($"the :status '{value}'");
                continue;
            }
            regularSeen = true;
            CheckField(name, value);
        }
        return status >= 0 ? status : throw Malformed("a response without :status");
    }

    public static void CheckTrailers(List<KeyValuePair<string, string>> fields)
    {
        foreach (var (name, value) in fields)
        {
            if (name.StartsWith(':'))
            {
                throw Malformed($"the pseudo-header {name} in trailers");
            }
            CheckField(name, value);
        }
    }

    /// <summary>The content-length of a head, or -1 if it has none.</summary>
    public static long ContentLength(List<KeyValuePair<string, string>> fields)
    {
        long length = -1;
        foreach (var (name, value) in fields)
        {
            if (name != "content-length")
            {
                continue;
            }
            if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) || (length >= 0 && parsed != length))
            {
                throw Malformed($"the content-length '{value}'");
            }
            length = parsed;
        }
        return length;
    }

    // RFC 9113 8.2.1, and no control character a front could not send on (Kestrel refuses them in any
    // response header, as it refuses them from the app itself).
    private static void CheckField(string name, string value)
    {
        if (name.Length == 0)
        {
            throw Malformed("a field with an empty name");
        }
        foreach (var c in name)
        {
            if (c <= 0x20 || c is (>= 'A' and <= 'Z') or ':' or >= (char)0x7F)
            {
                throw Malformed($"the field name '{name}'");
            }
        }
        if (ConnectionSpecific.Contains(name))
        {
            throw Malformed($"the connection-specific field '{name}'");
        }
        if (value.Length > 0 && (value[0] is ' ' or '\t' || value[^1] is ' ' or '\t'))
        {
            throw Malformed($"a value of '{name}' with whitespace at an end");
        }
        foreach (var c in value)
        {
            if ((c < 0x20 && c != '\t') || c == 0x7F)
            {
                throw Malformed($"a control character (0x{(int)c:x2}) in the value of '{name}'");
            }
        }
    }

    private static Http2StreamException Malformed(string what) => new(Http2Frame.ErrorCode.ProtocolError, what);
}
