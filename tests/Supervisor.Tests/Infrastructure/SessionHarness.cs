using Supervisor.Proxy.Http2;

namespace Supervisor.Tests.Infrastructure;

/// <summary>
/// A <see cref="ClientSession"/> driven in memory, the test playing the worker: frames go in as octets,
/// what the session sends comes out parsed, and streams are signalled as the real connection does.
/// </summary>
internal sealed class SessionHarness : IStreamOwner
{
    /// <summary>GET / on authority x, as the front's encoder would write it.</summary>
    public static readonly byte[] RequestBlock = Convert.FromHexString("828684" + "4101" + "78");

    public SessionHarness(bool answerPreface = true)
    {
        if (answerPreface)
        {
            Receive(Frames.Settings());
        }
        Sent(); // The preface and the SETTINGS acknowledgement.
    }

    public ClientSession Session { get; } = new("w-test");

    /// <summary>Opens a request on the next stream (1, 3, 5 …).</summary>
    public WorkerStream Open(bool isHead = false, byte[]? block = null)
    {
        var stream = new WorkerStream(isHead);
        Assert.True(Session.CanOpenStream, "the session takes no new stream");
        Session.Open(stream, block ?? RequestBlock, this);
        return stream;
    }

    /// <summary>The worker sends these frames, in one read.</summary>
    public void Receive(params byte[][] frames)
    {
        var octets = frames.SelectMany(frame => frame).ToArray();
        var consumed = Session.Receive(octets);
        Assert.Equal(octets.Length, consumed);
        Signal();
    }

    /// <summary>The worker sends these frames and the session must find the connection broken.</summary>
    public Http2ConnectionException ReceiveConnectionError(params byte[][] frames)
    {
        var error = Assert.Throws<Http2ConnectionException>(() => Session.Receive(frames.SelectMany(frame => frame).ToArray()));
        Session.FailAll(new HttpRequestException(error.Message));
        Signal();
        return error;
    }

    /// <summary>The frames sent since the last call (all of them handed to the socket).</summary>
    public List<(byte Type, byte Flags, int StreamId, byte[] Payload)> Sent()
    {
        var (buffer, length) = Session.Output.Take();
        Session.Output.OnSent(length);
        Session.Output.Return(buffer);
        var octets = buffer.AsSpan(0, length);
        if (octets.StartsWith(Http2Frame.ClientPreface))
        {
            octets = octets[Http2Frame.ClientPreface.Length..];
        }
        return Frames.Parse(octets);
    }

    /// <summary>Reads a stream's body to its end (it must all be here).</summary>
    public static byte[] ReadBody(WorkerStream stream)
    {
        var body = new List<byte>();
        var buffer = new byte[4096];
        int read;
        while ((read = stream.ReadAsync(buffer, CancellationToken.None).AsTask().GetAwaiter().GetResult()) > 0)
        {
            body.AddRange(buffer.AsSpan(0, read).ToArray());
        }
        return [.. body];
    }

    public void Reset(WorkerStream stream, int errorCode, Exception failure)
    {
        Session.Reset(stream, errorCode, failure);
        Signal();
    }

    public void GrantStreamWindow(WorkerStream stream, int increment) => Session.GrantStreamWindow(stream, increment);

    private void Signal()
    {
        foreach (var stream in Session.TakeTouched())
        {
            stream.Signal();
        }
    }
}
