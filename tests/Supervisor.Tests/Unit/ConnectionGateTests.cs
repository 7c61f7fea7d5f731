using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Supervisor.WorkerHost;

namespace Supervisor.Tests.Unit;

/// <summary>
/// The worker-host's gate in kernel mode, on a real listening socket given by descriptor as a worker
/// inherits it: nothing is accepted before the supervisor says so, and no accept outlives the listener.
/// </summary>
public sealed class ConnectionGateTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);
    private readonly Socket _shared = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly ConnectionGate _gate = new();

    public ConnectionGateTests()
    {
        _shared.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _shared.Listen(16);
    }

    public void Dispose()
    {
        _gate.Dispose();
        _shared.Dispose();
    }

    [Fact]
    public async Task A_worker_waits_for_accept_then_takes_connections_and_counts_them_until_drained()
    {
        await using var listener = await BindAsync();
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(_shared.LocalEndPoint!);

        var accept = listener.AcceptAsync().AsTask();
        await Task.Delay(200); // Nothing to await: the claim is that nothing happens before accept.
        Assert.False(accept.IsCompleted, "a connection was accepted before the worker was put in rotation");

        _gate.Open();
        var connection = await accept.WaitAsync(Bound);
        Assert.NotNull(connection);

        _gate.BeginDrain();
        Assert.False(_gate.Drained.IsCompleted, "drained while a connection was still open");
        Assert.Null(await listener.AcceptAsync().AsTask().WaitAsync(Bound)); // Draining: no more accepts.
        await connection.DisposeAsync();
        await _gate.Drained.WaitAsync(Bound);
    }

    [Fact]
    public async Task A_worker_stopped_before_it_was_put_in_rotation_stops_at_once()
    {
        var listener = await BindAsync();
        var accept = listener.AcceptAsync().AsTask();
        await listener.UnbindAsync();
        // Kestrel's stop waits for its accept loop: before the fix this waited for an accept never to come.
        Assert.Null(await accept.WaitAsync(Bound));
        await listener.DisposeAsync();
    }

    private async Task<IConnectionListener> BindAsync()
    {
        // The transport closes the descriptor it is given: give it a duplicate, as a worker has its own.
        var descriptor = Supervisor.Native.Libc.DuplicateCloseOnExec((int)_shared.Handle);
        var factory = new GatedListenerFactory(_gate, fair: null, [new PublicListener(descriptor, CleartextHttp2: false)],
            Options.Create(new SocketTransportOptions()), NullLoggerFactory.Instance);
        var endpoint = new FileHandleEndPoint((ulong)descriptor, FileHandleType.Auto);
        Assert.True(factory.CanBind(endpoint));
        return await factory.BindAsync(endpoint);
    }
}
