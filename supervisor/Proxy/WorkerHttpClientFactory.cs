using System.Net.Sockets;
using Supervisor.Proxy.Http2;
using Supervisor.Workers;
using Yarp.ReverseProxy.Forwarder;

namespace Supervisor.Proxy;

/// <summary>
/// The client YARP forwards with: a destination's host is a worker's key, reached over that worker's
/// Unix socket. Requests without a body take the front's own HTTP/2 client
/// (<see cref="WorkerHttp2Handler"/>); the rest take <c>SocketsHttpHandler</c>.
/// </summary>
internal sealed class WorkerHttpClientFactory(RunDirectory runDirectory) : ForwarderHttpClientFactory
{
    // A new connection to a local socket costs microseconds; idle ones, and those left to recycled
    // workers, are released within seconds instead of the default minute.
    private static readonly TimeSpan PooledConnectionIdleTimeout = TimeSpan.FromSeconds(10);

    protected override void ConfigureHandler(ForwarderHttpClientContext context, SocketsHttpHandler handler)
    {
        base.ConfigureHandler(context, handler);
        handler.ConnectCallback = (connection, cancellationToken) =>
            ConnectToWorkerAsync(runDirectory.WorkerSocketPath(connection.DnsEndPoint.Host), cancellationToken);
        handler.PooledConnectionIdleTimeout = PooledConnectionIdleTimeout;
    }

    protected override HttpMessageHandler WrapHandler(ForwarderHttpClientContext context, HttpMessageHandler handler) =>
        new WorkerHttp2Handler(base.WrapHandler(context, handler), runDirectory.WorkerSocketPath);

    private static async ValueTask<Stream> ConnectToWorkerAsync(string socketPath, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
