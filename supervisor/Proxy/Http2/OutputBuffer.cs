namespace Supervisor.Proxy.Http2;

/// <summary>
/// What a connection has to send, as one growing log of octets: frames are appended (under the
/// connection's lock) and a flusher takes what has gathered and sends it. Positions are counted from the
/// connection's start, so <see cref="Appended"/> and <see cref="Sent"/> tell whether a given frame has
/// been handed to the socket yet: a request whose HEADERS lie beyond <see cref="Sent"/> never reached
/// the worker.
/// </summary>
internal sealed class OutputBuffer
{
    private const int InitialCapacity = 16 * 1024;

    // A buffer that grew past this in a burst is not kept once sent.
    private const int RetainedCapacity = 1024 * 1024;

    private byte[] _pending = new byte[InitialCapacity];
    private byte[]? _spare = new byte[InitialCapacity];
    private int _length;
    private long _sent;

    /// <summary>Octets appended since the connection started.</summary>
    public long Appended { get; private set; }

    /// <summary>Octets handed to the socket since the connection started.</summary>
    public long Sent => Interlocked.Read(ref _sent);

    /// <summary>Octets appended and not yet sent (taken by a flush that has not finished, or waiting for one).</summary>
    public long Unsent => Appended - Sent;

    /// <summary>True when something waits to be taken by a flush.</summary>
    public bool HasPending => _length > 0;

    /// <summary>Appends a frame header and returns the space for its payload, to be filled at once.</summary>
    public Span<byte> AppendFrame(int payloadLength, byte type, byte flags, int streamId)
    {
        var frame = Reserve(Http2Frame.HeaderLength + payloadLength);
        Http2Frame.WriteHeader(frame, payloadLength, type, flags, streamId);
        return frame[Http2Frame.HeaderLength..];
    }

    public void Append(ReadOnlySpan<byte> octets) => octets.CopyTo(Reserve(octets.Length));

    /// <summary>Takes what has gathered, for a flush; the caller sends it, then calls <see cref="OnSent"/> and <see cref="Return"/>.</summary>
    public (byte[] Buffer, int Length) Take()
    {
        var taken = (_pending, _length);
        _pending = _spare ?? new byte[InitialCapacity];
        _spare = null;
        _length = 0;
        return taken;
    }

    /// <summary>Counts octets the socket has taken (may be called outside the lock).</summary>
    public void OnSent(int count) => Interlocked.Add(ref _sent, count);

    /// <summary>Gives back a buffer taken by <see cref="Take"/>, once sent.</summary>
    public void Return(byte[] buffer)
    {
        if (buffer.Length <= RetainedCapacity)
        {
            _spare = buffer;
        }
    }

    private Span<byte> Reserve(int count)
    {
        if (_pending.Length - _length < count)
        {
            Array.Resize(ref _pending, Math.Max(_pending.Length * 2, _length + count));
        }
        var space = _pending.AsSpan(_length, count);
        _length += count;
        Appended += count;
        return space;
    }
}
