using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Supervisor.Configuration;

namespace Supervisor.Proxy;

/// <summary>
/// What <c>--check-config</c> does for each public address: bind it and let it go, as a start would bind
/// it, so a port in use, a privileged port or a foreign address fails the check and not the start.
/// </summary>
internal static class ListenCheck
{
    public static void Run(IReadOnlyList<BindAddress> binds)
    {
        foreach (var bind in binds)
        {
            try
            {
                switch (bind)
                {
                    case TcpBind { Host: "localhost" } tcp:
                        // Kestrel's ListenLocalhost: IPv4 loopback must bind; IPv6's is used where it exists.
                        BindAndRelease(new IPEndPoint(IPAddress.Loopback, tcp.Port));
                        break;
                    case TcpBind tcp:
                        BindAndRelease(new IPEndPoint(IPAddress.Parse(tcp.Host), tcp.Port));
                        break;
                    case UnixBind unix:
                        CheckUnixPath(unix.Path);
                        break;
                }
            }
            catch (Exception exception) when (exception is SocketException or IOException or UnauthorizedAccessException or AddressInUseException)
            {
                throw ListenFailure.For([bind], exception);
            }
        }
    }

    private static void BindAndRelease(IPEndPoint endPoint)
    {
        using var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        if (endPoint.AddressFamily == AddressFamily.InterNetworkV6)
        {
            socket.DualMode = endPoint.Address.Equals(IPAddress.IPv6Any); // as Kestrel listens on [::]
        }
        // .NET sets SO_REUSEADDR, as Kestrel does: a port left in TIME_WAIT passes, a listening one does not.
        socket.Bind(endPoint);
        socket.Listen();
    }

    // A live socket at the path is in use; a stale one is removed by the start, so it passes; anything
    // else must be creatable, which binding a socket there (and removing it) shows.
    private static void CheckUnixPath(string path)
    {
        if (Native.Libc.GetPathStatus(path) is { } existing)
        {
            if (!existing.IsSocket)
            {
                throw new IOException($"'{path}' exists and is not a socket");
            }
            using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(path));
            }
            catch (SocketException)
            {
                return; // Nobody listens there: the start replaces it.
            }
            throw new AddressInUseException($"a process listens on '{path}'");
        }
        using (var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            socket.Bind(new UnixDomainSocketEndPoint(path));
        }
        File.Delete(path);
    }
}
