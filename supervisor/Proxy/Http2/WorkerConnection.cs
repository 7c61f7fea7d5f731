using System.Buffers.Binary;
using System.Net.Sockets;

namespace Supervisor.Proxy.Http2;

/// <summary>
/// One HTTP/2 cleartext connection to a worker's Unix socket, for requests without a body.
/// <para>
/// Writes: frames are appended to a buffer under a lock, and one flush at a time, queued to the thread
/// pool, sends whatever has gathered, so that one write carries the HEADERS of many requests.
/// Reads: one loop parses frames and feeds each <see cref="WorkerStream"/>; responses complete inline.
/// </para>
/// </summary>
internal sealed class WorkerConnection
{
    /// <summary>The window each stream starts with (SETTINGS_INITIAL_WINDOW_SIZE): what one response may have buffered here.</summary>
    public const int StreamWindow = 256 * 1024;

    // Credited as soon as data arrives: each stream's own window bounds what is buffered, and a
    // connection window credited only as clients read would let one slow client stall the others.
    private const int ConnectionWindow = 16 * 1024 * 1024;
    private const int MaxHeaderBlock = 256 * 1024;
    private const int DefaultPeerMaxStreams = 100; // Kestrel's; replaced by the worker's SETTINGS.

    private readonly Socket _socket;
    private readonly string _worker;
    private readonly Action<WorkerConnection> _onClosed;
    private readonly Lock _lock = new();
    private readonly Dictionary<int, WorkerStream> _streams = [];
    private readonly HpackDecoder _decoder = new();
    private readonly List<KeyValuePair<string, string>> _fields = [];
    private readonly List<WorkerStream> _answered = [];
    private byte[] _pending = new byte[16 * 1024];
    private byte[] _spare = new byte[16 * 1024];
    private int _pendingLength;
    private bool _flushing;
    private int _nextStreamId = 1;
    private int _peerMaxStreams = DefaultPeerMaxStreams;
    private int _peerMaxFrame = Http2Frame.DefaultMaxPayload;
    private int _connectionUnacknowledged;
    private bool _acceptsStreams = true;
    private bool _closed;

    // A header block split over HEADERS and CONTINUATION frames.
    private byte[]? _headerBlock;
    private int _headerBlockLength;
    private int _headerBlockStream;
    private bool _headerBlockEndsStream;

    private WorkerConnection(Socket socket, string worker, Action<WorkerConnection> onClosed)
    {
        _socket = socket;
        _worker = worker;
        _onClosed = onClosed;
    }

    /// <summary>Streams in flight (read without the lock: the pool only uses it to choose).</summary>
    public int ActiveStreams => _streams.Count;

    /// <summary>False once the connection failed, closed or was told to go away: it takes no new stream.</summary>
    public bool AcceptsStreams => Volatile.Read(ref _acceptsStreams);

    public static async Task<WorkerConnection> OpenAsync(string worker, string socketPath, Action<WorkerConnection> onClosed, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken);
        }
        catch (SocketException exception)
        {
            socket.Dispose();
            throw new HttpRequestException($"cannot connect to worker {worker} at {socketPath}: {exception.Message}", exception);
        }
        var connection = new WorkerConnection(socket, worker, onClosed);
        connection.SendPreface();
        _ = connection.ReadLoopAsync();
        return connection;
    }

    /// <summary>Sends <paramref name="stream"/>'s request, whose header block is given, unless this connection is full or closing.</summary>
    public bool TryStart(WorkerStream stream, ReadOnlySpan<byte> headerBlock)
    {
        lock (_lock)
        {
            if (!_acceptsStreams || ActiveStreams >= _peerMaxStreams)
            {
                return false;
            }
            var id = _nextStreamId;
            if (id > int.MaxValue - 2)
            {
                _acceptsStreams = false; // Stream ids are spent: the pool opens a new connection.
                return false;
            }
            _nextStreamId += 2;
            stream.Attach(this, id);
            _streams[id] = stream;
            var first = true;
            do
            {
                var length = Math.Min(headerBlock.Length, _peerMaxFrame);
                var last = length == headerBlock.Length;
                var flags = (byte)((first ? Http2Frame.Flags.EndStream : 0) | (last ? Http2Frame.Flags.EndHeaders : 0));
                var frame = Append(length, first ? Http2Frame.Type.Headers : Http2Frame.Type.Continuation, flags, id);
                headerBlock[..length].CopyTo(frame);
                headerBlock = headerBlock[length..];
                first = false;
            }
            while (headerBlock.Length > 0);
        }
        ScheduleFlush();
        return true;
    }

    /// <summary>Tells the worker to stop the stream, unless it has already ended.</summary>
    public void Reset(WorkerStream stream, int errorCode)
    {
        lock (_lock)
        {
            if (!_streams.Remove(stream.Id))
            {
                return;
            }
            AppendInt32Frame(Http2Frame.Type.RstStream, stream.Id, errorCode);
        }
        ScheduleFlush();
    }

    /// <summary>Gives back window for octets the proxy has read from a stream.</summary>
    public void GrantStreamWindow(int streamId, int increment)
    {
        lock (_lock)
        {
            if (!_streams.ContainsKey(streamId))
            {
                return;
            }
            AppendInt32Frame(Http2Frame.Type.WindowUpdate, streamId, increment);
        }
        ScheduleFlush();
    }

    private void SendPreface()
    {
        lock (_lock)
        {
            var preface = Http2Frame.ClientPreface;
            preface.CopyTo(Reserve(preface.Length));
            _pendingLength += preface.Length;
            var settings = Append(12, Http2Frame.Type.Settings, 0, 0);
            WriteSetting(settings, Http2Frame.Setting.EnablePush, 0);
            WriteSetting(settings[6..], Http2Frame.Setting.InitialWindowSize, StreamWindow);
            // The connection starts with 65,535 octets of window, like every stream.
            AppendInt32Frame(Http2Frame.Type.WindowUpdate, 0, ConnectionWindow - 65_535);
        }
        ScheduleFlush();
    }

    private static void WriteSetting(Span<byte> destination, ushort id, int value)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, id);
        BinaryPrimitives.WriteInt32BigEndian(destination[2..], value);
    }

    // Under _lock: appends a frame header and returns the space for its payload.
    private Span<byte> Append(int payloadLength, byte type, byte flags, int streamId)
    {
        var frame = Reserve(Http2Frame.HeaderLength + payloadLength);
        Http2Frame.WriteHeader(frame, payloadLength, type, flags, streamId);
        _pendingLength += Http2Frame.HeaderLength + payloadLength;
        return frame.Slice(Http2Frame.HeaderLength, payloadLength);
    }

    // Under _lock: RST_STREAM and WINDOW_UPDATE, whose payload is one 32-bit value.
    private void AppendInt32Frame(byte type, int streamId, int value) =>
        BinaryPrimitives.WriteInt32BigEndian(Append(4, type, 0, streamId), value);

    private Span<byte> Reserve(int count)
    {
        if (_pending.Length - _pendingLength < count)
        {
            Array.Resize(ref _pending, Math.Max(_pending.Length * 2, _pendingLength + count));
        }
        return _pending.AsSpan(_pendingLength, count);
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
            if (_flushing || _closed)
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
                    if (_pendingLength == 0 || _closed)
                    {
                        _flushing = false;
                        return;
                    }
                    buffer = _pending;
                    length = _pendingLength;
                    _pending = _spare;
                    _pendingLength = 0;
                }
                for (var sent = 0; sent < length;)
                {
                    sent += await _socket.SendAsync(buffer.AsMemory(sent, length - sent), SocketFlags.None);
                }
                lock (_lock)
                {
                    _spare = buffer;
                }
            }
        }
        catch (Exception exception) when (exception is SocketException or ObjectDisposedException)
        {
            Close(new HttpRequestException($"worker {_worker} stopped reading its connection: {exception.Message}", exception));
        }
    }

    private async Task ReadLoopAsync()
    {
        var buffer = new byte[64 * 1024];
        int start = 0, end = 0;
        try
        {
            while (true)
            {
                var read = await _socket.ReceiveAsync(buffer.AsMemory(end), SocketFlags.None);
                if (read == 0)
                {
                    throw new IOException($"worker {_worker} closed its connection");
                }
                end += read;
                while (end - start >= Http2Frame.HeaderLength)
                {
                    var frame = buffer.AsSpan(start, end - start);
                    var length = (frame[0] << 16) | (frame[1] << 8) | frame[2];
                    if (length > Http2Frame.DefaultMaxPayload)
                    {
                        throw new IOException($"worker {_worker} sent a frame of {length} octets, above the {Http2Frame.DefaultMaxPayload} allowed");
                    }
                    if (frame.Length < Http2Frame.HeaderLength + length)
                    {
                        break;
                    }
                    var streamId = BinaryPrimitives.ReadInt32BigEndian(frame[5..]) & int.MaxValue;
                    OnFrame(frame[3], frame[4], streamId, frame.Slice(Http2Frame.HeaderLength, length));
                    start += Http2Frame.HeaderLength + length;
                }
                PublishAnswered();
                // Keep the partial frame at the front: the buffer always has room for a whole one.
                buffer.AsSpan(start, end - start).CopyTo(buffer);
                end -= start;
                start = 0;
            }
        }
        catch (Exception exception)
        {
            PublishAnswered();
            Close(exception is HttpRequestException or IOException
                ? exception
                : new IOException($"worker {_worker} broke the HTTP/2 protocol: {exception.Message}", exception));
        }
    }

    // The responses parsed in one read continue only now, when the rest of what was read (their body,
    // most often) is already in their streams.
    private void PublishAnswered()
    {
        foreach (var stream in _answered)
        {
            stream.Publish();
        }
        _answered.Clear();
    }

    private void OnFrame(byte type, byte flags, int streamId, ReadOnlySpan<byte> payload)
    {
        if (_headerBlock is not null && type != Http2Frame.Type.Continuation)
        {
            throw new IOException("a header block interrupted by another frame");
        }
        switch (type)
        {
            case Http2Frame.Type.Data:
                OnData(flags, streamId, payload);
                return;
            case Http2Frame.Type.Headers:
                payload = WithoutPadding(flags, payload);
                if ((flags & Http2Frame.Flags.Priority) != 0)
                {
                    payload = payload[5..];
                }
                _headerBlockStream = streamId;
                _headerBlockEndsStream = (flags & Http2Frame.Flags.EndStream) != 0;
                OnHeaderFragment(flags, payload);
                return;
            case Http2Frame.Type.Continuation:
                if (_headerBlock is null || streamId != _headerBlockStream)
                {
                    throw new IOException("a CONTINUATION frame without its HEADERS");
                }
                OnHeaderFragment(flags, payload);
                return;
            case Http2Frame.Type.RstStream:
                var code = BinaryPrimitives.ReadInt32BigEndian(payload);
                if (Take(streamId) is { } reset)
                {
                    reset.Fail(code == Http2Frame.ErrorCode.RefusedStream
                        ? new RefusedStreamException($"worker {_worker} refused the stream before processing it")
                        : new HttpRequestException($"worker {_worker} reset the stream (HTTP/2 error {code})"));
                }
                return;
            case Http2Frame.Type.Settings:
                if ((flags & Http2Frame.Flags.Ack) == 0)
                {
                    OnSettings(payload);
                }
                return;
            case Http2Frame.Type.Ping:
                if ((flags & Http2Frame.Flags.Ack) == 0)
                {
                    lock (_lock)
                    {
                        payload.CopyTo(Append(8, Http2Frame.Type.Ping, Http2Frame.Flags.Ack, 0));
                    }
                    ScheduleFlush();
                }
                return;
            case Http2Frame.Type.GoAway:
                OnGoAway(BinaryPrimitives.ReadInt32BigEndian(payload) & int.MaxValue, BinaryPrimitives.ReadInt32BigEndian(payload[4..]));
                return;
            case Http2Frame.Type.PushPromise:
                throw new IOException("a PUSH_PROMISE, though push was disabled");
            default:
                return; // WINDOW_UPDATE (this client sends no data), PRIORITY, and unknown types.
        }
    }

    private void OnData(byte flags, int streamId, ReadOnlySpan<byte> payload)
    {
        var frameLength = payload.Length;
        payload = WithoutPadding(flags, payload);
        _connectionUnacknowledged += frameLength;
        var padding = frameLength - payload.Length;
        var endStream = (flags & Http2Frame.Flags.EndStream) != 0;
        var grantConnection = _connectionUnacknowledged >= ConnectionWindow / 2;
        if (grantConnection || padding > 0)
        {
            lock (_lock)
            {
                if (grantConnection)
                {
                    AppendInt32Frame(Http2Frame.Type.WindowUpdate, 0, _connectionUnacknowledged);
                    _connectionUnacknowledged = 0;
                }
                // Padding counts against the stream's window but is never read: given back at once.
                if (padding > 0 && !endStream && _streams.ContainsKey(streamId))
                {
                    AppendInt32Frame(Http2Frame.Type.WindowUpdate, streamId, padding);
                }
            }
            ScheduleFlush();
        }
        var stream = endStream ? Take(streamId) : Find(streamId);
        stream?.OnData(payload, endStream);
    }

    private void OnHeaderFragment(byte flags, ReadOnlySpan<byte> fragment)
    {
        if ((flags & Http2Frame.Flags.EndHeaders) != 0 && _headerBlock is null)
        {
            OnHeaderBlock(fragment); // The usual case: the whole block in one frame.
            return;
        }
        _headerBlock ??= new byte[Math.Max(fragment.Length, 4096)];
        if (_headerBlockLength + fragment.Length > MaxHeaderBlock)
        {
            throw new IOException($"a header block above {MaxHeaderBlock} octets");
        }
        if (_headerBlock.Length < _headerBlockLength + fragment.Length)
        {
            Array.Resize(ref _headerBlock, Math.Max(_headerBlock.Length * 2, _headerBlockLength + fragment.Length));
        }
        fragment.CopyTo(_headerBlock.AsSpan(_headerBlockLength));
        _headerBlockLength += fragment.Length;
        if ((flags & Http2Frame.Flags.EndHeaders) != 0)
        {
            var block = _headerBlock;
            _headerBlock = null;
            OnHeaderBlock(block.AsSpan(0, _headerBlockLength));
            _headerBlockLength = 0;
        }
    }

    private void OnHeaderBlock(ReadOnlySpan<byte> block)
    {
        _fields.Clear();
        _decoder.Decode(block, _fields); // Always: the dynamic table must follow every block, even a discarded one.
        var endStream = _headerBlockEndsStream;
        var stream = endStream ? Take(_headerBlockStream) : Find(_headerBlockStream);
        if (stream is null)
        {
            return; // A stream this side reset.
        }
        try
        {
            if (stream.OnHeaders(_fields, endStream))
            {
                _answered.Add(stream);
            }
        }
        catch (IOException exception)
        {
            Reset(stream, Http2Frame.ErrorCode.ProtocolError);
            stream.Fail(new HttpRequestException($"worker {_worker} sent {exception.Message}", exception));
        }
    }

    private void OnSettings(ReadOnlySpan<byte> payload)
    {
        lock (_lock)
        {
            for (; payload.Length >= 6; payload = payload[6..])
            {
                var value = BinaryPrimitives.ReadInt32BigEndian(payload[2..]);
                switch (BinaryPrimitives.ReadUInt16BigEndian(payload))
                {
                    case Http2Frame.Setting.MaxConcurrentStreams:
                        _peerMaxStreams = value;
                        break;
                    case Http2Frame.Setting.MaxFrameSize:
                        _peerMaxFrame = Math.Clamp(value, Http2Frame.DefaultMaxPayload, 16_777_215); // RFC 9113's bounds.
                        break;
                }
            }
            Append(0, Http2Frame.Type.Settings, Http2Frame.Flags.Ack, 0);
        }
        ScheduleFlush();
    }

    // The worker closes the connection (idle for its keep-alive timeout, or shutting down): streams up
    // to lastStreamId will be answered, later ones were never processed, and no new one may start here.
    private void OnGoAway(int lastStreamId, int errorCode)
    {
        List<WorkerStream> refused;
        lock (_lock)
        {
            _acceptsStreams = false;
            refused = [.. _streams.Values.Where(stream => stream.Id > lastStreamId)];
            foreach (var stream in refused)
            {
                _streams.Remove(stream.Id);
            }
        }
        foreach (var stream in refused)
        {
            stream.Fail(new RefusedStreamException($"worker {_worker} closed the connection (GOAWAY, HTTP/2 error {errorCode}) before taking the request"));
        }
        _onClosed(this);
    }

    private static ReadOnlySpan<byte> WithoutPadding(byte flags, ReadOnlySpan<byte> payload)
    {
        if ((flags & Http2Frame.Flags.Padded) == 0)
        {
            return payload;
        }
        var padding = payload[0];
        if (padding >= payload.Length)
        {
            throw new IOException("padding longer than its frame");
        }
        return payload[1..^padding];
    }

    private WorkerStream? Find(int streamId)
    {
        lock (_lock)
        {
            return _streams.GetValueOrDefault(streamId);
        }
    }

    private WorkerStream? Take(int streamId)
    {
        lock (_lock)
        {
            return _streams.Remove(streamId, out var stream) ? stream : null;
        }
    }

    private void Close(Exception reason)
    {
        WorkerStream[] orphans;
        lock (_lock)
        {
            if (_closed)
            {
                return;
            }
            _closed = true;
            _acceptsStreams = false;
            orphans = [.. _streams.Values];
            _streams.Clear();
        }
        _socket.Dispose();
        foreach (var stream in orphans)
        {
            stream.Fail(reason is HttpRequestException ? reason : new HttpRequestException(reason.Message, reason));
        }
        _onClosed(this);
    }
}
