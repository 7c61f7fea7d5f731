using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Supervisor.WorkerHost;

namespace Supervisor.Tests.Unit;

/// <summary>
/// Handoff mode's worker side on real sockets, as the supervisor drives it: a client's TCP connection is
/// passed by descriptor over a SOCK_SEQPACKET socket, reaches the right listener, carries the client's
/// bytes both ways, and is counted; what was handed over before the stream ended is still served.
/// </summary>
public sealed class HandedConnectionsTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"handoff-{Guid.NewGuid():N}.sock");
    private readonly Socket _dealer = new(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
    private readonly Socket _public = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly ConnectionGate _gate = new();

    public HandedConnectionsTests()
    {
        _dealer.Bind(new UnixDomainSocketEndPoint(_path));
        _dealer.Listen(4);
        _public.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _public.Listen(16);
    }

    public void Dispose()
    {
        _gate.Dispose();
        _dealer.Dispose();
        _public.Dispose();
        File.Delete(_path);
    }

    [Fact]
    public async Task A_handed_connection_reaches_its_listener_carries_the_clients_bytes_and_its_close_is_reported()
    {
        using var connections = Connections("w0-1", new PublicListener(0, false), new PublicListener(1, true));
        await using var plain = await connections.BindAsync(Endpoint(connections, 0));
        await using var h2c = await connections.BindAsync(Endpoint(connections, 1));
        using var worker = await AcceptWorkerAsync("w0-1");

        using var client = await HandOverAsync(worker, listener: 1);
        var connection = await h2c.AcceptAsync().AsTask().WaitAsync(Bound);
        Assert.NotNull(connection);
        Assert.Equal(client.LocalEndPoint, connection.RemoteEndPoint); // The worker sees the client's own address.

        await client.SendAsync("ping"u8.ToArray());
        var read = await connection.Transport.Input.ReadAtLeastAsync(4).AsTask().WaitAsync(Bound);
        Assert.Equal("ping", Encoding.ASCII.GetString(read.Buffer.Slice(0, 4)));
        connection.Transport.Input.AdvanceTo(read.Buffer.GetPosition(4));
        await connection.Transport.Output.WriteAsync("pong"u8.ToArray());
        var reply = new byte[4];
        Assert.Equal(4, await client.ReceiveAsync(reply, SocketFlags.None).WaitAsync(Bound));
        Assert.Equal("pong", Encoding.ASCII.GetString(reply));

        // The supervisor's copy was closed at once (HandOverAsync); the connection lived on in the worker.
        await connection.DisposeAsync();
        var closed = new byte[8];
        Assert.Equal(1, await worker.ReceiveAsync(closed, SocketFlags.None).WaitAsync(Bound)); // One byte per closed connection.
        Assert.Equal(0, await client.ReceiveAsync(reply, SocketFlags.None).WaitAsync(Bound)); // And the client sees it end.
    }

    [Fact]
    public async Task Connections_handed_over_before_the_stream_ends_are_served_and_drained_waits_for_them()
    {
        using var connections = Connections("w1-2", new PublicListener(0, false));
        await using var listener = await connections.BindAsync(Endpoint(connections, 0));
        using var worker = await AcceptWorkerAsync("w1-2");

        // The supervisor hands over a connection, then takes the worker out of rotation: it says drain
        // and closes the stream, in either order as the worker sees them.
        using var client = await HandOverAsync(worker, listener: 0);
        _gate.BeginDrain();
        worker.Dispose();

        var connection = await listener.AcceptAsync().AsTask().WaitAsync(Bound);
        Assert.NotNull(connection); // Handed over before the end: served, not dropped.
        Assert.False(_gate.Drained.IsCompleted, "drained while a handed connection was open");
        Assert.Null(await listener.AcceptAsync().AsTask().WaitAsync(Bound)); // Then the stream's end ends the accepts.
        await connection.DisposeAsync();
        await _gate.Drained.WaitAsync(Bound);
    }

    [Fact]
    public void Sending_to_a_worker_that_has_gone_fails_at_once_and_leaves_the_descriptor_with_the_sender()
    {
        using var worker = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        worker.Connect(new UnixDomainSocketEndPoint(_path));
        using var accepted = _dealer.Accept();
        worker.Dispose();

        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(_public.LocalEndPoint!);
        using var held = _public.Accept();
        var errno = DescriptorPassing.Send(accepted.SafeHandle, 0, (int)held.SafeHandle.DangerousGetHandle());
        Assert.NotEqual(0, errno); // EPIPE or ECONNRESET: the dealer tries the next worker with the same descriptor.
        Assert.True(held.Connected);
    }

    private HandedConnections Connections(string workerKey, params PublicListener[] listeners) =>
        new(_gate, new KernelListening(listeners, _path, RequestLimit: 0, KeepAlive: TimeSpan.FromSeconds(2)), workerKey,
            Options.Create(new SocketTransportOptions()), NullLoggerFactory.Instance);

    private static HandoffEndPoint Endpoint(HandedConnections connections, int number)
    {
        var endpoint = new HandoffEndPoint(new PublicListener(number, number == 1));
        Assert.True(connections.CanBind(endpoint));
        return endpoint;
    }

    // The worker connects as its first listener binds, and names itself first.
    private async Task<Socket> AcceptWorkerAsync(string key)
    {
        var worker = await _dealer.AcceptAsync().WaitAsync(Bound);
        var hello = new byte[64];
        var length = await worker.ReceiveAsync(hello, SocketFlags.None).WaitAsync(Bound);
        Assert.Equal(key, Encoding.UTF8.GetString(hello, 0, length));
        return worker;
    }

    // A client connects to the public socket; the "supervisor" accepts it, hands it over and closes its copy.
    private async Task<Socket> HandOverAsync(Socket worker, byte listener)
    {
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(_public.LocalEndPoint!);
        using var accepted = await _public.AcceptAsync();
        Assert.Equal(0, DescriptorPassing.Send(worker.SafeHandle, listener, (int)accepted.SafeHandle.DangerousGetHandle()));
        return client;
    }
}
