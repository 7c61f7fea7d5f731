using System.Net;
using System.Net.Sockets;

namespace Supervisor.Tests.Infrastructure;

/// <summary>
/// HTTP clients whose connections come from a chosen loopback address. Linux routes all of 127.0.0.0/8 to
/// the loopback interface, so 127.0.0.2 is a real peer that differs from 127.0.0.1: one can play a trusted
/// proxy and the other an untrusted client, both on this machine.
/// </summary>
internal static class LoopbackClient
{
    public static HttpClient From(IPAddress localAddress, Uri baseAddress)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (context, cancellationToken) =>
            {
                var socket = new Socket(localAddress.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    socket.Bind(new IPEndPoint(localAddress, 0));
                    await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        return new HttpClient(handler) { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    /// <summary>A client whose connections go to the Unix socket at <paramref name="path"/> (a unix: bind).</summary>
    public static HttpClient OverUnixSocket(string path) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (_, cancellationToken) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    })
    { BaseAddress = new Uri("http://localhost/"), Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>A loopback port free at the moment of asking, for a listener that must be given its port (systemd's socket, a container's variable).</summary>
    public static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
