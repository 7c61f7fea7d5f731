using System.Net;
using System.Net.Sockets;
using System.Text;
using Supervisor.Configuration;
using Supervisor.Kernel;
using Supervisor.WorkerHost;

namespace Supervisor.Tests.Unit;

/// <summary>
/// Handoff mode's dealer on real sockets, with a stand-in worker on its handoff socket: what it does with
/// new connections once no worker is left in rotation.
/// </summary>
public sealed class ConnectionDealerTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"dealer-{Guid.NewGuid():N}.sock");
    private readonly SharedListenSockets _sockets = SharedListenSockets.Bind([BindAddress.Parse("127.0.0.1:0")], backlog: 16, inherited: false, https: false);

    public void Dispose()
    {
        _sockets.Dispose();
        File.Delete(_path);
    }

    [Fact]
    public async Task Once_no_worker_is_in_rotation_new_connections_wait_in_the_backlog_not_in_the_dealer()
    {
        var (listening, _) = _sockets.Sockets.Single();
        var address = (IPEndPoint)listening.LocalEndPoint!;
        var dealer = ConnectionDealer.Start(_sockets, _path, Serilog.Core.Logger.None);
        try
        {
            using var worker = ConnectWorker("w0-1");
            dealer.Publish(["w0-1"]);

            // In rotation: a connection is handed over, and the dealer waits on its next accept.
            using var first = await ConnectAsync(address);
            new Socket(new SafeSocketHandle(await ReceiveHandedAsync(worker), ownsHandle: true)).Dispose();

            // The worker leaves rotation (as at a stop, or as a binary upgrade's old supervisor stops
            // dealing); a client connects and the dealer goes away, as that supervisor exits.
            dealer.Publish([]);
            using var late = await ConnectAsync(address);
            await late.SendAsync("ping"u8.ToArray());
            dealer.Dispose();

            // The socket lives on (a new supervisor's copy): the connection is still in its backlog, whole.
            var accept = listening.AcceptAsync();
            Assert.True(await Task.WhenAny(accept, Task.Delay(Bound)) == accept,
                "the connection made after the last worker left was not in the backlog: the dealer took it, and closed it unserved");
            using var taken = await accept;
            var read = new byte[4];
            Assert.Equal(4, await taken.ReceiveAsync(read, SocketFlags.None).WaitAsync(Bound));
            Assert.Equal("ping", Encoding.ASCII.GetString(read));
            await taken.SendAsync("pong"u8.ToArray());
            Assert.Equal(4, await late.ReceiveAsync(read, SocketFlags.None).WaitAsync(Bound));
            Assert.Equal("pong", Encoding.ASCII.GetString(read));
        }
        finally
        {
            dealer.Dispose();
        }
    }

    [Fact]
    public async Task When_a_worker_enters_rotation_again_the_dealer_accepts_again()
    {
        var (listening, _) = _sockets.Sockets.Single();
        var address = (IPEndPoint)listening.LocalEndPoint!;
        using var dealer = ConnectionDealer.Start(_sockets, _path, Serilog.Core.Logger.None);
        using var first = ConnectWorker("w0-1");
        dealer.Publish(["w0-1"]);
        using (await ConnectAsync(address))
        {
            new Socket(new SafeSocketHandle(await ReceiveHandedAsync(first), ownsHandle: true)).Dispose();
        }

        // None in rotation (a lone worker died, say), then its replacement: connections flow again.
        dealer.Publish([]);
        using var replacement = ConnectWorker("w0-2");
        dealer.Publish(["w0-2"]);
        using var client = await ConnectAsync(address);
        await client.SendAsync("ping"u8.ToArray());
        using var handed = new Socket(new SafeSocketHandle(await ReceiveHandedAsync(replacement), ownsHandle: true));
        var read = new byte[4];
        Assert.Equal(4, await handed.ReceiveAsync(read, SocketFlags.None).WaitAsync(Bound));
        Assert.Equal("ping", Encoding.ASCII.GetString(read));
    }

    private Socket ConnectWorker(string key)
    {
        var worker = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        worker.Connect(new UnixDomainSocketEndPoint(_path));
        worker.Send(Encoding.UTF8.GetBytes(key));
        return worker;
    }

    // The descriptor the dealer handed this worker; fails the test if none comes within the bound.
    private static async Task<int> ReceiveHandedAsync(Socket worker)
    {
        var receive = Task.Run(() => DescriptorPassing.Receive(worker.SafeHandle, out _, out var descriptor) ? descriptor : -1);
        Assert.True(await Task.WhenAny(receive, Task.Delay(Bound)) == receive, $"no connection was handed to the worker within {Bound.TotalSeconds} s");
        var handed = await receive;
        Assert.True(handed >= 0, "the worker's stream ended without a connection");
        return handed;
    }

    private static async Task<Socket> ConnectAsync(IPEndPoint address)
    {
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(address).WaitAsync(Bound);
        return client;
    }
}
