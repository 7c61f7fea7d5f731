using System.Buffers.Binary;

namespace Supervisor.Proxy.Http2;

/// <summary>
/// The protocol state of one HTTP/2 client connection to a worker (RFC 9113), without any I/O: frames
/// received go in through <see cref="Receive"/>, frames to send come out in <see cref="Output"/>, and
/// streams are fed as their frames arrive. The <see cref="WorkerConnection"/> around it owns the socket
/// and calls every method under its lock; the streams touched by a call are signalled afterwards, from
/// <see cref="TakeTouched"/>, outside the lock.
/// <para>
/// Each error is scoped as narrowly as the RFC allows, and that is the invariant this type keeps: a
/// fault in one response (malformed, over its window, reset) ends that stream alone with RST_STREAM
/// (<see cref="Http2StreamException"/>); only what spoils the connection itself — a broken frame, lost
/// compression state, the connection's window exceeded — throws <see cref="Http2ConnectionException"/>
/// or <see cref="HpackException"/>, after which the owner sends GOAWAY and fails the streams, those never
/// sent as retryable.
/// </para>
/// </summary>
internal sealed class ClientSession
{
    /// <summary>
    /// The window each stream starts with (SETTINGS_INITIAL_WINDOW_SIZE): what a response whose client
    /// never reads can hold in the front before its worker must wait. Small on purpose; a stream whose
    /// client keeps up grows its window (<see cref="WorkerStream"/>) to <see cref="MaxStreamWindow"/>.
    /// </summary>
    public const int InitialStreamWindow = 16 * 1024;

    /// <summary>The most a stream's window grows to: enough that a fast client's download is never held up by it.</summary>
    public const int MaxStreamWindow = 256 * 1024;

    /// <summary>The largest response header section taken (SETTINGS_MAX_HEADER_LIST_SIZE, as RFC 9113 counts it); a larger one fails its stream.</summary>
    public const int MaxResponseHeaderListSize = 1024 * 1024;

    // Credited as data arrives: each stream's own window bounds what is held, and a connection window
    // credited only as clients read would let one slow client stall the others.
    private const int ConnectionWindow = 16 * 1024 * 1024;

    // A header block is read past when too large, but not without end: past this it is an attack on the connection.
    private const int MaxHeaderBlockOctets = 16 * 1024 * 1024;

    // Output the worker has not read: past the first, no new stream starts here; past the second (PING
    // and SETTINGS floods into a worker that does not read), the connection is given up.
    private const long CongestedOutput = 4 * 1024 * 1024;
    private const long MaxUnsentOutput = 16 * 1024 * 1024;

    private readonly string _worker;
    private readonly Dictionary<int, WorkerStream> _streams = [];
    private readonly HpackDecoder _decoder = new(MaxResponseHeaderListSize);
    private readonly List<WorkerStream> _touched = [];
    private readonly List<KeyValuePair<string, string>> _blockFields = [];

    private int _nextStreamId = 1;
    private int _lastStreamId;
    private bool _peerSettingsReceived;
    private int _peerMaxConcurrentStreams = int.MaxValue; // RFC 9113 6.5.2: unlimited until SETTINGS say otherwise.
    private int _peerMaxFrameSize = Http2Frame.DefaultMaxPayload;
    private long _peerMaxHeaderListSize = long.MaxValue;
    private int _peerInitialWindow = Http2Frame.DefaultWindow;
    private long _connectionSendWindow = Http2Frame.DefaultWindow;
    private int _connectionReceiveWindow = Http2Frame.DefaultWindow;
    private int _connectionUnacknowledged;
    private int _goAwayLastStreamId = int.MaxValue;

    // The header block being received: its stream (0: none), where its fields go, whether it ends the stream.
    private int _blockStreamId;
    private WorkerStream? _blockStream;
    private bool _blockEndsStream;
    private int _blockOctets;

    /// <param name="singleUse">The connection carries one request and ends with it (<see cref="WorkerConnection"/>).</param>
    public ClientSession(string worker, bool singleUse = false)
    {
        _worker = worker;
        _singleUse = singleUse;
        WritePreface();
    }

    private readonly bool _singleUse;

    /// <summary>Frames waiting to be sent.</summary>
    public OutputBuffer Output { get; } = new();

    /// <summary>Streams in flight: sent, not yet ended.</summary>
    public int ActiveStreams => _streams.Count;

    /// <summary>The worker's SETTINGS have come: its limits are known.</summary>
    public bool PeerSettingsReceived => _peerSettingsReceived;

    /// <summary>The worker said GOAWAY: no new stream may start here.</summary>
    public bool GoingAway => _goAwayLastStreamId != int.MaxValue;

    /// <summary>True when a new stream may start now (see <see cref="Open"/>).</summary>
    public bool CanOpenStream => !Exhausted && _streams.Count < _peerMaxConcurrentStreams && Output.Unsent < CongestedOutput;

    /// <summary>True when no new stream will ever start here again: the pool should let the connection go.</summary>
    public bool Exhausted => GoingAway || _nextStreamId > int.MaxValue - 2 || (_singleUse && _lastStreamId > 0);

    /// <summary>The SETTINGS_MAX_HEADER_LIST_SIZE the worker announced (unlimited until it does).</summary>
    public long PeerMaxHeaderListSize => _peerMaxHeaderListSize;

    /// <summary>Sends a request without a body on <paramref name="stream"/>: HEADERS with END_STREAM, then CONTINUATION as needed.</summary>
    /// <remarks>Only when <see cref="CanOpenStream"/>; the caller has checked the block against <see cref="PeerMaxHeaderListSize"/>.</remarks>
    public void Open(WorkerStream stream, ReadOnlySpan<byte> headerBlock, IStreamOwner owner)
    {
        var id = _nextStreamId;
        _nextStreamId += 2;
        _lastStreamId = id;
        var first = true;
        do
        {
            var length = Math.Min(headerBlock.Length, _peerMaxFrameSize);
            var last = length == headerBlock.Length;
            var flags = (byte)((first ? Http2Frame.Flags.EndStream : 0) | (last ? Http2Frame.Flags.EndHeaders : 0));
            headerBlock[..length].CopyTo(Output.AppendFrame(length, first ? Http2Frame.Type.Headers : Http2Frame.Type.Continuation, flags, id));
            headerBlock = headerBlock[length..];
            first = false;
        }
        while (headerBlock.Length > 0);
        stream.OnOpened(owner, id, Output.Appended, InitialStreamWindow);
        stream.SendWindow = _peerInitialWindow;
        _streams[id] = stream;
    }

    /// <summary>Ends a stream from this side (the forwarder gave up, or its response was malformed): RST_STREAM with <paramref name="errorCode"/>.</summary>
    public void Reset(WorkerStream stream, int errorCode, Exception failure)
    {
        if (!_streams.Remove(stream.Id))
        {
            return; // Already ended.
        }
        WriteInt32Frame(Http2Frame.Type.RstStream, stream.Id, errorCode);
        Fail(stream, failure);
    }

    /// <summary>Gives a stream's window back as the forwarder reads its body.</summary>
    public void GrantStreamWindow(WorkerStream stream, int increment)
    {
        if (_streams.ContainsKey(stream.Id))
        {
            stream.ReceiveWindow += increment;
            WriteInt32Frame(Http2Frame.Type.WindowUpdate, stream.Id, increment);
        }
    }

    /// <summary>Processes the whole frames at the start of <paramref name="received"/>; returns the octets consumed.</summary>
    /// <exception cref="Http2ConnectionException">The worker broke the connection.</exception>
    /// <exception cref="HpackException">The worker broke header compression.</exception>
    public int Receive(ReadOnlySpan<byte> received)
    {
        var consumed = 0;
        while (received.Length - consumed >= Http2Frame.HeaderLength)
        {
            var (length, type, flags, streamId) = Http2Frame.ReadHeader(received[consumed..]);
            if (length > Http2Frame.DefaultMaxPayload)
            {
                throw ConnectionError(Http2Frame.ErrorCode.FrameSizeError, $"a {Http2Frame.TypeName(type)} frame of {length} octets, above SETTINGS_MAX_FRAME_SIZE ({Http2Frame.DefaultMaxPayload})");
            }
            if (received.Length - consumed < Http2Frame.HeaderLength + length)
            {
                break;
            }
            OnFrame(type, flags, streamId, received.Slice(consumed + Http2Frame.HeaderLength, length));
            consumed += Http2Frame.HeaderLength + length;
        }
        if (Output.Unsent > MaxUnsentOutput)
        {
            throw ConnectionError(Http2Frame.ErrorCode.EnhanceYourCalm, $"{Output.Unsent} octets of frames it has not read");
        }
        return consumed;
    }

    /// <summary>Writes GOAWAY for a connection error found on this side (no server stream was ever accepted).</summary>
    public void WriteGoAway(int errorCode, string reason)
    {
        var debug = System.Text.Encoding.ASCII.GetBytes(reason.Length > 256 ? reason[..256] : reason);
        var payload = Output.AppendFrame(8 + debug.Length, Http2Frame.Type.GoAway, 0, 0);
        BinaryPrimitives.WriteInt32BigEndian(payload, 0);
        BinaryPrimitives.WriteInt32BigEndian(payload[4..], errorCode);
        debug.CopyTo(payload[8..]);
    }

    /// <summary>
    /// The connection is gone: every stream fails, as precisely as can be told. One whose HEADERS were
    /// not all handed to the socket cannot have reached the worker (<see cref="RequestNotSentException"/>);
    /// one that had no response yet may or may not have been processed (<see cref="NoResponseException"/>);
    /// one whose response had begun is cut.
    /// </summary>
    public void FailAll(Exception reason)
    {
        var sent = Output.Sent;
        foreach (var stream in _streams.Values)
        {
            Fail(stream, stream.RequestEnd > sent ? new RequestNotSentException($"the connection to worker {_worker} was lost before the request was sent ({reason.Message})", innerException: reason)
                : stream.State == ResponseState.AwaitingHead ? new NoResponseException($"{reason.Message}, before any of the response came", reason)
                : reason as HttpRequestException ?? new HttpRequestException(reason.Message, reason));
        }
        _streams.Clear();
    }

    /// <summary>The streams whose state changed since the last call, to be signalled outside the lock.</summary>
    public WorkerStream[] TakeTouched()
    {
        if (_touched.Count == 0)
        {
            return [];
        }
        WorkerStream[] touched = [.. _touched];
        _touched.Clear();
        return touched;
    }

    private void WritePreface()
    {
        Output.Append(Http2Frame.ClientPreface);
        var settings = Output.AppendFrame(18, Http2Frame.Type.Settings, 0, 0);
        WriteSetting(settings, Http2Frame.Setting.EnablePush, 0);
        WriteSetting(settings[6..], Http2Frame.Setting.InitialWindowSize, InitialStreamWindow);
        WriteSetting(settings[12..], Http2Frame.Setting.MaxHeaderListSize, MaxResponseHeaderListSize);
        // The connection starts with 65,535 octets of window, like every stream.
        WriteInt32Frame(Http2Frame.Type.WindowUpdate, 0, ConnectionWindow - Http2Frame.DefaultWindow);
        _connectionReceiveWindow = ConnectionWindow;
    }

    private static void WriteSetting(Span<byte> destination, ushort id, int value)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, id);
        BinaryPrimitives.WriteInt32BigEndian(destination[2..], value);
    }

    // RST_STREAM and WINDOW_UPDATE: a payload of one 32-bit value.
    private void WriteInt32Frame(byte type, int streamId, int value) =>
        BinaryPrimitives.WriteInt32BigEndian(Output.AppendFrame(4, type, 0, streamId), value);

    private void OnFrame(byte type, byte flags, int streamId, ReadOnlySpan<byte> payload)
    {
        // RFC 9113 3.4: the server's preface is a SETTINGS frame, first.
        if (!_peerSettingsReceived && type != Http2Frame.Type.Settings)
        {
            throw ConnectionError(Http2Frame.ErrorCode.ProtocolError, $"{Http2Frame.TypeName(type)} before its SETTINGS");
        }
        // RFC 9113 6.10: a header block is one unit; nothing may come between its frames.
        if (_blockStreamId != 0 && (type != Http2Frame.Type.Continuation || streamId != _blockStreamId))
        {
            throw ConnectionError(Http2Frame.ErrorCode.ProtocolError, $"{Http2Frame.TypeName(type)} on stream {streamId} inside the header block of stream {_blockStreamId}");
        }
        switch (type)
        {
            case Http2Frame.Type.Data:
                OnData(flags, streamId, payload);
                break;
            case Http2Frame.Type.Headers:
                OnHeaders(flags, streamId, payload);
                break;
            case Http2Frame.Type.Priority:
                OnPriority(streamId, payload);
                break;
            case Http2Frame.Type.RstStream:
                OnRstStream(streamId, payload);
                break;
            case Http2Frame.Type.Settings:
                OnSettings(flags, streamId, payload);
                break;
            case Http2Frame.Type.PushPromise:
                throw ConnectionError(Http2Frame.ErrorCode.ProtocolError, "a PUSH_PROMISE, though push is disabled");
            case Http2Frame.Type.Ping:
                OnPing(flags, streamId, payload);
                break;
            case Http2Frame.Type.GoAway:
                OnGoAway(streamId, payload);
                break;
            case Http2Frame.Type.WindowUpdate:
                OnWindowUpdate(streamId, payload);
                break;
            case Http2Frame.Type.Continuation:
                OnContinuation(flags, streamId, payload);
                break;
            default:
                break; // RFC 9113 5.5: unknown frame types are ignored.
        }
    }

    private void OnData(byte flags, int streamId, ReadOnlySpan<byte> payload)
    {
        RequireStream(Http2Frame.Type.Data, streamId);
        var frameLength = payload.Length;
        var data = WithoutPadding(Http2Frame.Type.Data, flags, payload);
        // The connection's window counts every DATA frame, padding included, whatever its stream's state.
        if (frameLength > _connectionReceiveWindow)
        {
            throw ConnectionError(Http2Frame.ErrorCode.FlowControlError, $"{frameLength} octets of DATA beyond the connection's window of {_connectionReceiveWindow}");
        }
        _connectionReceiveWindow -= frameLength;
        _connectionUnacknowledged += frameLength;
        if (_connectionUnacknowledged >= ConnectionWindow / 2)
        {
            WriteInt32Frame(Http2Frame.Type.WindowUpdate, 0, _connectionUnacknowledged);
            _connectionReceiveWindow += _connectionUnacknowledged;
            _connectionUnacknowledged = 0;
        }
        if (!_streams.TryGetValue(streamId, out var stream))
        {
            return; // A stream this side has reset: frames the worker sent before it knew are dropped.
        }
        if (frameLength > stream.ReceiveWindow)
        {
            ResetForError(stream, new Http2StreamException(Http2Frame.ErrorCode.FlowControlError, $"{frameLength} octets of DATA beyond the stream's window of {stream.ReceiveWindow}"));
            return;
        }
        stream.ReceiveWindow -= frameLength;
        var endStream = (flags & Http2Frame.Flags.EndStream) != 0;
        var padding = frameLength - data.Length;
        if (padding > 0 && !endStream)
        {
            GrantStreamWindow(stream, padding); // Padding counts against the window but is never read.
        }
        try
        {
            stream.OnData(data, endStream);
        }
        catch (Http2StreamException exception)
        {
            ResetForError(stream, exception);
            return;
        }
        if (endStream)
        {
            _streams.Remove(streamId);
        }
        _touched.Add(stream);
    }

    private void OnHeaders(byte flags, int streamId, ReadOnlySpan<byte> payload)
    {
        RequireStream(Http2Frame.Type.Headers, streamId);
        var fragment = WithoutPadding(Http2Frame.Type.Headers, flags, payload);
        if ((flags & Http2Frame.Flags.Priority) != 0)
        {
            if (fragment.Length < 5)
            {
                throw ConnectionError(Http2Frame.ErrorCode.FrameSizeError, "a HEADERS frame too short for its priority fields");
            }
            fragment = fragment[5..]; // RFC 9113 5.3.2: priority signals are ignored.
        }
        _blockStreamId = streamId;
        _blockStream = _streams.GetValueOrDefault(streamId);
        _blockEndsStream = (flags & Http2Frame.Flags.EndStream) != 0;
        _blockOctets = 0;
        _blockFields.Clear();
        // Decoded even for a stream this side has reset: the dynamic table must follow every block.
        _decoder.BeginBlock(_blockStream is null ? null : _blockFields);
        OnHeaderFragment(flags, fragment);
    }

    private void OnContinuation(byte flags, int streamId, ReadOnlySpan<byte> payload)
    {
        if (_blockStreamId == 0)
        {
            throw ConnectionError(Http2Frame.ErrorCode.ProtocolError, $"a CONTINUATION frame on stream {streamId} outside any header block");
        }
        OnHeaderFragment(flags, payload);
    }

    private void OnHeaderFragment(byte flags, ReadOnlySpan<byte> fragment)
    {
        _blockOctets += fragment.Length;
        if (_blockOctets > MaxHeaderBlockOctets)
        {
            throw ConnectionError(Http2Frame.ErrorCode.EnhanceYourCalm, $"a header block above {MaxHeaderBlockOctets} octets");
        }
        _decoder.Decode(fragment);
        if ((flags & Http2Frame.Flags.EndHeaders) == 0)
        {
            return;
        }
        _decoder.EndBlock();
        var stream = _blockStream;
        _blockStreamId = 0;
        _blockStream = null;
        if (stream is null || !_streams.ContainsKey(stream.Id))
        {
            return;
        }
        try
        {
            stream.OnHeaderBlock(_blockFields, _blockEndsStream, _decoder.ExceededListSize);
        }
        catch (Http2StreamException exception)
        {
            ResetForError(stream, exception);
            return;
        }
        if (stream.State == ResponseState.Completed)
        {
            _streams.Remove(stream.Id);
        }
        _touched.Add(stream);
    }

    private void OnPriority(int streamId, ReadOnlySpan<byte> payload)
    {
        if (streamId == 0)
        {
            throw ConnectionError(Http2Frame.ErrorCode.ProtocolError, "a PRIORITY frame on stream 0");
        }
        if (payload.Length != 5 && _streams.TryGetValue(streamId, out var stream))
        {
            ResetForError(stream, new Http2StreamException(Http2Frame.ErrorCode.FrameSizeError, $"a PRIORITY frame of {payload.Length} octets"));
        }
    }

    private void OnRstStream(int streamId, ReadOnlySpan<byte> payload)
    {
        RequireStream(Http2Frame.Type.RstStream, streamId);
        if (payload.Length != 4)
        {
            throw ConnectionError(Http2Frame.ErrorCode.FrameSizeError, $"an RST_STREAM frame of {payload.Length} octets");
        }
        if (!_streams.Remove(streamId, out var stream))
        {
            return;
        }
        var code = BinaryPrimitives.ReadInt32BigEndian(payload);
        Fail(stream, code == Http2Frame.ErrorCode.RefusedStream
            ? new RequestNotSentException($"worker {_worker} refused the stream before processing it (REFUSED_STREAM)")
            : new HttpRequestException($"worker {_worker} reset the stream ({Http2Frame.ErrorCode.Name(code)})"));
    }

    private void OnSettings(byte flags, int streamId, ReadOnlySpan<byte> payload)
    {
        if (streamId != 0)
        {
            throw ConnectionError(Http2Frame.ErrorCode.ProtocolError, $"a SETTINGS frame on stream {streamId}");
        }
        if ((flags & Http2Frame.Flags.Ack) != 0)
        {
            if (payload.Length != 0)
            {
                throw ConnectionError(Http2Frame.ErrorCode.FrameSizeError, "a SETTINGS acknowledgement with a payload");
            }
            return;
        }
        if (payload.Length % 6 != 0)
        {
            throw ConnectionError(Http2Frame.ErrorCode.FrameSizeError, $"a SETTINGS frame of {payload.Length} octets");
        }
        for (; payload.Length > 0; payload = payload[6..])
        {
            var value = BinaryPrimitives.ReadUInt32BigEndian(payload[2..]);
            switch (BinaryPrimitives.ReadUInt16BigEndian(payload))
            {
                case Http2Frame.Setting.EnablePush when value != 0:
                    throw ConnectionError(Http2Frame.ErrorCode.ProtocolError, $"SETTINGS_ENABLE_PUSH {value} from a server");
                case Http2Frame.Setting.MaxConcurrentStreams:
                    _peerMaxConcurrentStreams = (int)Math.Min(value, int.MaxValue);
                    break;
                case Http2Frame.Setting.InitialWindowSize:
                    OnPeerInitialWindow(value);
                    break;
                case Http2Frame.Setting.MaxFrameSize:
                    _peerMaxFrameSize = value is >= Http2Frame.DefaultMaxPayload and <= Http2Frame.MaxAllowedPayload
                        ? (int)value
                        : throw ConnectionError(Http2Frame.ErrorCode.ProtocolError, $"SETTINGS_MAX_FRAME_SIZE {value}, outside 2^14..2^24-1");
                    break;
                case Http2Frame.Setting.MaxHeaderListSize:
                    _peerMaxHeaderListSize = value;
                    break;
                default:
                    break; // SETTINGS_HEADER_TABLE_SIZE sizes a table this client's encoder never uses; unknown settings are ignored.
            }
        }
        _peerSettingsReceived = true;
        Output.AppendFrame(0, Http2Frame.Type.Settings, Http2Frame.Flags.Ack, 0);
    }

    // The window this client may send in: it sends no DATA, but the windows must stay valid (RFC 9113 6.9.2).
    private void OnPeerInitialWindow(uint value)
    {
        if (value > Http2Frame.MaxWindow)
        {
            throw ConnectionError(Http2Frame.ErrorCode.FlowControlError, $"SETTINGS_INITIAL_WINDOW_SIZE {value}, above 2^31-1");
        }
        var delta = (int)value - _peerInitialWindow;
        _peerInitialWindow = (int)value;
        foreach (var stream in _streams.Values)
        {
            stream.SendWindow += delta;
            if (stream.SendWindow > Http2Frame.MaxWindow)
            {
                throw ConnectionError(Http2Frame.ErrorCode.FlowControlError, $"stream {stream.Id}'s window above 2^31-1 after SETTINGS_INITIAL_WINDOW_SIZE");
            }
        }
    }

    private void OnPing(byte flags, int streamId, ReadOnlySpan<byte> payload)
    {
        if (payload.Length != 8)
        {
            throw ConnectionError(Http2Frame.ErrorCode.FrameSizeError, $"a PING frame of {payload.Length} octets");
        }
        if (streamId != 0)
        {
            throw ConnectionError(Http2Frame.ErrorCode.ProtocolError, $"a PING frame on stream {streamId}");
        }
        if ((flags & Http2Frame.Flags.Ack) == 0)
        {
            payload.CopyTo(Output.AppendFrame(8, Http2Frame.Type.Ping, Http2Frame.Flags.Ack, 0));
        }
    }

    // The worker closes the connection (idle for its keep-alive timeout, shutting down, or an error):
    // streams up to lastStreamId may be answered; later ones were never processed and may be sent again.
    private void OnGoAway(int streamId, ReadOnlySpan<byte> payload)
    {
        if (streamId != 0)
        {
            throw ConnectionError(Http2Frame.ErrorCode.ProtocolError, $"a GOAWAY frame on stream {streamId}");
        }
        if (payload.Length < 8)
        {
            throw ConnectionError(Http2Frame.ErrorCode.FrameSizeError, $"a GOAWAY frame of {payload.Length} octets");
        }
        var lastStreamId = BinaryPrimitives.ReadInt32BigEndian(payload) & int.MaxValue;
        var code = BinaryPrimitives.ReadInt32BigEndian(payload[4..]);
        _goAwayLastStreamId = Math.Min(_goAwayLastStreamId, lastStreamId); // A later GOAWAY may only lower it.
        foreach (var stream in _streams.Values.Where(stream => stream.Id > _goAwayLastStreamId).ToList())
        {
            _streams.Remove(stream.Id);
            Fail(stream, new RequestNotSentException($"worker {_worker} closed the connection (GOAWAY, {Http2Frame.ErrorCode.Name(code)}) before taking the request"));
        }
    }

    private void OnWindowUpdate(int streamId, ReadOnlySpan<byte> payload)
    {
        if (payload.Length != 4)
        {
            throw ConnectionError(Http2Frame.ErrorCode.FrameSizeError, $"a WINDOW_UPDATE frame of {payload.Length} octets");
        }
        var increment = BinaryPrimitives.ReadInt32BigEndian(payload) & int.MaxValue;
        if (streamId == 0)
        {
            _connectionSendWindow += increment > 0
                ? increment
                : throw ConnectionError(Http2Frame.ErrorCode.ProtocolError, "a WINDOW_UPDATE of 0 for the connection");
            if (_connectionSendWindow > Http2Frame.MaxWindow)
            {
                throw ConnectionError(Http2Frame.ErrorCode.FlowControlError, "the connection's window above 2^31-1");
            }
            return;
        }
        RequireStream(Http2Frame.Type.WindowUpdate, streamId);
        if (!_streams.TryGetValue(streamId, out var stream))
        {
            return;
        }
        if (increment == 0)
        {
            ResetForError(stream, new Http2StreamException(Http2Frame.ErrorCode.ProtocolError, "a WINDOW_UPDATE of 0"));
        }
        else if ((stream.SendWindow += increment) > Http2Frame.MaxWindow)
        {
            ResetForError(stream, new Http2StreamException(Http2Frame.ErrorCode.FlowControlError, "the stream's window above 2^31-1"));
        }
    }

    // A frame that must name a stream this client opened: stream 0 is the connection's, even ids would
    // be the server's (push is off) and ids above the last opened are idle (RFC 9113 5.1).
    private void RequireStream(byte type, int streamId)
    {
        if (streamId == 0 || streamId % 2 == 0 || streamId > _lastStreamId)
        {
            throw ConnectionError(Http2Frame.ErrorCode.ProtocolError, $"a {Http2Frame.TypeName(type)} frame on stream {streamId}, which this client never opened");
        }
    }

    private static ReadOnlySpan<byte> WithoutPadding(byte type, byte flags, ReadOnlySpan<byte> payload)
    {
        if ((flags & Http2Frame.Flags.Padded) == 0)
        {
            return payload;
        }
        if (payload.Length == 0 || payload[0] >= payload.Length)
        {
            throw ConnectionError(Http2Frame.ErrorCode.ProtocolError, $"a {Http2Frame.TypeName(type)} frame whose padding fills it");
        }
        return payload[1..^payload[0]];
    }

    private void ResetForError(WorkerStream stream, Http2StreamException error) =>
        Reset(stream, error.ErrorCode, new HttpRequestException($"worker {_worker} sent {error.Message} (stream reset, {Http2Frame.ErrorCode.Name(error.ErrorCode)})", error));

    private void Fail(WorkerStream stream, Exception failure)
    {
        stream.OnFailed(failure);
        _touched.Add(stream);
    }

    private static Http2ConnectionException ConnectionError(int errorCode, string what) => new(errorCode, what);
}
